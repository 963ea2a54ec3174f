package remediation

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// cutProxy forwards TCP to a target until cut: then its port refuses and
// its connections end, as a lost route between one host and a server.
type cutProxy struct {
	ln    net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func startCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &cutProxy{ln: ln}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, b)
			p.mu.Unlock()
			go func() { io.Copy(b, c); b.Close() }()
			go func() { io.Copy(c, b); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *cutProxy) url() string { return "http://" + p.ln.Addr().String() }

func (p *cutProxy) cut() {
	p.ln.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// peerYAML is the peers section naming receiver b of site dc2.
func peerYAML(b *receiver) string {
	return fmt.Sprintf("peers: [{site: dc2, url: %q, auth: {bearer_token_file: token}}]\n", b.url+PeerPath)
}

// A partition: receiver A (dc1) loses its route to the active iap-dc1-1,
// which still works; receiver B (dc2) reaches it. From A alone a failed
// server and a lost route look the same, and the fence cannot reach it. A
// asks B, which checks the server itself and sees it up: nothing is
// promoted, and the refusal is said (peer_sees_up, declined gauge). When
// the server then really fails, B sees it down too and confirms: A
// promotes, naming B in the plan.
func TestPeerThatSeesTheServerUpBlocksThePromotion(t *testing.T) {
	e := startEstate(t)
	direct := e.config(t, nil)
	b := e.startReceiver(t, otherSite(remediationYAML(t, "dc1", "")), direct, direct)

	proxy := startCutProxy(t, strings.TrimPrefix(e.sim.Server("iap-dc1-1").URL(), "http://"))
	viaProxy := e.config(t, map[string]string{"iap-dc1-1": proxy.url()})
	yaml := strings.Replace(remediationYAML(t, "dc1", peerYAML(b)), "allow_single_vantage: true\n", "", 1)
	// A's exporter and A share A's host, and its route.
	a := e.startReceiver(t, yaml, viaProxy, viaProxy)
	if n := testutil.ToFloat64(a.metrics.vantagePoints); n != 2 {
		t.Errorf("vantage_points = %v, want 2 (this host and the peer)", n)
	}
	if st := a.Status(); st.SingleVantage {
		t.Errorf("status %+v says one vantage point although a peer is configured", st)
	}

	proxy.cut()
	incident := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	a.post(t, incident)
	if got, want := lastOutcome(t, a), "fp-iap-dc1-1: peer_sees_up"; got != want {
		t.Fatalf("receiver A cut off from a live active: %q, want %q", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Fatalf("activations %v during a partition, want none", got)
	}
	if err := lab.Retry(10*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(a.metrics.declined.WithLabelValues(reasonPeerSeesUp)); n != 1 {
			return fmt.Errorf(`declined{reason="peer_sees_up"} = %v, want 1`, n)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}

	e.down(t, "iap-dc1-1")
	a.post(t, incident) // Alertmanager's resend
	recs := a.settle(t)
	if got, want := lastOutcome(t, a), "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"; got != want {
		t.Fatalf("receiver A once the server failed: %q, want %q", got, want)
	}
	for _, rec := range recs {
		if rec.Kind == kindStarted {
			if got := strings.Join(rec.Plan.ConfirmedBy, ","); got != "the receiver of site dc2" {
				t.Errorf("plan confirmed by %q, want the receiver of site dc2", got)
			}
		}
	}
}

// Without a peer that answers, this host is the only vantage point again:
// a peer that cannot be reached confirms nothing.
func TestUnreachablePeerConfirmsNothing(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := strings.Replace(remediationYAML(t, "dc1", `peers: [{site: dc2, url: "http://127.0.0.1:1/remediation/peer", timeout: 1s}]`+"\n"), "allow_single_vantage: true\n", "", 1)
	a := e.startReceiver(t, yaml, cfg, cfg)
	e.down(t, "iap-dc1-1")
	a.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	if got, want := lastOutcome(t, a), "fp-iap-dc1-1: single_vantage"; got != want {
		t.Errorf("%q, want %q", got, want)
	}
}

// The peer endpoint is authenticated as the webhook is, names only the
// servers of its configuration, and answers with its own fresh check.
func TestPeerEndpoint(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-2")
	get := func(server, token string) (int, PeerAnswer) {
		req, _ := http.NewRequest(http.MethodGet, r.url+PeerPath+"?server="+server, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var a PeerAnswer
		if resp.StatusCode == http.StatusOK {
			if err := json.NewDecoder(resp.Body).Decode(&a); err != nil {
				t.Fatal(err)
			}
		}
		return resp.StatusCode, a
	}
	if code, _ := get("iap-dc1-1", ""); code != http.StatusUnauthorized {
		t.Errorf("without the token: %d, want 401", code)
	}
	if code, _ := get("iap-dc1-1", "wrong"); code != http.StatusUnauthorized {
		t.Errorf("with a wrong token: %d, want 401", code)
	}
	if code, _ := get("nosuch", testToken); code != http.StatusNotFound {
		t.Errorf("an unknown server: %d, want 404", code)
	}
	if code, a := get("iap-dc1-1", testToken); code != http.StatusOK || !a.Up || a.Site != "dc1" {
		t.Errorf("a live server: %d %+v, want 200 up from dc1", code, a)
	}
	if code, a := get("iap-dc1-2", testToken); code != http.StatusOK || a.Up || a.Answered {
		t.Errorf("a server whose port refuses: %d %+v, want 200, not up, not answered", code, a)
	}
}
