package packaging

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// jsonnet renders a snippet at the repository root with go-jsonnet from
// tools/go.mod, and decodes its JSON.
func jsonnet(t *testing.T, snippet string) any {
	t.Helper()
	cmd := exec.Command("go", "run", "-modfile=tools/go.mod", "github.com/google/go-jsonnet/cmd/jsonnet", "-e", snippet)
	cmd.Dir = ".."
	out, err := cmd.Output()
	if err != nil {
		stderr := ""
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("jsonnet -e %q: %v\n%s", snippet, err, stderr)
	}
	var v any
	if err := json.Unmarshal(out, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// asJSON decodes a YAML or JSON file into what encoding/json makes of it, so
// that it compares with jsonnet's output.
func asJSON(t *testing.T, path string) any {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(b, &y); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	j, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	var v any
	if err := json.Unmarshal(j, &v); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestMixin renders mixin.libsonnet: prometheusAlerts, prometheusRules and
// grafanaDashboards are the committed files, every dashboard of dashboards/
// included; and overriding _config.exporterSelector changes the exporters'
// job selector in IAPHAExporterDown and nothing else.
func TestMixin(t *testing.T) {
	mixin := jsonnet(t, `local m = import "mixin.libsonnet"; {alerts: m.prometheusAlerts, rules: m.prometheusRules, dashboards: m.grafanaDashboards}`).(map[string]any)
	if want := asJSON(t, "../rules/iap_ha.alerts.yml"); !reflect.DeepEqual(mixin["alerts"], want) {
		t.Error("prometheusAlerts differs from rules/iap_ha.alerts.yml")
	}
	if want := asJSON(t, "../rules/iap_ha.rules.yml"); !reflect.DeepEqual(mixin["rules"], want) {
		t.Error("prometheusRules differs from rules/iap_ha.rules.yml")
	}
	dashboards := mixin["dashboards"].(map[string]any)
	files, _ := filepath.Glob("../dashboards/*.json")
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
		if !reflect.DeepEqual(dashboards[filepath.Base(f)], asJSON(t, f)) {
			t.Errorf("grafanaDashboards[%q] differs from %s", filepath.Base(f), f)
		}
	}
	var got []string
	for name := range dashboards {
		got = append(got, name)
	}
	slices.Sort(got)
	if !slices.Equal(got, names) {
		t.Errorf("grafanaDashboards has %v, dashboards/ has %v", got, names)
	}

	const selector = `job="exporters"`
	overridden := jsonnet(t, `((import "mixin.libsonnet") + {_config+:: {exporterSelector: '`+selector+`'}}).prometheusAlerts`)
	changed := 0
	for _, g := range overridden.(map[string]any)["groups"].([]any) {
		for _, r := range g.(map[string]any)["rules"].([]any) {
			rule := r.(map[string]any)
			expr, _ := rule["expr"].(string)
			if strings.Contains(expr, `ha.*"`) {
				t.Errorf("%v still selects the default jobs: %s", rule["alert"], expr)
			}
			if strings.Contains(expr, selector) {
				changed++
				if rule["alert"] != "IAPHAExporterDown" {
					t.Errorf("the selector changed %v: %s", rule["alert"], expr)
				}
			}
		}
	}
	if changed != 2 {
		t.Errorf("the selector changed %d expressions, want IAPHAExporterDown's 2", changed)
	}
}
