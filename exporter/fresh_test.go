package exporter

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// The remediation receiver re-verifies under its lease: a probe round begun
// before it took the lease (before a peer acted, or a server came back) is
// not a view of the estate as it now is. ScrapeFresh never joins a round
// under way; Scrape does (overlapping scrapes coalesce).
func TestScrapeFreshDoesNotJoinARoundUnderWay(t *testing.T) {
	sim, err := iapsim.Start(iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1", Role: "active"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	server := sim.Server("iap-1")
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "iap:\n  health_timeout: 1m\n  timeout: 1m\n  servers:\n    - {name: iap-1, url: \""+server.URL()+"\"}\n")
	e, err := New(Options{ConfigFile: file})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	// A round begins while the server hangs: it will see it down.
	if err := server.SetFault(iapsim.Fault{Mode: iapsim.FaultHung}); err != nil {
		t.Fatal(err)
	}
	older := make(chan *topology.Observation, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		defer cancel()
		sc, _ := e.Scrape(ctx)
		older <- sc
	}()
	if err := lab.Retry(10*time.Second, 10*time.Millisecond, func() error {
		if server.Requests("/health/status") == 0 {
			return context.DeadlineExceeded
		}
		return nil
	}); err != nil {
		t.Fatal("the first round never reached the server")
	}
	server.ClearFault()

	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	fresh, err := e.ScrapeFresh(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if up := iapUp(fresh, "iap-1"); !up {
		t.Error("ScrapeFresh returned the round begun while the server hung: it sees iap-1 down")
	}
	if up := iapUp(<-older, "iap-1"); up {
		t.Error("the round begun while the server hung sees it up: the test did not overlap the rounds")
	}
}

func iapUp(sc *topology.Observation, name string) bool {
	if sc == nil || sc.Snapshot == nil {
		return false
	}
	for _, s := range sc.Snapshot.IAP {
		if s.Name == name {
			return s.Up
		}
	}
	return false
}
