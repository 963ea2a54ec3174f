// Package packaging tests the install paths of `make package` and
// `make image`: the release tarball, the .deb installed, run and removed, the
// .rpm read with rpm, the systemd units verified, and the container image run.
package packaging

import (
	"archive/tar"
	"bufio"
	"compress/gzip"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

const name = "iap_ha_exporter"

var version = func() string {
	b, err := os.ReadFile("../VERSION")
	if err != nil {
		panic(err)
	}
	return strings.TrimSpace(string(b))
}()

var built struct {
	once sync.Once
	dir  string
	err  error
}

// packages runs `make package` once for the whole test binary, into a
// temporary directory, and returns that directory.
func packages(t *testing.T) string {
	t.Helper()
	b := &built
	b.once.Do(func() {
		if b.dir, b.err = os.MkdirTemp("", "iap_ha_packages"); b.err != nil {
			return
		}
		b.err = run("make", "-C", "..", "package", "PKGDIR="+b.dir)
	})
	if b.err != nil {
		t.Fatalf("make package: %v", b.err)
	}
	return b.dir
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}

// run runs a command and returns its combined output in the error.
func run(name string, args ...string) error {
	_, err := output(name, args...)
	return err
}

func output(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

// TestTarball checks the release tarball has promu's layout: one directory
// iap_ha_exporter-<version>.linux-amd64/ holding the binary, LICENSE, the
// docs, the examples, the rule pack with its tests, every committed
// dashboard and the systemd units; and that the binary says its version.
func TestTarball(t *testing.T) {
	dir := packages(t)
	top := fmt.Sprintf("%s-%s.linux-amd64", name, version)
	f, err := os.Open(filepath.Join(dir, top+".tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	modes := map[string]int64{}
	tr := tar.NewReader(gz)
	extracted := t.TempDir()
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if !strings.HasPrefix(h.Name, top+"/") && h.Name != top+"/" {
			t.Errorf("%s is outside %s/", h.Name, top)
		}
		if h.Uid != 0 || h.Gid != 0 {
			t.Errorf("%s is owned by %d:%d, want 0:0", h.Name, h.Uid, h.Gid)
		}
		rel := strings.TrimPrefix(h.Name, top+"/")
		modes[rel] = h.Mode
		if rel == name {
			out, err := os.OpenFile(filepath.Join(extracted, name), os.O_CREATE|os.O_WRONLY, 0o755)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := io.Copy(out, tr); err != nil {
				t.Fatal(err)
			}
			out.Close()
		}
	}

	want := []string{name, "LICENSE", "README.md", "CHANGELOG.md", "CONFIGURATION.md", "mixin.libsonnet", "docs/how-it-works.md", "docs/fleet.md",
		"examples/prometheus-estates.yml", "examples/estates/prod-emea.yml", "examples/targets/estates.yml",
		"examples/fleet/prometheus-shard-0.yml", "examples/fleet/compose.yml",
		"examples/ha0.yml", "examples/ha3.yml", "examples/ha6.yml", "examples/prometheus.yml",
		"examples/alertmanager.yml", "examples/remediation.yml",
		"rules/iap_ha.rules.yml", "rules/iap_ha.alerts.yml", "rules/runbook.md",
		"systemd/iap_ha_exporter.service", "systemd/iap_ha_exporter.socket", "systemd/iap_ha_exporter.env", "systemd/iap_ha_exporter.yml"}
	for _, pattern := range []string{"../dashboards/*.json", "../rules/tests/*.yml"} {
		files, _ := filepath.Glob(pattern)
		if len(files) == 0 {
			t.Fatalf("nothing matches %s", pattern)
		}
		for _, f := range files {
			want = append(want, strings.TrimPrefix(f, "../"))
		}
	}
	for _, w := range want {
		if _, ok := modes[w]; !ok {
			t.Errorf("%s.tar.gz has no %s/%s", top, top, w)
		}
	}
	for rel := range modes {
		if strings.HasSuffix(rel, ".go") || strings.Contains(rel, "secrets") {
			t.Errorf("%s.tar.gz carries %s, which is no part of a release", top, rel)
		}
	}
	if modes[name]&0o111 == 0 {
		t.Errorf("%s is not executable (mode %o)", name, modes[name])
	}
	out, err := output(filepath.Join(extracted, name), "--version")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out, "version "+version+" ") {
		t.Errorf("--version of the packaged binary does not say %s:\n%s", version, out)
	}
}

// scrape waits until the exporter at addr answers /metrics, then checks the
// answer carries the build info of this version and the collectors' success
// metric (the exporter serves a scrape whatever its targets answer).
func scrape(t *testing.T, addr string, exited <-chan error) {
	t.Helper()
	var body string
	err := lab.Retry(60*time.Second, 200*time.Millisecond, func() error {
		select {
		case err := <-exited:
			t.Fatalf("the exporter exited before serving: %v", err)
		default:
		}
		req, _ := http.NewRequest(http.MethodGet, "http://"+addr+"/metrics", nil)
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "5")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("GET /metrics: %s", resp.Status)
		}
		body = string(b)
		return nil
	})
	if err != nil {
		t.Fatalf("the exporter never answered /metrics on %s: %v", addr, err)
	}
	var buildInfo bool
	s := bufio.NewScanner(strings.NewReader(body))
	s.Buffer(nil, 1<<20)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), "iap_ha_exporter_build_info{") && strings.Contains(s.Text(), `version="`+version+`"`) {
			buildInfo = true
		}
	}
	if !buildInfo {
		t.Errorf("/metrics has no iap_ha_exporter_build_info of version %s", version)
	}
	if !strings.Contains(body, `iap_ha_scrape_collector_success{collector="iap"}`) {
		t.Errorf("/metrics has no iap_ha_scrape_collector_success of the iap collector")
	}
}

func freeAddr(t *testing.T) string {
	t.Helper()
	ports, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf("127.0.0.1:%d", ports[0])
}
