// Package helm tests the Helm chart in iap-ha-exporter/ with the Helm that
// tools/helm/go.mod pins (Debian packages none): `helm lint` and
// `helm template`, and that the PrometheusRule it renders is the
// repository's rules/, unchanged.
package helm

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

const chart = "iap-ha-exporter"

var (
	helmOnce sync.Once
	helmBin  string
	helmErr  error
)

// helm builds Helm from tools/helm once per test binary (the first build on
// a fresh machine takes minutes: client-go and the Kubernetes API types)
// and fails the test if it cannot.
func helm(t *testing.T, args ...string) (string, error) {
	t.Helper()
	helmOnce.Do(func() {
		helmBin, _ = filepath.Abs(filepath.Join("..", "..", ".build", "tools", "helm"))
		start := time.Now()
		cmd := exec.Command("go", "build", "-o", helmBin, "helm.sh/helm/v4/cmd/helm")
		cmd.Dir = filepath.Join("..", "..", "tools", "helm")
		if out, err := cmd.CombinedOutput(); err != nil {
			helmErr = fmt.Errorf("building helm from tools/helm: %v\n%s", err, out)
		}
		if d := time.Since(start); d > 30*time.Second {
			fmt.Fprintf(os.Stderr, "building helm from tools/helm took %s\n", d.Round(time.Second))
		}
	})
	if helmErr != nil {
		t.Fatal(helmErr)
	}
	cmd := exec.Command(helmBin, args...)
	// Helm's own state (repositories, cache) stays out of the tester's home.
	home := t.TempDir()
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+home, "HELM_CONFIG_HOME="+home, "HELM_DATA_HOME="+home)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if err != nil {
		err = fmt.Errorf("helm %s: %v\n%s%s", strings.Join(args, " "), err, stdout.String(), stderr.String())
	}
	return stdout.String(), err
}

// values writes a values file for one case.
func values(t *testing.T, text string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "values.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	return f
}

const remediationValues = `
secrets: {existingSecret: iap-ha-secrets}
remediation:
  enabled: true
  config:
    site: local
    dry_run: true
    auth: {bearer_token_file: /etc/iap_ha_exporter/secrets/remediation-token}
    journal_file: /var/lib/iap_ha_exporter/remediation.journal
`

func TestChartLintsStrict(t *testing.T) {
	for name, v := range map[string]string{
		"defaults":    "",
		"remediation": remediationValues,
		"everything optional on": `
existingConfigMap: my-config
webConfig: {existingSecret: web}
dashboards: {enabled: true}
serviceMonitor: {labels: {release: kube-prometheus-stack}, endpoint: {scheme: https}}
` + remediationValues,
	} {
		t.Run(name, func(t *testing.T) {
			if out, err := helm(t, "lint", "--strict", chart, "-f", values(t, v)); err != nil {
				t.Error(err)
			} else if !strings.Contains(out, "0 chart(s) failed") {
				t.Errorf("helm lint says:\n%s", out)
			}
		})
	}
}

// render runs helm template and returns its documents by kind.
func render(t *testing.T, valuesText string) map[string]map[string]any {
	t.Helper()
	out, err := helm(t, "template", "site1", chart, "-f", values(t, valuesText))
	if err != nil {
		t.Fatal(err)
	}
	docs := map[string]map[string]any{}
	dec := yaml.NewDecoder(strings.NewReader(out))
	for {
		var doc map[string]any
		if err := dec.Decode(&doc); err != nil {
			if err.Error() == "EOF" {
				break
			}
			t.Fatalf("helm template wrote YAML that does not parse: %v\n%s", err, out)
		}
		if doc == nil {
			continue
		}
		kind, _ := doc["kind"].(string)
		if _, dup := docs[kind]; dup && kind != "ConfigMap" {
			t.Fatalf("two documents of kind %s", kind)
		}
		if kind == "ConfigMap" && strings.HasSuffix(dig(doc, "metadata", "name").(string), "-dashboards") {
			kind = "ConfigMap/dashboards"
		}
		docs[kind] = doc
	}
	return docs
}

func dig(v any, path ...string) any {
	for _, p := range path {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[p]
	}
	return v
}

// The PrometheusRule is rules/iap_ha.rules.yml and rules/iap_ha.alerts.yml,
// group for group, rule for rule, expression for expression: the chart
// reads the files through files/'s links, never a copy that could drift.
func TestChartPrometheusRuleIsTheRuleFiles(t *testing.T) {
	var want []any
	for _, f := range []string{"iap_ha.rules.yml", "iap_ha.alerts.yml"} {
		b, err := os.ReadFile(filepath.Join("..", "..", "rules", f))
		if err != nil {
			t.Fatal(err)
		}
		var file map[string]any
		if err := yaml.Unmarshal(b, &file); err != nil {
			t.Fatal(err)
		}
		groups, _ := file["groups"].([]any)
		if len(groups) == 0 {
			t.Fatalf("rules/%s has no groups", f)
		}
		want = append(want, groups...)
	}
	got := dig(render(t, "")["PrometheusRule"], "spec", "groups")
	if !reflect.DeepEqual(got, want) {
		gotText, _ := yaml.Marshal(got)
		wantText, _ := yaml.Marshal(want)
		t.Errorf("the PrometheusRule's groups differ from rules/:\n--- rendered\n%s\n--- rules/\n%s", gotText, wantText)
	}
	for _, f := range []string{"iap_ha.rules.yml", "iap_ha.alerts.yml"} {
		target, err := os.Readlink(filepath.Join(chart, "files", f))
		if err != nil || filepath.Clean(filepath.Join(chart, "files", target)) != filepath.Join("..", "..", "rules", f) {
			t.Errorf("%s/files/%s is not a link to rules/%s (%q, %v)", chart, f, f, target, err)
		}
	}
}

// The ServiceMonitor names the job as the rules expect (IAPHAExporterDown
// watches job=~"iap[_-]ha.*"), scrapes the telemetry path, and the rest of the
// release fits together.
func TestChartTemplate(t *testing.T) {
	docs := render(t, "telemetryPath: /iap/metrics\nserviceMonitor: {job: iap_ha_dc1}\nsecrets: {existingSecret: iap-ha-secrets}\n")
	for _, kind := range []string{"Deployment", "Service", "ConfigMap", "ServiceMonitor", "PrometheusRule"} {
		if docs[kind] == nil {
			t.Errorf("no %s rendered", kind)
		}
	}
	for _, kind := range []string{"PersistentVolumeClaim", "ConfigMap/dashboards"} {
		if docs[kind] != nil {
			t.Errorf("%s rendered though not asked for", kind)
		}
	}
	if got := dig(docs["Service"], "metadata", "labels", "iap-ha-exporter/job"); got != "iap_ha_dc1" {
		t.Errorf("the Service's job label is %v, want iap_ha_dc1", got)
	}
	if got := dig(docs["ServiceMonitor"], "spec", "jobLabel"); got != "iap-ha-exporter/job" {
		t.Errorf("the ServiceMonitor's jobLabel is %v", got)
	}
	endpoint := dig(docs["ServiceMonitor"], "spec", "endpoints").([]any)[0]
	if dig(endpoint, "path") != "/iap/metrics" || dig(endpoint, "port") != "http" || dig(endpoint, "scrapeTimeout") != "10s" {
		t.Errorf("the ServiceMonitor's endpoint is %v", endpoint)
	}
	container := dig(docs["Deployment"], "spec", "template", "spec", "containers").([]any)[0]
	args := fmt.Sprint(dig(container, "args"))
	for _, want := range []string{"--config.file=/etc/iap_ha_exporter/config/iap_ha_exporter.yml", "--web.telemetry-path=/iap/metrics"} {
		if !strings.Contains(args, want) {
			t.Errorf("the container's args %s lack %s", args, want)
		}
	}
	if strings.Contains(args, "--remediation") {
		t.Errorf("remediation is on though not asked for: %s", args)
	}
	if mounts := fmt.Sprint(dig(container, "volumeMounts")); !strings.Contains(mounts, "/etc/iap_ha_exporter/secrets") {
		t.Errorf("the secret is not mounted: %s", mounts)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(dig(docs["ConfigMap"], "data", "iap_ha_exporter.yml").(string)), &cfg); err != nil || cfg["architecture"] != "HA-0" {
		t.Errorf("the ConfigMap does not carry the configuration of values.yaml: %v %v", cfg, err)
	}
}

// The configuration the default values render is one the exporter starts
// with (its --config.check passes).
func TestChartDefaultConfigurationChecks(t *testing.T) {
	docs := render(t, "")
	dir := t.TempDir()
	file := filepath.Join(dir, "iap_ha_exporter.yml")
	if err := os.WriteFile(file, []byte(dig(docs["ConfigMap"], "data", "iap_ha_exporter.yml").(string)), 0o600); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(dir, "iap_ha_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/iap_ha_exporter").CombinedOutput(); err != nil {
		t.Fatalf("building the exporter: %v\n%s", err, out)
	}
	if out, err := exec.Command(bin, "--config.check", "--config.file", file).CombinedOutput(); err != nil {
		t.Errorf("--config.check on the chart's default configuration: %v\n%s", err, out)
	}
}

// With remediation on: the receiver's flag and file, its journal on a
// claim that outlives the release, one pod at a time.
func TestChartRemediation(t *testing.T) {
	docs := render(t, remediationValues)
	container := dig(docs["Deployment"], "spec", "template", "spec", "containers").([]any)[0]
	if args := fmt.Sprint(dig(container, "args")); !strings.Contains(args, "--remediation.config.file=/etc/iap_ha_exporter/config/remediation.yml") {
		t.Errorf("the receiver is not started: %s", args)
	}
	if got := dig(docs["Deployment"], "spec", "strategy", "type"); got != "Recreate" {
		t.Errorf("strategy %v: two pods would contend for the journal", got)
	}
	if got := dig(docs["PersistentVolumeClaim"], "metadata", "annotations", "helm.sh/resource-policy"); got != "keep" {
		t.Errorf("the journal's claim is not kept on uninstall: %v", got)
	}
	var rem map[string]any
	if err := yaml.Unmarshal([]byte(dig(docs["ConfigMap"], "data", "remediation.yml").(string)), &rem); err != nil || rem["dry_run"] != true {
		t.Errorf("remediation.yml is not the values' (dry_run): %v %v", rem, err)
	}
	if _, err := helm(t, "template", "site1", chart, "-f", values(t, remediationValues+"replicas: 2\n")); err == nil ||
		!strings.Contains(err.Error(), "needs replicas: 1") {
		t.Errorf("two replicas with remediation rendered: %v", err)
	}
}

// The chart's appVersion is the exporter's VERSION.
func TestChartVersion(t *testing.T) {
	v, err := os.ReadFile(filepath.Join("..", "..", "VERSION"))
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(chart, "Chart.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil {
		t.Fatal(err)
	}
	if want := strings.TrimSpace(string(v)); c.AppVersion != want || c.Version != want {
		t.Errorf("Chart.yaml version %q appVersion %q, VERSION %q", c.Version, c.AppVersion, want)
	}
}

// With dashboards on, Grafana's sidecar gets every committed dashboard, each
// as it is in dashboards/.
func TestChartDashboardsAreTheCommittedOnes(t *testing.T) {
	data, _ := dig(render(t, "dashboards: {enabled: true}\n")["ConfigMap/dashboards"], "data").(map[string]any)
	files, err := filepath.Glob(filepath.Join("..", "..", "dashboards", "*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no dashboards: %v", err)
	}
	if len(data) != len(files) {
		t.Errorf("the ConfigMap holds %d dashboards, dashboards/ %d", len(data), len(files))
	}
	for _, f := range files {
		want, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := data[filepath.Base(f)].(string); strings.TrimSpace(got) != strings.TrimSpace(string(want)) {
			t.Errorf("%s differs in the ConfigMap", filepath.Base(f))
		}
	}
}

const estatesValues = `
secrets: {existingSecret: iap-ha-secrets}
estates:
  prod-emea:
    architecture: HA-0
    sites: [{name: emea, role: active}]
    iap:
      auth: {username: monitor@itential, password_file: /etc/iap_ha_exporter/secrets/iap-password}
      servers: [{name: iap-1, url: "http://iap-1.emea:3000"}]
  staging-apac:
    architecture: HA-0
    sites: [{name: apac, role: active}]
    iap:
      servers: [{name: iap-1, url: "http://iap-1.apac:3000"}]
`

// With estates: the exporter reads one file per estate from a directory
// (--config.estates), each rendered from its values and passing
// --config.check; the ServiceMonitor probes each estate at
// /probe?estate=NAME with the estate label, and still scrapes the
// exporter's own metrics; remediation is refused.
func TestChartEstates(t *testing.T) {
	if out, err := helm(t, "lint", "--strict", chart, "-f", values(t, estatesValues)); err != nil || !strings.Contains(out, "0 chart(s) failed") {
		t.Errorf("helm lint: %v\n%s", err, out)
	}
	docs := render(t, estatesValues)
	container := dig(docs["Deployment"], "spec", "template", "spec", "containers").([]any)[0]
	args := fmt.Sprint(dig(container, "args"))
	if !strings.Contains(args, "--config.estates=/etc/iap_ha_exporter/estates") || strings.Contains(args, "--config.file") {
		t.Errorf("the container's args %s: want --config.estates and no --config.file", args)
	}
	var items []any
	for _, v := range dig(docs["Deployment"], "spec", "template", "spec", "volumes").([]any) {
		if dig(v, "name") == "estates" {
			items, _ = dig(v, "configMap", "items").([]any)
		}
	}
	if mounts := fmt.Sprint(dig(container, "volumeMounts")); !strings.Contains(mounts, "/etc/iap_ha_exporter/estates") {
		t.Errorf("the estates are not mounted: %s", mounts)
	}

	bin := filepath.Join(t.TempDir(), "iap_ha_exporter")
	if out, err := exec.Command("go", "build", "-o", bin, "../../cmd/iap_ha_exporter").CombinedOutput(); err != nil {
		t.Fatalf("building the exporter: %v\n%s", err, out)
	}
	data := dig(docs["ConfigMap"], "data").(map[string]any)
	var files []string
	for _, it := range items {
		key, path := dig(it, "key").(string), dig(it, "path").(string)
		files = append(files, path)
		text, ok := data[key].(string)
		if !ok {
			t.Errorf("the estates volume names key %s, which the ConfigMap lacks", key)
			continue
		}
		// The secret file the configuration names is the pod's; here a
		// stand-in at the same name.
		text = strings.ReplaceAll(text, "/etc/iap_ha_exporter/secrets/", "secrets/")
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "secrets"), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "secrets", "iap-password"), []byte("secret\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		file := filepath.Join(dir, path)
		if err := os.WriteFile(file, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(bin, "--config.check", "--config.file", file).CombinedOutput(); err != nil {
			t.Errorf("--config.check on the chart's estate %s: %v\n%s", path, err, out)
		}
	}
	if want := []string{"prod-emea.yml", "staging-apac.yml"}; !reflect.DeepEqual(files, want) {
		t.Errorf("estate files %v, want %v", files, want)
	}

	endpoints := dig(docs["ServiceMonitor"], "spec", "endpoints").([]any)
	var probed []string
	for _, e := range endpoints {
		if dig(e, "path") != "/probe" {
			if dig(e, "path") != "/metrics" {
				t.Errorf("an endpoint of path %v", dig(e, "path"))
			}
			continue
		}
		estates, _ := dig(e, "params", "estate").([]any)
		relabel, _ := dig(e, "relabelings").([]any)
		if len(estates) != 1 || len(relabel) == 0 || dig(relabel[0], "targetLabel") != "estate" || dig(relabel[0], "replacement") != estates[0] {
			t.Errorf("endpoint %v: want params estate=[NAME] and a relabeling setting estate to NAME", e)
			continue
		}
		probed = append(probed, estates[0].(string))
	}
	if want := []string{"prod-emea", "staging-apac"}; !reflect.DeepEqual(probed, want) || len(endpoints) != 3 {
		t.Errorf("the ServiceMonitor probes %v in %d endpoints, want %v and the exporter's /metrics", probed, len(endpoints), want)
	}

	if _, err := helm(t, "template", "site1", chart, "-f", values(t, estatesValues+remediationValues)); err == nil ||
		!strings.Contains(err.Error(), "remediation.enabled with estates") {
		t.Errorf("estates with remediation rendered: %v", err)
	}
	if _, err := helm(t, "template", "site1", chart, "-f", values(t, "estates: {'bad name': {architecture: HA-0}}\n")); err == nil ||
		!strings.Contains(err.Error(), "no estate name") {
		t.Errorf("an estate named %q rendered: %v", "bad name", err)
	}
}
