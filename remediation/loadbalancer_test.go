package remediation

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// balancedEstate puts the lab's real HAProxy in front of the estate:
// the actives as normal servers, the standbys as backups, checked on
// /health/status, read by the receiver through its stats socket.
func balancedEstate(t *testing.T, e *estate, cfg *config.Config) *lab.HAProxy {
	t.Helper()
	var servers []lab.HAProxyServer
	for _, s := range e.sim.Servers() {
		servers = append(servers, lab.HAProxyServer{Name: s.Name(), Addr: s.Addr(), Backup: s.Name() == "iap-dc1-3" || s.Name() == "iap-dc2-1"})
	}
	h, err := lab.StartHAProxy(lab.HAProxyOptions{Servers: servers})
	if err != nil {
		t.Fatalf("starting HAProxy: %v", err)
	}
	t.Cleanup(func() { h.Stop() })
	cfg.LoadBalancers = []config.LoadBalancer{configtest.LoadBalancer(config.LoadBalancer{
		Name: "haproxy-dc1", Site: "dc1", Kind: config.BalancerHAProxy,
		StatsSocket: h.Socket, Backend: lab.HAProxyBackend,
	})}
	return h
}

// balancedScraper is the exporter's fresh view with the balancer in it.
func balancedScraper(t *testing.T, cfg *config.Config) ScrapeFunc {
	t.Helper()
	s, err := collector.NewScraper(cfg, slog.New(slog.DiscardHandler), "iap", "redis", "loadbalancer")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return func(ctx context.Context) (*topology.Observation, error) { return s.Probe(ctx), nil }
}

func (e *estate) startBalancedReceiver(t *testing.T, yaml string, own, truth *config.Config) *receiver {
	t.Helper()
	cfg, err := Parse([]byte(yaml), e.dir, own)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	r, err := New(Options{Config: cfg, ExporterConfig: own, Scrape: balancedScraper(t, truth)})
	if err != nil {
		t.Fatal(err)
	}
	return e.serve(t, r, cfg)
}

// closedAddr is an address where nothing listens.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// A partition: the receiver (and the exporter beside it) cannot reach
// iap-dc1-1, while HAProxy, where users come in, still does. Without
// allow_single_vantage the balancer is the second vantage point, and it
// says the server is alive: nothing is promoted.
func TestBalancerStillReachingTheServerBlocksThePromotion(t *testing.T) {
	e := startEstate(t)
	cut := e.config(t, map[string]string{"iap-dc1-1": "http://" + closedAddr(t)})
	h := balancedEstate(t, e, cut)
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "allow_single_vantage: true\n", "", 1)
	r := e.startBalancedReceiver(t, yaml, cut, cut)
	if n := testutil.ToFloat64(r.metrics.vantagePoints); n != 2 {
		t.Errorf("vantage_points = %v, want 2 (this host and the balancer)", n)
	}
	if st, _ := h.ServerStates(); !strings.HasPrefix(st["iap-dc1-1"], "UP") {
		t.Fatalf("HAProxy sees iap-dc1-1 %q, want UP", st["iap-dc1-1"])
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: balancer_reaches"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v, want none", got)
	}
	if err := lab.Retry(10*time.Second, 10*time.Millisecond, func() error {
		if n := testutil.ToFloat64(r.metrics.declined.WithLabelValues(reasonBalancerReaches)); n != 1 {
			return fmt.Errorf(`declined{reason="balancer_reaches"} = %v, want 1`, n)
		}
		return nil
	}); err != nil {
		t.Error(err)
	}
}

// The active fails for real: HAProxy's checks fail too (DOWN, two failed
// checks), a second view of the failure, so the receiver promotes without
// allow_single_vantage. HAProxy keeps sending users to the other active;
// the HAProxy example script moves the promoted standby into the pool and
// the failed server out, and the receiver verifies HAProxy routes to it.
func TestBalancerConfirmsTheFailureAndRoutesToThePromotedServer(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	h := balancedEstate(t, e, cfg)
	example, err := filepath.Abs("scripts/haproxy-post-promotion.example.sh")
	if err != nil {
		t.Fatal(err)
	}
	wrapper := writeScript(t, e.dir, "haproxy-post-promotion.sh",
		fmt.Sprintf("HAPROXY_SOCKET=%s HAPROXY_BACKEND=%s exec %s\n", h.Socket, lab.HAProxyBackend, example))
	yaml := strings.Replace(remediationYAML(t, "dc1", fmt.Sprintf("scripts: {post_promotion: {dc1: [%s]}}\n", wrapper)), "allow_single_vantage: true\n", "", 1)
	r := e.startBalancedReceiver(t, yaml, cfg, cfg)

	e.down(t, "iap-dc1-1")
	if err := h.WaitState("iap-dc1-1", "DOWN", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	recs := r.settle(t)
	if got, want := outcomes(recs), []string{"fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v (%s)", got, want, finishedError(recs))
	}
	for action, result := range map[string]string{actionPostPromotion: ResultSuccess, actionVerifyRouting: ResultSuccess} {
		if n := testutil.ToFloat64(r.metrics.actions.WithLabelValues(action, result)); n != 1 {
			t.Errorf("actions_total{action=%q,result=%q} = %v, want 1", action, result, n)
		}
	}
	st, err := h.ServerStates()
	if err != nil {
		t.Fatal(err)
	}

	if !strings.HasPrefix(st["iap-dc1-3-promoted"], "UP") || st["iap-dc1-1"] != "MAINT" {
		t.Errorf("HAProxy after the script: %v, want iap-dc1-3-promoted UP and iap-dc1-1 MAINT", st)
	}
}

// Without the script HAProxy never routes to the promoted backup while the
// other active is UP (a backup takes traffic only once every normal server
// is down): the receiver says so, and the promotion is not a success.
func TestPromotionTheBalancerDoesNotRouteToFails(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	h := balancedEstate(t, e, cfg)
	r := e.startBalancedReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	e.down(t, "iap-dc1-1")
	if err := h.WaitState("iap-dc1-1", "DOWN", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	recs := r.settle(t)
	got := outcomes(recs)
	if want := []string{"fp-iap-dc1-1: failure iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if why := finishedError(recs); !strings.Contains(why, "haproxy-dc1 do(es) not route to iap-dc1-3") {
		t.Errorf("the failure says %q", why)
	}
	if n := testutil.ToFloat64(r.metrics.actions.WithLabelValues(actionVerifyRouting, ResultFailure)); n != 1 {
		t.Errorf("verify_routing failures = %v, want 1", n)
	}
}

// finishedError is why the last promotion failed, as journaled.
func finishedError(recs []record) string {
	for i := len(recs) - 1; i >= 0; i-- {
		if recs[i].Kind == kindFinished {
			return recs[i].Error
		}
	}
	return ""
}
