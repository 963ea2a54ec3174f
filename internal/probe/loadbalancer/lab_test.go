package loadbalancer

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
	"reflect"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// iapHealth answers /health/status as IAP does, naming itself.
func iapHealth(t *testing.T, name string) *http.Server {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &http.Server{Addr: ln.Addr().String(), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"host": name, "serverId": "id-" + name, "apps": "running", "adapters": "running"})
	})}
	go s.Serve(ln)
	t.Cleanup(func() { s.Close() })
	return s
}

func probeOnce(t *testing.T, c *Client) topology.LoadBalancer {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	return c.Probe(ctx)
}

func routedNames(lb topology.LoadBalancer) map[string]bool {
	out := map[string]bool{}
	for _, s := range lb.Servers {
		if s.Routed {
			name := s.IAPServer
			if name == "" {
				name = s.Name
			}
			out[name] = true
		}
	}
	return out
}

// Against the lab's real HAProxy: the stats socket and the frontend (the
// virtual IP) tell the same story, before and after the actives fail.
func TestRealHAProxyThroughTheSocketAndTheVIP(t *testing.T) {
	a1, a2, s1 := iapHealth(t, "iap-dc1-1"), iapHealth(t, "iap-dc1-2"), iapHealth(t, "iap-dc2-1")
	h, err := lab.StartHAProxy(lab.HAProxyOptions{Servers: []lab.HAProxyServer{
		{Name: "iap-dc1-1", Addr: a1.Addr},
		{Name: "web2", Addr: a2.Addr}, // matched by address
		{Name: "iap-dc2-1", Addr: s1.Addr, Backup: true},
	}})
	if err != nil {
		t.Fatalf("starting HAProxy: %v", err)
	}
	t.Cleanup(func() { h.Stop() })
	servers := []config.IAPServer{
		{Name: "iap-dc1-1", URL: "http://" + a1.Addr}, {Name: "iap-dc1-2", URL: "http://" + a2.Addr}, {Name: "iap-dc2-1", URL: "http://" + s1.Addr},
	}
	socket, err := NewClient(configtest.LoadBalancer(config.LoadBalancer{Name: "lb1", Site: "dc1", Kind: config.BalancerHAProxy, StatsSocket: h.Socket, Backend: lab.HAProxyBackend}), servers, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	vip, err := NewClient(configtest.LoadBalancer(config.LoadBalancer{Name: "vip1", Site: "dc1", Kind: config.BalancerVIP, URL: "http://" + h.Frontend, Requests: 8}), servers, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer socket.Close()
	defer vip.Close()

	lb := probeOnce(t, socket)
	if !lb.Up || len(lb.Servers) != 3 {
		t.Fatalf("socket probe: %+v", lb)
	}
	if got := routedNames(lb); !got["iap-dc1-1"] || !got["iap-dc1-2"] || got["iap-dc2-1"] {
		t.Errorf("socket: routed %v, want both actives (web2 matched to iap-dc1-2 by address)", got)
	}
	// Round robin over the two actives: 8 requests meet both.
	v := probeOnce(t, vip)
	if !v.Up || v.Requests != 8 || v.Answered != 8 {
		t.Fatalf("vip probe: %+v", v)
	}
	if got := routedNames(v); len(got) != 2 || !got["iap-dc1-1"] || !got["iap-dc1-2"] {
		t.Errorf("vip: answered by %v, want both actives", got)
	}

	a1.Close()
	a2.Close()
	for _, name := range []string{"iap-dc1-1", "web2"} {
		if err := h.WaitState(name, "DOWN", 15*time.Second); err != nil {
			t.Fatal(err)
		}
	}
	lb = probeOnce(t, socket)
	if got := routedNames(lb); len(got) != 1 || !got["iap-dc2-1"] {
		t.Errorf("socket after the actives failed: routed %v, want the backup alone", got)
	}
	for _, s := range lb.Servers {
		if s.IAPServer == "iap-dc1-1" && (s.Reaches != topology.False || s.CheckStatus != "L4CON") {
			t.Errorf("a closed port: reaches %v check %q, want False and L4CON", s.Reaches, s.CheckStatus)
		}
	}
	v = probeOnce(t, vip)
	if got := routedNames(v); len(got) != 1 || !got["iap-dc2-1"] {
		t.Errorf("vip after the actives failed: answered by %v, want the backup alone", got)
	}

	// A wrong backend is HAProxy's own refusal, and the balancer is down.
	wrong, _ := NewClient(configtest.LoadBalancer(config.LoadBalancer{Name: "lb2", Kind: config.BalancerHAProxy, StatsSocket: h.Socket, Backend: "nosuch"}), servers, slog.New(slog.DiscardHandler))
	if lb := probeOnce(t, wrong); lb.Up || lb.Error == "" {
		t.Errorf("unknown backend: %+v", lb)
	}
	h.Stop()
	if lb := probeOnce(t, socket); lb.Up || lb.Error == "" {
		t.Errorf("stopped HAProxy: %+v", lb)
	}
	if v := probeOnce(t, vip); v.Up || v.Error == "" {
		t.Errorf("stopped HAProxy through the VIP: %+v", v)
	}
}

// An operator takes one active out (set server … state maint) and the
// other then fails: HAProxy's rule (configuration manual, "backup", "option
// allbackups") sends the traffic to the first usable backup, and only to
// it, once no normal server is usable; MAINT runs no health check
// (management guide, "set server"). The probe's routing must be the one
// HAProxy counts in lbtot for real requests through its frontend.
func TestRealHAProxyMaintenanceThenFailureRoutesToTheFirstBackup(t *testing.T) {
	names := []string{"iap-dc1-1", "iap-dc1-2", "iap-dc2-1", "iap-dc2-2"}
	var opts []lab.HAProxyServer
	var servers []config.IAPServer
	health := map[string]*http.Server{}
	for i, name := range names {
		health[name] = iapHealth(t, name)
		opts = append(opts, lab.HAProxyServer{Name: name, Addr: health[name].Addr, Backup: i >= 2})
		servers = append(servers, config.IAPServer{Name: name, URL: "http://" + health[name].Addr})
	}
	h, err := lab.StartHAProxy(lab.HAProxyOptions{Servers: opts})
	if err != nil {
		t.Fatalf("starting HAProxy: %v", err)
	}
	t.Cleanup(func() { h.Stop() })
	socket, err := NewClient(configtest.LoadBalancer(config.LoadBalancer{Name: "lb1", Site: "dc1", Kind: config.BalancerHAProxy, StatsSocket: h.Socket, Backend: lab.HAProxyBackend}), servers, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer socket.Close()
	// selectedFor sends n requests through the frontend and returns how
	// many HAProxy gave each server.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	selectedFor := func(n int) map[string]int {
		t.Helper()
		before, err := h.Selected()
		if err != nil {
			t.Fatal(err)
		}
		for range n {
			if res, err := client.Get("http://" + h.Frontend + "/health/status"); err == nil {
				res.Body.Close()
			}
		}
		after, err := h.Selected()
		if err != nil {
			t.Fatal(err)
		}
		got := map[string]int{}
		for name, v := range after {
			if d := v - before[name]; d > 0 {
				got[name] = d
			}
		}
		return got
	}
	routed := func() map[string]bool {
		t.Helper()
		lb := probeOnce(t, socket)
		if !lb.Up {
			t.Fatalf("socket probe: %+v", lb)
		}
		return routedNames(lb)
	}

	if err := h.SetState("iap-dc1-2", "maint"); err != nil {
		t.Fatal(err)
	}
	lb := probeOnce(t, socket)
	for _, s := range lb.Servers {
		if s.IAPServer == "iap-dc1-2" && (!s.Maintenance() || s.Routed || s.Reaches != topology.Unknown) {
			t.Errorf("iap-dc1-2 in MAINT: status %q routed %v reaches %v, want maintenance, no traffic, no check", s.Status, s.Routed, s.Reaches)
		}
	}
	if got, want := routedNames(lb), map[string]bool{"iap-dc1-1": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("one active in MAINT: the probe routes to %v, want %v", got, want)
	}
	if got, want := selectedFor(6), map[string]int{"iap-dc1-1": 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("one active in MAINT: HAProxy selected %v, want %v", got, want)
	}

	health["iap-dc1-1"].Close()
	if err := h.WaitState("iap-dc1-1", "DOWN", 15*time.Second); err != nil {
		t.Fatal(err)
	}
	if got, want := routed(), map[string]bool{"iap-dc2-1": true}; !reflect.DeepEqual(got, want) {
		t.Errorf("the other active DOWN: the probe routes to %v, want %v (the first backup alone)", got, want)
	}
	if got, want := selectedFor(6), map[string]int{"iap-dc2-1": 6}; !reflect.DeepEqual(got, want) {
		t.Errorf("the other active DOWN: HAProxy selected %v, want %v (the first backup alone)", got, want)
	}
}
