package e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/iagsim"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
)

// redirectingFront serves upstream, except that a POST to one of
// loginPaths is redirected with a 307 to the thief: the same body, the
// password in it, is to be sent there (RFC 9110 §15.4.8). It remembers the
// login bodies it redirected.
type redirectingFront struct {
	*httptest.Server
	mu     sync.Mutex
	logins []string
}

func startRedirectingFront(t *testing.T, upstream string, thief *hostile.Thief, loginPaths ...string) *redirectingFront {
	t.Helper()
	u, err := url.Parse(upstream)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	f := &redirectingFront{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		for _, p := range loginPaths {
			if r.Method == http.MethodPost && r.URL.Path == p {
				b, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
				f.mu.Lock()
				f.logins = append(f.logins, string(b))
				f.mu.Unlock()
				r.Body = io.NopCloser(bytes.NewReader(b))
				hostile.RedirectTo(thief.URL, http.StatusTemporaryRedirect).ServeHTTP(w, r)
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(f.Close)
	return f
}

// loggedIn reports whether a redirected login carried user.
func (f *redirectingFront) loggedIn(user string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, l := range f.logins {
		if strings.Contains(l, `"`+user+`"`) {
			return true
		}
	}
	return false
}

// TestRedirectedLoginsReachNoOtherHost: every HTTP client of the exporter,
// towards IAP, the gateway and RabbitMQ, meets a target that redirects its
// login (or, for RabbitMQ, every request, with the basic credentials) to
// another host. That host receives nothing; the targets are reported with
// the reason. (The remediation receiver's own IAP calls are built by the
// same iap.NewClient; internal/probe/iap tests its Activate against a redirect.)
func TestRedirectedLoginsReachNoOtherHost(t *testing.T) {
	thief := hostile.StartThief()
	defer thief.Close()
	sim := startIAPSim(t, iapsim.Topology{
		Users: map[string]string{"monitor": "monitor-pw"},
		Servers: []iapsim.ServerSpec{
			{Name: "iap-dc1-1", Cluster: "main", Role: "active"},
			{Name: "iap-dc2-1", Cluster: "main", Role: "standby"},
		},
	})
	iap1 := startRedirectingFront(t, sim.Server("iap-dc1-1").URL(), thief, "/login", "/oauth/token")
	iap2 := startRedirectingFront(t, sim.Server("iap-dc2-1").URL(), thief, "/login", "/oauth/token")
	gw, err := iagsim.Start(iagsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { gw.Close() })
	gateway := startRedirectingFront(t, gw.URL(), thief, "/api/v2.0/login")
	rabbit := httptest.NewServer(hostile.RedirectTo(thief.URL, http.StatusTemporaryRedirect))
	t.Cleanup(rabbit.Close)

	dir := t.TempDir()
	for name, secret := range map[string]string{
		"iap": "monitor-pw", "gateway": iagsim.DefaultPassword, "rabbitmq": "rabbit-pw",
	} {
		writeFile(t, filepath.Join(dir, name), secret+"\n")
	}
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, fmt.Sprintf(`
sites:
  - {name: dc1, role: active}
  - {name: dc2, role: standby}
iap:
  auth: {username: monitor, password_file: iap}
  servers:
    - {name: iap-dc1-1, url: %q, site: dc1, role: active, cluster: main}
    - {name: iap-dc2-1, url: %q, site: dc2, role: standby, cluster: main}
redis:
  - {name: dc1, site: dc1, sentinels: [{address: %q}]}
rabbitmq:
  - {name: r, site: dc1, urls: [%q], username: monitor, password_file: rabbitmq}
gateways:
  - {name: g, site: dc1, url: %q, username: %q, password_file: gateway}
`, iap1.URL, iap2.URL, closedAddr(t), rabbit.URL, gateway.URL, iagsim.DefaultUsername))
	exp := startExporter(t, "--config.file", cfg)
	base := "http://" + exp.addr

	_, metrics := get(t, http.DefaultClient, base+"/metrics", "", "")
	for _, want := range []string{
		`iap_ha_iap_api_up{server="iap-dc1-1",site="dc1"} 0`,
		`iap_ha_gateway_up{gateway="g",site="dc1"} 1`,
		`iap_ha_rabbitmq_up{cluster="r"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	_, topo := get(t, http.DefaultClient, base+"/api/v1/topology", "", "")
	if !strings.Contains(topo, "redirects are not followed") {
		t.Errorf("the topology does not say why the targets failed:\n%s", topo)
	}

	if !iap1.loggedIn("monitor") || !gateway.loggedIn(iagsim.DefaultUsername) {
		t.Errorf("the exporter did not try the logins the test redirects")
	}
	exp.stop()
	if got := thief.Requests(); len(got) > 0 {
		t.Errorf("another host received %d requests:\n%s", len(got), strings.Join(got, "\n"))
	}
}
