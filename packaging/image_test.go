package packaging

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// TestImage builds the image with `make image` (podman), checks what it is
// (only the binary, a CA bundle and the example configuration; user
// 65534; port 9894), runs it and scrapes it, and checks the process runs as
// 65534 on the host.
func TestImage(t *testing.T) {
	if err := lab.EnsurePackages(map[string]string{"podman": "podman", "runc": "runc"}); err != nil {
		t.Fatalf("the image test needs podman and runc: %v", err)
	}
	// On the Debian 12 test machines podman's default ulimits are refused and
	// crun fails on the hybrid cgroups: no default ulimits, runc, cgroupfs.
	conf := filepath.Join(t.TempDir(), "containers.conf")
	if err := os.WriteFile(conf, []byte("[containers]\ndefault_ulimits = []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	env := append(os.Environ(), "CONTAINERS_CONF="+conf)
	podman := func(args ...string) (string, error) {
		cmd := exec.Command("podman", append([]string{"--runtime", "runc", "--cgroup-manager=cgroupfs"}, args...)...)
		cmd.Env = env
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		if err := cmd.Run(); err != nil {
			return "", fmt.Errorf("podman %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return stdout.String(), nil
	}

	image := fmt.Sprintf("localhost/iap_ha_exporter:test-%d", os.Getpid())
	build := exec.Command("make", "-C", "..", "image", "IMAGE="+image)
	build.Env = env
	t.Cleanup(func() { podman("rmi", "--force", image) })
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("make image: %v\n%s", err, out)
	}

	out, err := podman("image", "inspect", "--format", "{{json .Config}}", image)
	if err != nil {
		t.Fatal(err)
	}
	var config struct {
		User         string
		ExposedPorts map[string]struct{}
		Entrypoint   []string
		Cmd          []string
	}
	if err := json.Unmarshal([]byte(out), &config); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	if config.User != "65534:65534" {
		t.Errorf("image user %q, want 65534:65534 (nobody), never root", config.User)
	}
	if _, ok := config.ExposedPorts["9894/tcp"]; !ok || len(config.ExposedPorts) != 1 {
		t.Errorf("image exposes %v, want 9894/tcp", config.ExposedPorts)
	}
	if want := []string{"/bin/" + name}; !slices.Equal(config.Entrypoint, want) {
		t.Errorf("entrypoint %v, want %v", config.Entrypoint, want)
	}

	// FROM scratch: the image's files are exactly what the Containerfile copies.
	created, err := podman("create", image)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(created)
	tarball := filepath.Join(t.TempDir(), "image.tar")
	_, err = podman("export", "--output", tarball, id)
	podman("rm", "--force", id)
	if err != nil {
		t.Fatal(err)
	}
	files := regularFiles(t, tarball)
	if want := []string{"bin/" + name, "etc/iap_ha_exporter/iap_ha_exporter.yml", "etc/ssl/certs/ca-certificates.crt"}; !slices.Equal(files, want) {
		t.Errorf("the image holds %v, want exactly %v", files, want)
	}

	// Run with the image's configuration and a free port on the host network.
	addr := freeAddr(t)
	container := fmt.Sprintf("iap_ha_exporter-test-%d", os.Getpid())
	t.Cleanup(func() { podman("rm", "--force", "--time", "2", container) })
	args := append([]string{"run", "--detach", "--name", container, "--network=host", image}, config.Cmd...)
	if _, err := podman(append(args, "--web.listen-address="+addr)...); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if t.Failed() {
			logs, _ := podman("logs", container)
			t.Logf("container log:\n%s", logs)
		}
	}()
	scrape(t, addr, nil)

	pid, err := podman("inspect", "--format", "{{.State.Pid}}", container)
	if err != nil {
		t.Fatal(err)
	}
	status, err := os.ReadFile("/proc/" + strings.TrimSpace(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	var uids []string // real, effective, saved, filesystem
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 5 && f[0] == "Uid:" {
			uids = f[1:]
		}
	}
	if want := []string{"65534", "65534", "65534", "65534"}; !slices.Equal(uids, want) {
		t.Errorf("the exporter in the container runs as uids %v, want %v", uids, want)
	}
}

// regularFiles lists the regular files of a tar archive, sorted.
func regularFiles(t *testing.T, path string) []string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files []string
	tr := tar.NewReader(f)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			files = append(files, strings.TrimPrefix(h.Name, "./"))
		}
	}
	slices.Sort(files)
	return files
}
