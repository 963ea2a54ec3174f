package catalog

import (
	"os"
	"regexp"
	"slices"
	"sort"
	"testing"
)

func TestMetricsListsEveryKind(t *testing.T) {
	m, err := Metrics("../../examples/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range map[string][]string{
		"iap_ha_iap_up":                        {"server", "site"},
		"iap_ha_mongodb_member_state":          {"set", "member", "site"},
		"iap_ha_redis_up":                      {"master", "node", "site"},
		"iap_ha_rabbitmq_node_running":         {"cluster", "node"},
		"iap_ha_gateway_devices":               {"gateway", "site", "inventory"},
		"iap_ha_component_failures_tolerated":  {"component", "name"},
		"iap_ha_scrape_collector_success":      {"collector"},
		"iap_ha_remediation_skipped_total":     {"reason"},
		"iap_ha_config_last_reload_successful": nil,
		"iap_ha_exporter_build_info":           {"branch", "goarch", "goos", "goversion", "revision", "tags", "version"},
	} {
		got, ok := m[name]
		if !ok {
			t.Errorf("%s missing", name)
			continue
		}
		if !slices.Equal(got, labels) {
			t.Errorf("%s labels %v, want %v", name, got, labels)
		}
	}
}

var docMetricRE = regexp.MustCompile("(?m)^\\| `(iap_ha_[a-z0-9_]+)` \\|")

// METRICS.md documents every metric the exporter registers, and nothing else.
func TestMetricsDocumentMatchesRegistry(t *testing.T) {
	doc, err := os.ReadFile("../../METRICS.md")
	if err != nil {
		t.Fatal(err)
	}
	documented := map[string]bool{}
	for _, m := range docMetricRE.FindAllStringSubmatch(string(doc), -1) {
		documented[m[1]] = true
	}
	registered, err := Metrics("../../examples/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	var missing, stale []string
	for n := range registered {
		if !documented[n] {
			missing = append(missing, n)
		}
	}
	for n := range documented {
		if _, ok := registered[n]; !ok {
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
