package exporter

import (
	"os"
	"regexp"
	"sort"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/remediation"
)

var (
	docMetricRE = regexp.MustCompile("(?m)^\\| `(iap_ha_[a-z0-9_]+)` \\|")
	descNameRE  = regexp.MustCompile(`fqName: "([^"]+)"`)
)

// RegisteredMetrics lists every iap_ha_ metric the exporter can expose with
// the HA-6 example configuration (one target of every kind): the collectors'
// descriptors and the exporter's own metrics.
func registeredMetrics(t *testing.T) map[string]bool {
	t.Helper()
	e, err := New(Options{ConfigFile: "../../examples/ha6.yml", Collectors: collector.Names(), Logger: promslog.NewNopLogger()})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	names := map[string]bool{}
	ch := make(chan *prometheus.Desc)
	go func() {
		e.scraper.Load().Describe(ch)
		close(ch)
	}()
	for d := range ch {
		if m := descNameRE.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	mfs, err := e.Registry().Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if len(mf.GetName()) > 7 && mf.GetName()[:7] == "iap_ha_" {
			names[mf.GetName()] = true
		}
	}
	return names
}

// METRICS.md documents every metric the collectors register, and nothing else.
func TestMetricsDocumentMatchesRegistry(t *testing.T) {
	doc, err := os.ReadFile("../../METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range docMetricRE.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	registered := registeredMetrics(t)
	if len(registered) < 20 {
		t.Fatalf("only %d metrics registered; the collectors did not build", len(registered))
	}
	var missing, stale []string
	for n := range registered {
		if !documented[n] {
			missing = append(missing, n)
		}
	}
	for n := range documented {
		if !registered[n] && !externallyRegistered[n] {
			stale = append(stale, n)
		}
	}
	sort.Strings(missing)
	sort.Strings(stale)
	if len(missing) > 0 {
		t.Errorf("registered but not in METRICS.md: %v", missing)
	}
	if len(stale) > 0 {
		t.Errorf("in METRICS.md but never registered: %v", stale)
	}
}

// externallyRegistered are documented metrics registered outside the
// collectors and the exporter: the remediation receiver's, when enabled.
var externallyRegistered = func() map[string]bool {
	ch := make(chan *prometheus.Desc)
	go func() {
		remediation.Describe(ch)
		close(ch)
	}()
	names := map[string]bool{}
	for d := range ch {
		if m := descNameRE.FindStringSubmatch(d.String()); m != nil {
			names[m[1]] = true
		}
	}
	return names
}()
