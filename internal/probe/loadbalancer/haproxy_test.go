package loadbalancer

import (
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

type wantServer struct {
	status  string
	backup  bool
	reaches topology.Tristate
	routed  bool
}

// The recorded answers are HAProxy 2.6's `show stat` for LAB.md's backend:
// iap-dc1-1 and iap-dc1-2 normal, iap-dc2-1 and iap-dc2-2 backup.
func TestParseStatRecordedAnswers(t *testing.T) {
	T, F, U := topology.True, topology.False, topology.Unknown
	tests := []struct {
		file string
		want map[string]wantServer
	}{
		// Normal servers UP take the traffic; backups wait (manual, "backup").
		{"healthy.csv", map[string]wantServer{
			"iap-dc1-1": {"UP", false, T, true}, "iap-dc1-2": {"UP", false, T, true},
			"iap-dc2-1": {"UP", true, T, false}, "iap-dc2-2": {"UP", true, T, false},
		}},
		// One normal server DOWN and the other DRAIN: no normal server is
		// usable, so the first usable backup takes the traffic; a backup in
		// MAINT runs no check and takes none.
		{"degraded.csv", map[string]wantServer{
			"iap-dc1-1": {"DOWN", false, F, false}, "iap-dc1-2": {"DRAIN", false, T, false},
			"iap-dc2-1": {"UP", true, T, true}, "iap-dc2-2": {"MAINT", true, U, false},
		}},
		{"failover.csv", map[string]wantServer{
			"iap-dc1-1": {"DOWN", false, F, false}, "iap-dc1-2": {"DOWN", false, F, false},
			"iap-dc2-1": {"UP", true, T, true}, "iap-dc2-2": {"MAINT", true, U, false},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			b, err := os.ReadFile("testdata/" + tt.file)
			if err != nil {
				t.Fatal(err)
			}
			servers, err := ParseStat(b, "iap_servers")
			if err != nil {
				t.Fatal(err)
			}
			Route(servers, false)
			if len(servers) != len(tt.want) {
				t.Fatalf("%d servers, want %d: %+v", len(servers), len(tt.want), servers)
			}
			for _, s := range servers {
				w := tt.want[s.Name]
				// "UP 1/2": UP, one check short of full health (at start, or
				// after a failed check below fall): still UP.
				if strings.Fields(s.Status)[0] != w.status || s.Backup != w.backup || s.Reaches != w.reaches || s.Routed != w.routed {
					t.Errorf("%s = status %s backup %v reaches %v routed %v, want %+v", s.Name, s.Status, s.Backup, s.Reaches, s.Routed, w)
				}
				if !strings.HasPrefix(s.Address, "127.0.0.1:") {
					t.Errorf("%s address %q", s.Name, s.Address)
				}
			}
		})
	}
}

func TestParseStatRefusals(t *testing.T) {
	for name, answer := range map[string]string{
		"HAProxy's answer for an unknown backend": "No such proxy.\n\n",
		"a level too low for the command":         "Permission denied\n\n",
		"the answer of another backend":           "# pxname,svname,status,bck\nother,s1,UP,0\nother,BACKEND,UP,0\n\n",
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := ParseStat([]byte(answer), "iap_servers"); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	_, err := ParseStat([]byte("No such proxy.\n\n"), "iap_servers")
	if !strings.Contains(err.Error(), "No such proxy.") {
		t.Errorf("err %v does not give HAProxy's words", err)
	}
}

// HAProxy's rule (configuration manual, "backup", "option allbackups"):
// usable normal servers first; else the first usable backup, or every
// usable backup under allbackups. "UP 1/2" (a failed check short of fall)
// is still UP; NOLB takes no new traffic.
func TestRouteFollowsHAProxysBackupRule(t *testing.T) {
	s := func(status string, backup bool) topology.BalancerServer {
		return topology.BalancerServer{Status: status, Backup: backup}
	}
	tests := []struct {
		name       string
		servers    []topology.BalancerServer
		allBackups bool
		want       []bool
	}{
		{"a server going down is still used", []topology.BalancerServer{s("UP 1/2", false), s("UP", true)}, false, []bool{true, false}},
		{"NOLB and MAINT normal servers: the first usable backup", []topology.BalancerServer{s("NOLB", false), s("MAINT", false), s("DOWN", true), s("UP", true), s("UP", true)}, false, []bool{false, false, false, true, false}},
		{"allbackups: every usable backup", []topology.BalancerServer{s("DOWN", false), s("UP", true), s("UP", true)}, true, []bool{false, true, true}},
		{"an unchecked server is usable", []topology.BalancerServer{s("no check", false)}, false, []bool{true}},
		{"nothing usable: nothing routed", []topology.BalancerServer{s("DOWN", false), s("DOWN 1/2", true)}, false, []bool{false, false}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			Route(tt.servers, tt.allBackups)
			for i, srv := range tt.servers {
				if srv.Routed != tt.want[i] {
					t.Errorf("server %d (%s backup=%v) routed %v, want %v", i, srv.Status, srv.Backup, srv.Routed, tt.want[i])
				}
			}
		})
	}
}

// BenchmarkParseStat decodes and routes a recorded `show stat` answer of
// the lab's backend (4 servers, HAProxy 2.6's 100-odd columns), and one
// of 100 servers built from its lines, as a scrape does once per balancer.
func BenchmarkParseStat(b *testing.B) {
	recorded, err := os.ReadFile("testdata/healthy.csv")
	if err != nil {
		b.Fatal(err)
	}
	lines := strings.Split(strings.TrimRight(string(recorded), "\n"), "\n")
	var server string
	for _, l := range lines {
		if strings.HasPrefix(l, "iap_servers,iap-dc1-1,") {
			server = l
		}
	}
	if server == "" {
		b.Fatal("no iap-dc1-1 line in healthy.csv")
	}
	var large strings.Builder
	for _, l := range lines {
		if strings.HasPrefix(l, "iap_servers,") && !strings.HasPrefix(l, "iap_servers,BACKEND,") {
			continue
		}
		large.WriteString(l + "\n")
		if strings.HasPrefix(l, "# ") {
			for i := range 100 {
				large.WriteString(strings.Replace(server, "iap-dc1-1", fmt.Sprintf("iap-%03d", i), 1) + "\n")
			}
		}
	}
	for _, bc := range []struct {
		name   string
		answer []byte
		want   int
	}{{"4 servers (recorded)", recorded, 4}, {"100 servers", []byte(large.String()), 100}} {
		b.Run(bc.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(bc.answer)))
			for b.Loop() {
				servers, err := ParseStat(bc.answer, "iap_servers")
				if err != nil || len(servers) != bc.want {
					b.Fatalf("%d servers, %v", len(servers), err)
				}
				Route(servers, false)
			}
		})
	}
}

// A balancer built without config.Load's defaults has no timeout: refused
// by name, not every probe failing with "i/o timeout" (CI, stop 29).
func TestNewClientRefusesAZeroTimeout(t *testing.T) {
	_, err := NewClient(config.LoadBalancer{Name: "lb1", Kind: config.BalancerHAProxy, StatsSocket: "/run/haproxy.sock", Backend: "iap"}, nil, slog.New(slog.DiscardHandler))
	if err == nil || !strings.Contains(err.Error(), `"lb1"`) || !strings.Contains(err.Error(), "timeout") {
		t.Errorf("zero timeout: err %v, want a refusal naming lb1 and the timeout", err)
	}
}
