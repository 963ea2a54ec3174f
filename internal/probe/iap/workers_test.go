package iap

import (
	"context"
	"testing"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

func TestCheckHealth(t *testing.T) {
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "a"}}})
	p := newClient(t, configFor(sim, config.IAPAuth{}))
	ctx := context.Background()
	a := sim.Server("a")

	steps := []struct {
		name         string
		change       func() error
		answered, up bool
	}{
		{"healthy", func() error { return nil }, true, true},
		{"a failed dependency answers 503", func() error { return a.SetService("mongo", false) }, true, false},
		{"a closed port does not answer", func() error { return a.SetFault(iapsim.Fault{Mode: iapsim.FaultDown}) }, false, false},
	}
	for _, st := range steps {
		if err := st.change(); err != nil {
			t.Fatal(err)
		}
		h, err := p.CheckHealth(ctx, "a")
		if err != nil {
			t.Fatal(err)
		}
		if h.Answered != st.answered || h.Up != st.up || (!h.Up && h.Reason == "") {
			t.Errorf("%s: got %+v, want answered=%v up=%v and a reason when down", st.name, h, st.answered, st.up)
		}
	}
	if _, err := p.CheckHealth(ctx, "nope"); err == nil {
		t.Error("an unknown server gave no error")
	}
}

func TestActivateThenWorkers(t *testing.T) {
	for _, rel := range []string{iapsim.Release2022_1, iapsim.Release2023_2, iapsim.Release6} {
		t.Run(rel, func(t *testing.T) {
			sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "s", Role: "standby", Release: rel}}})
			p := newClient(t, configFor(sim, userAuth()))
			ctx := context.Background()
			// The job worker has no route before 2023.1: Unknown, not false.
			wantJob := topology.True
			if rel == iapsim.Release2022_1 {
				wantJob = topology.Unknown
			}
			for range 2 { // a second activation changes nothing
				if err := p.Activate(ctx, "s"); err != nil {
					t.Fatal(err)
				}
				task, job, err := p.Workers(ctx, "s")
				if err != nil || task != topology.True || job != wantJob {
					t.Fatalf("after Activate: task %v job %v err %v; want task true, job %v", task, job, err, wantJob)
				}
			}
			if err := p.Deactivate(ctx, "s"); err != nil {
				t.Fatal(err)
			}
			if task, _, err := p.Workers(ctx, "s"); err != nil || task != topology.False {
				t.Errorf("after Deactivate: task %v, %v", task, err)
			}
		})
	}
}

func TestWorkersNeedCredentials(t *testing.T) {
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "a"}}})
	p := newClient(t, configFor(sim, config.IAPAuth{}))
	if _, _, err := p.Workers(context.Background(), "a"); err == nil {
		t.Error("Workers without credentials gave no error")
	}
}
