package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
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
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	file := filepath.Join(t.TempDir(), "config.yml")
	if err := os.WriteFile(file, []byte("architecture: HA-0\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A configuration without targets: this test is about the binary, not the probes.
	cmd := exec.Command(binary, "--config.file", file, "--web.listen-address", addr)
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
	}()

	base := "http://" + addr
	waitFor(t, base+"/-/healthy")
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
