package main

import (
	"fmt"
	"io"
	"net"
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

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "iap_ha_exporter-test")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "iap_ha_exporter")
	if out, err := exec.Command("go", "build", "-o", binary, ".").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

func TestConfigCheck(t *testing.T) {
	good, _ := filepath.Glob("../../examples/ha*.yml")
	bad, _ := filepath.Glob("../../internal/config/testdata/bad/*.yml")
	if len(good) < 3 || len(bad) < 10 {
		t.Fatalf("found %d example and %d broken configs; the globs are wrong", len(good), len(bad))
	}
	for _, f := range good {
		out, err := exec.Command(binary, "--config.check", "--config.file", f).CombinedOutput()
		if err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
	for _, f := range bad {
		out, err := exec.Command(binary, "--config.check", "--config.file", f).CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() == 0 {
			t.Errorf("%s: want a non-zero exit, got %v\n%s", f, err, out)
		}
		if !strings.Contains(string(out), "invalid configuration") {
			t.Errorf("%s: the output does not say what is wrong:\n%s", f, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out, err := exec.Command(binary, "--version").CombinedOutput()
	if err != nil || !strings.Contains(string(out), "iap_ha_exporter, version") {
		t.Fatalf("--version: %v\n%s", err, out)
	}
}

// The binary serves its endpoints and reloads on SIGHUP, keeping the old
// configuration when the new one is bad.
func TestServeAndReloadOnSIGHUP(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(file, []byte("architecture: HA-0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A configuration without targets: this test is about the binary, not the probes.
	cmd, base := serve(t, "--config.file", file)
	for path, want := range map[string]string{
		"/":                "/metrics",
		"/-/healthy":       "Healthy",
		"/-/ready":         "Ready",
		"/metrics":         "iap_ha_config_last_reload_successful 1",
		"/topology":        "IAP HA topology",
		"/api/v1/topology": `"architecture"`,
	} {
		if body := fetch(t, base+path); !strings.Contains(body, want) {
			t.Errorf("GET %s does not contain %q:\n%s", path, want, body)
		}
	}

	if err := os.WriteFile(file, []byte("architecture: HA-9\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(fetch(t, base+"/metrics"), "iap_ha_config_last_reload_successful 0") {
		if time.Now().After(deadline) {
			t.Fatal("a bad configuration sent with SIGHUP was not reported by iap_ha_config_last_reload_successful")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if body := fetch(t, base+"/-/healthy"); !strings.Contains(body, "Healthy") {
		t.Fatalf("exporter unhealthy after a bad reload: %s", body)
	}
}

// serve starts the binary with args on a free loopback port, stops it when
// the test ends, and returns it and its base URL once it answers.
func serve(t *testing.T, args ...string) (*exec.Cmd, string) {
	t.Helper()
	addr := closedAddress(t)
	cmd := exec.Command(binary, append(args, "--web.listen-address", addr)...)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	})
	base := "http://" + addr
	waitFor(t, base+"/-/healthy")
	return cmd, base
}

func waitFor(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("exporter did not come up at %s: %v", url, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func fetch(t *testing.T, url string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// A reload reads the remediation file again against the exporter's new
// configuration: both apply or neither. Each step rewrites the files,
// reloads through /-/reload, and checks what is in force.
func TestReloadFollowsRemediationFile(t *testing.T) {
	dead := closedAddress(t)
	dir := t.TempDir()
	exporterFile, remediationFile, tokenFile := filepath.Join(dir, "config.yml"), filepath.Join(dir, "remediation.yml"), filepath.Join(dir, "token")
	estate := func(group string) string {
		return `sites: [{name: dc1, role: active}]
iap:
  servers: [{name: iap-1, url: "http://` + dead + `", site: dc1, role: active, cluster: prod}]
redis: [{name: ` + group + `, site: dc1, sentinels: [{address: "` + dead + `"}]}]
`
	}
	remediationFor := func(journal, lease string) string {
		return "site: dc1\nauth: {bearer_token_file: token}\njournal_file: " + journal + "\nlease: {redis: " + lease + "}\nclusters: [{name: prod}]\n"
	}
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(exporterFile, estate("dc1"))
	write(remediationFile, remediationFor("journal", "dc1"))
	write(tokenFile, "first-token\n")
	_, base := serve(t, "--config.file", exporterFile, "--remediation.config.file", remediationFile, "--no-collector.iap")
	notification, err := os.ReadFile("../../remediation/testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	post := func(token string) int {
		t.Helper()
		req, _ := http.NewRequest(http.MethodPost, base+remediationPath, strings.NewReader(string(notification)))
		req.Header.Set("Authorization", "Bearer "+token)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}

	steps := []struct {
		name                  string
		group, journal, lease string // the files' new content
		token                 string
		wantCode              int
		wantBody              []string // in the /-/reload answer
		inForceGroup          string   // after the reload
		goodToken, badToken   string
	}{
		{
			name: "the new estate drops the lease's group", group: "dc9", journal: "journal", lease: "dc1", token: "second-token",
			wantCode: http.StatusInternalServerError, wantBody: []string{remediationFile + ": ", "lease.redis (line 4)", `not "dc1"`},
			inForceGroup: "dc1", goodToken: "first-token", badToken: "second-token",
		},
		{
			name: "journal_file changed", group: "dc1", journal: "journal-elsewhere", lease: "dc1", token: "second-token",
			wantCode: http.StatusInternalServerError, wantBody: []string{remediationFile + ": journal_file: changed", "restart to change it"},
			inForceGroup: "dc1", goodToken: "first-token", badToken: "second-token",
		},
		{
			name: "both files good, the token rotated", group: "dc2", journal: "journal", lease: "dc2", token: "second-token",
			wantCode: http.StatusOK, wantBody: []string{"configuration reloaded"},
			inForceGroup: "dc2", goodToken: "second-token", badToken: "first-token",
		},
	}
	for _, step := range steps {
		write(exporterFile, estate(step.group))
		write(remediationFile, remediationFor(step.journal, step.lease))
		write(tokenFile, step.token+"\n")
		resp, err := http.Post(base+"/-/reload", "", nil)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != step.wantCode {
			t.Errorf("%s: /-/reload answered %d, want %d: %s", step.name, resp.StatusCode, step.wantCode, b)
		}
		for _, want := range step.wantBody {
			if !strings.Contains(string(b), want) {
				t.Errorf("%s: the /-/reload answer does not contain %q: %s", step.name, want, b)
			}
		}
		wantMetric := "iap_ha_config_last_reload_successful " + map[bool]string{true: "1", false: "0"}[step.wantCode == http.StatusOK]
		if body := fetch(t, base+"/metrics"); !strings.Contains(body, wantMetric) {
			t.Errorf("%s: /metrics does not contain %q", step.name, wantMetric)
		}
		if body := fetch(t, base+"/api/v1/topology"); !strings.Contains(body, `"name": "`+step.inForceGroup+`"`) {
			t.Errorf("%s: the exporter's configuration in force is not the one with group %s:\n%s", step.name, step.inForceGroup, body)
		}
		if code := post(step.goodToken); code != http.StatusAccepted {
			t.Errorf("%s: the token %s got %d, want 202", step.name, step.goodToken, code)
		}
		if code := post(step.badToken); code != http.StatusUnauthorized {
			t.Errorf("%s: the token %s got %d, want 401", step.name, step.badToken, code)
		}
	}
}

// closedAddress returns a loopback address nothing listens on (yet).
func closedAddress(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// Every link the landing page and the topology page show answers 200,
// wherever --web.telemetry-path puts the metrics: the toolkit's landing
// page linked /debug/pprof/…, which this binary does not serve, and the
// topology page linked /metrics whatever the flag said.
func TestEveryLinkOfThePagesAnswers(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(file, []byte("architecture: HA-0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, base := serve(t, "--config.file", file, "--web.telemetry-path", "/iap/metrics")
	href := regexp.MustCompile(`(?:href|src)="([^"#]*)"`)
	for _, page := range []string{"/", "/topology"} {
		pageURL, _ := url.Parse(base + page)
		links := href.FindAllStringSubmatch(fetch(t, pageURL.String()), -1)
		if len(links) < 2 {
			t.Fatalf("%s: found %d links; the pattern is wrong", page, len(links))
		}
		sawMetrics := false
		for _, m := range links {
			target, err := pageURL.Parse(m[1])
			if err != nil {
				t.Errorf("%s links %q: %v", page, m[1], err)
				continue
			}
			if target.Host != pageURL.Host {
				continue // documentation elsewhere
			}
			sawMetrics = sawMetrics || target.Path == "/iap/metrics"
			resp, err := http.Get(target.String())
			if err != nil {
				t.Errorf("%s links %s: %v", page, target, err)
				continue
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK {
				t.Errorf("%s links %s, which answers %d", page, target, resp.StatusCode)
			}
		}
		if !sawMetrics {
			t.Errorf("%s does not link the metrics at /iap/metrics", page)
		}
	}
}
