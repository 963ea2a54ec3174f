package loadbalancer

import (
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"net/http"
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
