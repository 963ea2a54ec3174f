package rules

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/estate"
	labpkg "github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// ruleFiles are the pack; tests/*.yml are promtool unit tests of it.
var ruleFiles = []string{"iap_ha.rules.yml", "iap_ha.alerts.yml"}

// debianPromtool is Prometheus 2.42's promtool from Debian 12's prometheus
// package, the oldest generation the pack supports (keep_firing_for came in 2.42).
const debianPromtool = "/usr/bin/promtool"

// TestPromtool runs `promtool check rules` on the pack and on the lab's fast
// copy of it, `promtool check config` on examples/prometheus.yml, and
// `promtool test rules` on every test file, with both
// promtool generations: one subtest each, so CI counts them. A promtool that
// is missing or cannot be built fails the test.
func TestPromtool(t *testing.T) {
	tests, err := filepath.Glob("tests/*.yml")
	if err != nil || len(tests) == 0 {
		t.Fatalf("no rule tests in tests/: %v", err)
	}
	if err := labpkg.EnsurePackages(map[string]string{debianPromtool: "prometheus"}); err != nil {
		t.Fatal(err)
	}
	lab, err := estate.LabRules("iap_ha.*.yml", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	for _, tool := range []struct{ name, path string }{
		{"2.42", debianPromtool},
		{"3.x", promtool3(t)},
	} {
		t.Run(tool.name, func(t *testing.T) {
			if _, err := os.Stat(tool.path); err != nil {
				t.Fatalf("promtool %s: %v (Debian 12: apt-get install prometheus)", tool.name, err)
			}
			t.Run("check", func(t *testing.T) { promtool(t, tool.path, ".", append([]string{"check", "rules"}, ruleFiles...)...) })
			t.Run("check-lab", func(t *testing.T) { promtool(t, tool.path, ".", append([]string{"check", "rules"}, lab...)...) })
			t.Run("check-config", func(t *testing.T) { promtool(t, tool.path, "..", "check", "config", "examples/prometheus.yml") })
			for _, f := range tests {
				t.Run("test/"+filepath.Base(f), func(t *testing.T) {
					promtool(t, tool.path, "tests", "test", "rules", filepath.Base(f))
				})
			}
		})
	}
}

func promtool(t *testing.T, bin, dir string, args ...string) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

var promtool3Build struct {
	once sync.Once
	path string
	err  error
}

// promtool3 builds Prometheus 3.x's promtool from the version tools/go.mod
// pins, once per version into the user's cache directory outside the
// repository: the first build takes minutes, later runs reuse it.
func promtool3(t *testing.T) string {
	t.Helper()
	b := &promtool3Build
	b.once.Do(func() { b.path, b.err = buildPromtool3() })
	if b.err != nil {
		t.Fatalf("promtool 3.x could not be built: %v", b.err)
	}
	return b.path
}

func buildPromtool3() (string, error) {
	version, err := requiredVersion("../tools/go.mod", "github.com/prometheus/prometheus")
	if err != nil {
		return "", err
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, "iap_ha_exporter")
	bin := filepath.Join(dir, fmt.Sprintf("promtool-%s-%s-%s", version, runtime.GOOS, runtime.GOARCH))
	if _, err := os.Stat(bin); err == nil {
		return bin, nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	// Built under a temporary name and renamed, so that a build cut short
	// never leaves a broken binary under the cached name.
	tmp := fmt.Sprintf("%s.%d.tmp", bin, os.Getpid())
	defer os.Remove(tmp)
	// go test shows this only with -v or on failure: `make test` builds it
	// aloud first (scripts/build-tools.sh).
	fmt.Fprintf(os.Stderr, "building promtool 3.x (prometheus %s, tools/go.mod) into %s: the first build takes minutes …\n", version, bin)
	start := time.Now()
	cmd := exec.Command("go", "build", "-o", tmp, "github.com/prometheus/prometheus/cmd/promtool")
	cmd.Dir = "../tools"
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build in tools/: %v\n%s", err, out)
	}
	fmt.Fprintf(os.Stderr, "built promtool 3.x in %s\n", time.Since(start).Round(time.Second))
	return bin, os.Rename(tmp, bin)
}

// requiredVersion reads the version a go.mod requires of module.
func requiredVersion(gomod, module string) (string, error) {
	f, err := os.Open(gomod)
	if err != nil {
		return "", err
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		fields := strings.Fields(strings.TrimPrefix(strings.TrimSpace(s.Text()), "require "))
		if len(fields) >= 2 && fields[0] == module {
			return fields[1], nil
		}
	}
	if err := s.Err(); err != nil {
		return "", err
	}
	return "", fmt.Errorf("%s does not require %s", gomod, module)
}
