package main

import (
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

func writeFiles(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

// estatesWithExamples is a directory of estates that use the examples'
// secrets, as the examples do (secrets/… beside the file).
func estatesWithExamples(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	examples, err := filepath.Abs("../../examples")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(examples, "secrets"), filepath.Join(dir, "secrets")); err != nil {
		t.Fatal(err)
	}
	ha6, err := os.ReadFile(filepath.Join(examples, "ha6.yml"))
	if err != nil {
		t.Fatal(err)
	}
	writeFiles(t, dir, map[string]string{"emea.yml": string(ha6), "apac.yml": string(ha6)})
	return dir
}

func exitCode(err error) int {
	if ee, ok := err.(*exec.ExitError); ok {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// --config.check checks every estate's file and every remediation file as
// the receiver reads it, and prints every problem, each naming its estate.
func TestConfigCheckEstates(t *testing.T) {
	dir := estatesWithExamples(t)
	// Each estate's lease under a prefix of its own: the two share the
	// examples' Redis.
	remediation := func(journal string) string {
		return "site: dc2\njournal_file: " + filepath.Join(dir, journal) + "\nlease: {redis: dc2, key_prefix: \"" + journal + ":\"}\nauth: {bearer_token_file: secrets/remediation-token}\n"
	}
	writeFiles(t, dir, map[string]string{"emea.remediation.yml": remediation("emea.journal"), "apac.remediation.yml": remediation("apac.journal")})
	out, err := exec.Command(binary, "--config.check", "--config.estates", dir).CombinedOutput()
	if exitCode(err) != 0 {
		t.Fatalf("good estates: %v\n%s", err, out)
	}
	for _, want := range []string{"estate apac (" + filepath.Join(dir, "apac.yml") + "): OK", "estate emea (" + filepath.Join(dir, "emea.remediation.yml") + "): OK"} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the check does not say %q:\n%s", want, out)
		}
	}

	writeFiles(t, dir, map[string]string{
		"broken.yml":           "iap: {servers: [{url: http://127.0.0.1:1, rol: standby}]}\n",
		"apac.remediation.yml": remediation("emea.journal"),
		"emea.remediation.yml": strings.Replace(remediation("emea.journal"), "site: dc2", "site: dc9", 1),
	})
	out, err = exec.Command(binary, "--config.check", "--config.estates", dir).CombinedOutput()
	if exitCode(err) != 1 {
		t.Errorf("broken estates: exit %v, want 1\n%s", err, out)
	}
	for _, want := range []string{
		"estate broken (" + filepath.Join(dir, "broken.yml") + "): invalid configuration: iap.servers[0].rol (line 1)",
		"estate emea: " + filepath.Join(dir, "emea.remediation.yml") + ": ",
		`site (line 1): must name a site of the exporter's configuration, not "dc9"`,
		"estate apac (" + filepath.Join(dir, "apac.yml") + "): OK",
	} {
		if !strings.Contains(string(out), want) {
			t.Errorf("the check does not say %q:\n%s", want, out)
		}
	}

	// Two receivers on one journal: emea's is good again and names the
	// journal apac names; apac comes first (estates go by name).
	writeFiles(t, dir, map[string]string{"emea.remediation.yml": remediation("emea.journal")})
	if err := os.Remove(filepath.Join(dir, "broken.yml")); err != nil {
		t.Fatal(err)
	}
	out, err = exec.Command(binary, "--config.check", "--config.estates", dir).CombinedOutput()
	if want := "estates apac and emea both name journal_file"; exitCode(err) != 1 || !strings.Contains(string(out), want) {
		t.Errorf("two estates on one journal: exit %v, want 1 saying %q\n%s", err, want, out)
	}
}

// One estate's file or the estates: never both; and the estates' receivers
// come from their own files, not --remediation.config.file.
func TestEstatesExcludeConfigFile(t *testing.T) {
	dir := estatesWithExamples(t)
	for _, c := range []struct {
		args []string
		says string
	}{
		{[]string{"--config.estates", dir, "--config.file", "../../examples/ha6.yml"}, "--config.file and --config.estates exclude each other"},
		{[]string{"--config.estates", dir, "--config.check", "--config.file", "../../examples/ha6.yml"}, "--config.file and --config.estates exclude each other"},
		{[]string{"--config.estates", dir, "--remediation.config.file", "../../examples/remediation.yml"}, "NAME.remediation.yml"},
	} {
		out, err := exec.Command(binary, c.args...).CombinedOutput()
		if exitCode(err) != 2 || !strings.Contains(string(out), c.says) {
			t.Errorf("%v: exit %v, want 2 saying %q\n%s", c.args, err, c.says, out)
		}
	}
}

// The binary serves the estates (/probe per estate, the index, /metrics
// its own) and SIGHUP reloads them: an added estate is served, a broken
// one keeps its old configuration and is reported.
func TestServeEstatesAndReloadOnSIGHUP(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yml": "architecture: HA-0\n"})
	cmd, base := serve(t, "--config.estates", dir)
	for path, want := range map[string]string{
		"/":                         "api/v1/estates",
		"/metrics":                  `iap_ha_exporter_config_last_reload_successful{estate="a"} 1`,
		"/probe?estate=a":           "iap_ha_architecture_info",
		"/topology":                 `data-estate="a"`,
		"/topology?estate=a":        "IAP HA topology",
		"/api/v1/topology?estate=a": `"estate": "a"`,
		"/api/v1/estates":           `"name": "a"`,
	} {
		if body := fetch(t, base+path); !strings.Contains(body, want) {
			t.Errorf("GET %s does not contain %q:\n%s", path, want, body)
		}
	}
	for path, code := range map[string]int{"/probe": 400, "/probe?estate=b": 404, "/api/v1/topology": 400, "/topology?estate=b": 404} {
		if got := status(t, base+path); got != code {
			t.Errorf("GET %s: HTTP %d, want %d", path, got, code)
		}
	}

	writeFiles(t, dir, map[string]string{"a.yml": "architecture: HA-9\n", "b.yml": "architecture: HA-0\n"})
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fetch(t, base+"/metrics"), `iap_ha_exporter_config_last_reload_successful{estate="a"} 0`) {
		if time.Now().After(deadline) {
			t.Fatal("a broken estate sent with SIGHUP was not reported")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if got := status(t, base+"/probe?estate=b"); got != http.StatusOK {
		t.Errorf("the estate added by SIGHUP: HTTP %d", got)
	}
	if body := fetch(t, base+"/probe?estate=a"); !strings.Contains(body, "iap_ha_architecture_info") {
		t.Errorf("the broken estate lost its old configuration:\n%s", body)
	}
}

func status(t *testing.T, url string) int {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// Every link of the landing page, the index of estates and an estate's
// page answers 200, each estate's probe among them.
func TestEveryLinkOfTheEstatesPagesAnswers(t *testing.T) {
	dir := t.TempDir()
	writeFiles(t, dir, map[string]string{"a.yml": "architecture: HA-0\n", "b.yml": "architecture: HA-0\n"})
	_, base := serve(t, "--config.estates", dir)
	href := regexp.MustCompile(`(?:href|src)="([^"#]*)"`)
	probes := map[string]bool{}
	for _, page := range []string{"/", "/topology", "/topology?estate=b"} {
		pageURL, _ := url.Parse(base + page)
		for _, m := range href.FindAllStringSubmatch(fetch(t, pageURL.String()), -1) {
			target, err := pageURL.Parse(strings.ReplaceAll(m[1], "&amp;", "&"))
			if err != nil {
				t.Errorf("%s links %q: %v", page, m[1], err)
				continue
			}
			if target.Host != pageURL.Host {
				continue
			}
			if target.Path == "/probe" {
				probes[target.Query().Get("estate")] = true
			}
			if got := status(t, target.String()); got != http.StatusOK {
				t.Errorf("%s links %s, which answers %d", page, target, got)
			}
		}
	}
	if !probes["a"] || !probes["b"] {
		t.Errorf("the pages link the probes of %v, want a and b", probes)
	}
}

// The binary wires each estate's remediation (the contract of issue 25):
// the webhook is routed by the alerts' estate label, an estate without a
// remediation file is never acted on (200, counted on /metrics), each
// receiver's metrics are in its estate's /probe only, and a reload that
// adds an estate starts its receiver, while one whose receiver would share
// another's journal is refused for that estate alone (its gauge at 0).
func TestEstatesBinaryRoutesTheWebhookPerEstate(t *testing.T) {
	dead := closedAddress(t)
	dir := t.TempDir()
	estate := `sites: [{name: dc1, role: active}]
iap:
  servers: [{name: iap-1, url: "http://` + dead + `", site: dc1, role: active, cluster: prod}]
redis: [{name: dc1, site: dc1, sentinels: [{address: "` + dead + `"}]}]
`
	remediationFor := func(journal, prefix string) string {
		return "site: dc1\nauth: {bearer_token_file: token}\njournal_file: " + journal + "\nlease: {redis: dc1, key_prefix: " + prefix + "}\nclusters: [{name: prod}]\n"
	}
	writeFiles(t, dir, map[string]string{
		"token": "a-token\n", "a.yml": estate, "a.remediation.yml": remediationFor("journal-a", "a:"), "b.yml": estate,
	})
	cmd, base := serve(t, "--config.estates", dir)
	notification, err := os.ReadFile("../../remediation/testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(estate string) int {
		t.Helper()
		body := strings.ReplaceAll(string(notification), `"labels":{`, `"labels":{"estate":"`+estate+`",`)
		req, _ := http.NewRequest(http.MethodPost, base+remediationPath, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer a-token")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for estate, want := range map[string]int{"a": http.StatusAccepted, "b": http.StatusOK, "z": http.StatusNotFound} {
		if code := post(estate); code != want {
			t.Errorf("a notification for estate %s: HTTP %d, want %d", estate, code, want)
		}
	}
	if body := fetch(t, base+"/metrics"); !strings.Contains(body, `iap_ha_remediation_skipped_total{reason="estate_not_remediated"}`) {
		t.Errorf("/metrics does not count the notification of the estate without remediation:\n%s", body)
	}
	if body := fetch(t, base+"/probe?estate=a"); !strings.Contains(body, "iap_ha_remediation_") {
		t.Errorf("estate a's probe lacks its receiver's metrics:\n%s", body)
	}
	if body := fetch(t, base+"/probe?estate=b"); strings.Contains(body, "iap_ha_remediation_") {
		t.Errorf("estate b has no receiver, yet its probe carries remediation metrics:\n%s", body)
	}

	writeFiles(t, dir, map[string]string{
		"c.yml": estate, "c.remediation.yml": remediationFor("journal-c", "c:"),
		"d.yml": estate, "d.remediation.yml": remediationFor("journal-a", "d:"),
	})
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(fetch(t, base+"/metrics"), `iap_ha_exporter_config_last_reload_successful{estate="d"} 0`) {
		if time.Now().After(deadline) {
			t.Fatalf("estate d, whose receiver names estate a's journal, was not refused:\n%s", fetch(t, base+"/metrics"))
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body := fetch(t, base+"/metrics"); !strings.Contains(body, `iap_ha_exporter_config_last_reload_successful{estate="c"} 1`) {
		t.Errorf("estate c was not reloaded:\n%s", body)
	}
	if body := fetch(t, base+"/probe?estate=c"); !strings.Contains(body, "iap_ha_remediation_") {
		t.Errorf("estate c, added by SIGHUP, lacks its receiver's metrics:\n%s", body)
	}
	if code := post("c"); code != http.StatusAccepted {
		t.Errorf("a notification for estate c, added by SIGHUP: HTTP %d, want 202", code)
	}
	if code := post("a"); code != http.StatusAccepted {
		t.Errorf("estate a's receiver after the reload: HTTP %d, want 202", code)
	}
}
