package collector

import (
	"context"
	"errors"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// stubCollector behaves as told: it answers, fails, hangs or panics.
type stubCollector struct {
	name  string
	err   error
	hang  chan struct{} // Probe blocks until it is closed
	panic bool
	desc  *prometheus.Desc
}

func newStub(name string) *stubCollector {
	return &stubCollector{name: name, desc: prometheus.NewDesc("iap_ha_stub_"+name, "A stub.", nil, nil)}
}

func (c *stubCollector) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c *stubCollector) Probe(ctx context.Context) (topology.Part, error) {
	switch {
	case c.panic:
		panic("stub " + c.name + " panics")
	case c.hang != nil:
		// Ignores ctx on purpose: the framework must not wait for it.
		<-c.hang
	case c.err != nil:
		return nil, c.err
	}
	return topology.IAPServers{{Name: c.name, Up: true}}, nil
}

func (c *stubCollector) Update(o *topology.Observation, ch chan<- prometheus.Metric) {
	for _, srv := range o.Snapshot.IAP {
		if srv.Name == c.name {
			ch <- prometheus.MustNewConstMetric(c.desc, prometheus.GaugeValue, 1)
		}
	}
}

// testScraper builds the named collectors from cfg, with the defaults Load
// would give it, as the binary would, and closes them when the test ends.
func testScraper(t *testing.T, cfg *config.Config, names ...string) *Scraper {
	t.Helper()
	s, err := NewScraper(configtest.Config(cfg), promslog.NewNopLogger(), names...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	return s
}

func stubScraper(cs ...*stubCollector) *Scraper {
	m := map[string]Collector{}
	for _, c := range cs {
		m[c.name] = c
	}
	return newScraperWith(config.Default(), promslog.NewNopLogger(), m)
}

// On synctest's clock, which moves only when every goroutine of the test
// waits: the three probes that return do so before the deadline however
// busy the machine, and the hung one is cut exactly at it.
func TestScrapeIsolatesFailures(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		good := newStub("good")
		failing := newStub("failing")
		failing.err = errors.New("boom")
		panicking := newStub("panicking")
		panicking.panic = true
		hanging := newStub("hanging")
		hanging.hang = make(chan struct{})
		defer close(hanging.hang)
		s := stubScraper(good, failing, panicking, hanging)

		const deadline = 300 * time.Millisecond
		ctx, cancel := context.WithTimeout(context.Background(), deadline)
		defer cancel()
		start := time.Now()
		scrape := s.Probe(ctx)
		if took := time.Since(start); took != deadline {
			t.Fatalf("scrape took %s, want the %s deadline (one probe hangs)", took, deadline)
		}
		if !errors.Is(scrape.Results["hanging"].Err, context.DeadlineExceeded) {
			t.Errorf("hanging collector: err = %v, want the deadline", scrape.Results["hanging"].Err)
		}
		if err := scrape.Results["panicking"].Err; err == nil || !strings.Contains(err.Error(), "panicked") {
			t.Errorf("panicking collector: err = %v, want a panic turned into an error", err)
		}

		want := `
# HELP iap_ha_scrape_collector_success Whether a collector's probes finished within the deadline without error (1) or not (0).
# TYPE iap_ha_scrape_collector_success gauge
iap_ha_scrape_collector_success{collector="failing"} 0
iap_ha_scrape_collector_success{collector="good"} 1
iap_ha_scrape_collector_success{collector="hanging"} 0
iap_ha_scrape_collector_success{collector="panicking"} 0
# HELP iap_ha_stub_good A stub.
# TYPE iap_ha_stub_good gauge
iap_ha_stub_good 1
`
		if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want),
			"iap_ha_scrape_collector_success", "iap_ha_stub_good", "iap_ha_stub_failing", "iap_ha_stub_hanging", "iap_ha_stub_panicking"); err != nil {
			t.Error(err)
		}
	})
}

func TestUpdatePanicCostsOnlyThatCollector(t *testing.T) {
	good := newStub("good")
	bad := &panickyUpdate{newStub("bad")}
	s := newScraperWith(config.Default(), promslog.NewNopLogger(), map[string]Collector{"good": good, "bad": bad})
	scrape := s.Probe(context.Background())
	n, err := testutil.GatherAndCount(registryWith(t, s.Metrics(scrape)), "iap_ha_stub_good")
	if err != nil || n != 1 {
		t.Fatalf("good collector's metrics after a panic in another's Update: n=%d err=%v", n, err)
	}
}

type panickyUpdate struct{ *stubCollector }

func (p *panickyUpdate) Update(*topology.Observation, chan<- prometheus.Metric) {
	panic("update panics")
}

func registryWith(t *testing.T, c prometheus.Collector) *prometheus.Registry {
	t.Helper()
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		t.Fatal(err)
	}
	return reg
}

func TestAbandonedProbeNeverWritesIntoTheSnapshot(t *testing.T) {
	late := &lateCollector{stubCollector: newStub("late"), release: make(chan struct{}), done: make(chan struct{})}
	s := newScraperWith(config.Default(), promslog.NewNopLogger(), map[string]Collector{"late": late})
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	scrape := s.Probe(ctx)
	close(late.release) // the probe now finishes after the scrape moved on
	<-late.done
	if len(scrape.Snapshot.IAP) != 0 {
		t.Fatalf("a probe that overran wrote into the snapshot: %+v", scrape.Snapshot.IAP)
	}
}

type lateCollector struct {
	*stubCollector
	release, done chan struct{}
}

func (c *lateCollector) Probe(context.Context) (topology.Part, error) {
	defer close(c.done)
	<-c.release
	return topology.IAPServers{{Name: "late"}}, nil
}

func BenchmarkScrapeFramework(b *testing.B) {
	var cs []*stubCollector
	for _, n := range []string{"a", "b", "c", "d", "e", "f"} {
		cs = append(cs, newStub(n))
	}
	s := stubScraper(cs...)
	b.ReportAllocs()
	for b.Loop() {
		scrape := s.Probe(context.Background())
		reg := prometheus.NewRegistry()
		reg.MustRegister(s.Metrics(scrape))
		if _, err := reg.Gather(); err != nil {
			b.Fatal(err)
		}
	}
}
