package packaging

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// TestRPM reads the .rpm with rpm (it is not installed here: IAP's RHEL
// family is not this machine): its header, its file list with the RHEL
// place of the environment file, its configuration files, that the files
// it carries are the ones built and committed (rpm --dump's SHA-256
// digests), and the postinstall script that creates the user.
func TestRPM(t *testing.T) {
	if err := lab.EnsurePackages(map[string]string{"rpm": "rpm"}); err != nil {
		t.Fatalf("reading the .rpm needs rpm: %v", err)
	}
	rpm := filepath.Join(packages(t), fmt.Sprintf("%s-%s-1.x86_64.rpm", name, version))

	info := mustOutput(t, "rpm", "-qpi", rpm)
	for _, want := range []string{"Name        : " + name, "Version     : " + version, "Architecture: x86_64", "License     : Apache-2.0"} {
		if !strings.Contains(info, want+"\n") {
			t.Errorf("rpm -qpi has no %q:\n%s", want, info)
		}
	}

	list := strings.Fields(mustOutput(t, "rpm", "-qpl", rpm))
	want := []string{
		"/usr/bin/" + name,
		"/usr/lib/systemd/system/" + name + ".service",
		"/usr/lib/systemd/system/" + name + ".socket",
		"/etc/sysconfig/" + name,
		"/etc/" + name + "/" + name + ".yml",
		"/usr/share/" + name + "/rules/iap_ha.rules.yml",
		"/usr/share/" + name + "/rules/iap_ha.alerts.yml",
		"/usr/share/" + name + "/rules/runbook.md",
		"/usr/share/" + name + "/examples/ha6.yml",
		"/usr/share/doc/" + name + "/LICENSE",
	}
	dashboards, _ := filepath.Glob("../dashboards/*.json")
	for _, d := range dashboards {
		want = append(want, "/usr/share/"+name+"/dashboards/"+filepath.Base(d))
	}
	for _, w := range want {
		if !slices.Contains(list, w) {
			t.Errorf("rpm -qpl has no %s", w)
		}
	}
	if slices.Contains(list, "/etc/default/"+name) {
		t.Errorf("the .rpm carries Debian's /etc/default/%s", name)
	}

	config := strings.Fields(mustOutput(t, "rpm", "-qpc", rpm))
	slices.Sort(config)
	if want := []string{"/etc/" + name + "/" + name + ".yml", "/etc/sysconfig/" + name}; !slices.Equal(config, want) {
		t.Errorf("rpm -qpc: %v, want %v", config, want)
	}

	// --dump: path size mtime digest mode owner group isconfig isdoc rdev symlink
	digests, modes := map[string]string{}, map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(mustOutput(t, "rpm", "-qp", "--dump", rpm)), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 {
			t.Fatalf("rpm --dump: %q", line)
		}
		digests[f[0]], modes[f[0]] = f[3], f[4]
	}
	for dst, src := range map[string]string{
		"/usr/bin/" + name: "../.build/linux-amd64/" + name,
		"/usr/lib/systemd/system/" + name + ".service":    name + ".service",
		"/usr/lib/systemd/system/" + name + ".socket":     name + ".socket",
		"/etc/sysconfig/" + name:                          name + ".env",
		"/etc/" + name + "/" + name + ".yml":              name + ".yml",
		"/usr/share/" + name + "/rules/iap_ha.alerts.yml": "../rules/iap_ha.alerts.yml",
	} {
		if got, want := digests[dst], sha256File(t, src); got != want {
			t.Errorf("%s in the .rpm has SHA-256 %s, want %s's %s", dst, got, src, want)
		}
	}
	for path, want := range map[string]string{"/usr/bin/" + name: "0100755", "/etc/" + name: "040750", "/etc/" + name + "/" + name + ".yml": "0100640"} {
		if modes[path] != want {
			t.Errorf("%s has mode %s in the .rpm, want %s", path, modes[path], want)
		}
	}

	scripts := mustOutput(t, "rpm", "-qp", "--scripts", rpm)
	if !strings.Contains(scripts, "postinstall scriptlet") || !strings.Contains(scripts, "useradd --system") {
		t.Errorf("the .rpm has no postinstall scriptlet creating the system user:\n%s", scripts)
	}
	if requires := strings.Fields(mustOutput(t, "rpm", "-qp", "--requires", rpm)); !slices.Contains(requires, "shadow-utils") {
		t.Errorf("the .rpm does not require shadow-utils (useradd): %v", requires)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}
