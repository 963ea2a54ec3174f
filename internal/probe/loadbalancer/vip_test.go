package loadbalancer

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// IAP answers /health/status with a non-200 when a dependency fails, and
// still names itself: the balancer routes there, and whether the server is
// healthy is its own probe's to say, not the balancer's.
func TestVIPCountsWhoAnswered(t *testing.T) {
	tests := []struct {
		name        string
		handler     http.HandlerFunc
		up          bool
		answered    int
		reaches     topology.Tristate
		errContains string
	}{
		{"a healthy server", func(w http.ResponseWriter, r *http.Request) {
			w.Write([]byte(`{"host":"iap-dc1-1","serverId":"582672c5a088e6f0","apps":"running"}`))
		}, true, 3, topology.True, ""},
		{"an unhealthy server still names itself", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte(`{"host":"iap-dc1-1","serverId":"582672c5a088e6f0","services":[{"service":"mongo","status":"failed"}]}`))
		}, true, 0, topology.Unknown, ""},
		{"the balancer's own 503 names no server", func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusServiceUnavailable)
			w.Write([]byte("<html><body><h1>503 Service Unavailable</h1>No server is available to handle this request.</body></html>"))
		}, false, 0, topology.Unknown, "HTTP 503 without a server's /health/status answer"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := httptest.NewServer(tt.handler)
			defer srv.Close()
			c, err := NewClient(configtest.LoadBalancer(config.LoadBalancer{Name: "vip", Kind: config.BalancerVIP, URL: srv.URL, Requests: 3}), nil, slog.New(slog.DiscardHandler))
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			lb := c.Probe(context.Background())
			if lb.Up != tt.up || lb.Answered != tt.answered || lb.Requests != 3 {
				t.Fatalf("up %v answered %d/%d (%s), want %v %d", lb.Up, lb.Answered, lb.Requests, lb.Error, tt.up, tt.answered)
			}
			if !strings.Contains(lb.Error, tt.errContains) {
				t.Errorf("error %q, want %q", lb.Error, tt.errContains)
			}
			if tt.up {
				if len(lb.Servers) != 1 || lb.Servers[0].Answers != 3 || !lb.Servers[0].Routed || lb.Servers[0].Reaches != tt.reaches || lb.Servers[0].ServerID != "582672c5a088e6f0" {
					t.Errorf("servers %+v", lb.Servers)
				}
			}
		})
	}
}
