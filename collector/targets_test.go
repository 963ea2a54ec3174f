package collector

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// A target's failure is logged at info once when it starts and once when it
// ends, never again while it lasts; a scrape that does not report a target
// (its probe failed as a whole) changes nothing.
func TestTargetFailureLoggedOncePerStateChange(t *testing.T) {
	iapDown := &topology.Snapshot{IAP: []topology.IAPServer{{Name: "iap-1", Error: "dial tcp 127.0.0.1:3000: connect: connection refused"}}}
	iapUp := &topology.Snapshot{IAP: []topology.IAPServer{{Name: "iap-1", Up: true}}}
	iapAPIFails := &topology.Snapshot{IAP: []topology.IAPServer{{Name: "iap-1", Up: true, APIUp: topology.False, Error: "POST /login: 401"}}}
	noReport := &topology.Snapshot{}
	sentinelDown := &topology.Snapshot{Redis: []topology.SentinelGroup{{Name: "dc1",
		Sentinels: []topology.SentinelView{{Address: "s1:26379", Up: true}, {Address: "s2:26379"}},
		Nodes:     []topology.RedisNode{{Address: "r1:6379", Up: true}}}}}
	for _, tc := range []struct {
		name  string
		scans []*topology.Snapshot
		want  []string // one entry per logged line: its message and target
	}{
		{"a target failing from the first scrape is logged once", []*topology.Snapshot{iapDown, iapDown, iapDown},
			[]string{"target failed iap iap-1"}},
		{"a target that answers is not logged", []*topology.Snapshot{iapUp, iapUp}, nil},
		{"failure then recovery, each once", []*topology.Snapshot{iapUp, iapDown, iapDown, iapUp, iapUp},
			[]string{"target failed iap iap-1", "target answers again iap iap-1"}},
		{"an IAP server whose API fails is failing", []*topology.Snapshot{iapUp, iapAPIFails},
			[]string{"target failed iap iap-1"}},
		{"down to API failing is one failure, not two", []*topology.Snapshot{iapDown, iapAPIFails}, []string{"target failed iap iap-1"}},
		{"a scrape without the target keeps its state", []*topology.Snapshot{iapDown, noReport, iapDown},
			[]string{"target failed iap iap-1"}},
		{"a Sentinel without an error text is still a failure", []*topology.Snapshot{sentinelDown},
			[]string{"target failed sentinel dc1/s2:26379"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			l := newTargetLog(slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelInfo})))
			for _, s := range tc.scans {
				l.observe(s)
			}
			var got []string
			for line := range strings.Lines(buf.String()) {
				if !strings.Contains(line, "level=INFO") {
					t.Errorf("not at info: %s", line)
				}
				got = append(got, field(line, "msg")+" "+field(line, "component")+" "+field(line, "target"))
			}
			if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
				t.Errorf("logged\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
			}
		})
	}
}

// A reload's new Scraper does not log again what the old one had logged.
func TestTargetFailureNotLoggedAgainAfterReload(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewTextHandler(&buf, nil))
	old, fresh := newTargetLog(logger), newTargetLog(logger)
	down := &topology.Snapshot{Gateways: []topology.Gateway{{Name: "iag-1", Error: "timeout"}}}
	old.observe(down)
	fresh.carryOver(old)
	fresh.observe(down)
	if n := strings.Count(buf.String(), "target failed"); n != 1 {
		t.Errorf("logged %d failures, want 1:\n%s", n, buf.String())
	}
}

// field reads key=value (quoted or not) from a logfmt line.
func field(line, key string) string {
	i := strings.Index(line, " "+key+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(key)+2:]
	if strings.HasPrefix(v, `"`) {
		return v[1 : 1+strings.Index(v[1:], `"`)]
	}
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		return v[:j]
	}
	return v
}
