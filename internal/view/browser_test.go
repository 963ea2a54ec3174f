package view_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/exporter"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
	"github.com/iapha/iap_ha_exporter/internal/view"
)

// chromium runs Debian's Chromium headless with the flags this machine
// needs (no sandbox as root, no background networking on a closed network).
func chromium(t *testing.T, args ...string) string {
	t.Helper()
	if err := lab.EnsurePackages(map[string]string{"chromium": "chromium"}); err != nil {
		t.Fatal(err)
	}
	bin, err := exec.LookPath("chromium")
	if err != nil {
		t.Fatal(err)
	}
	base := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1500,1100"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, append(base, args...)...).Output()
	if err != nil {
		t.Fatalf("chromium %v: %v", args, err)
	}
	return string(out)
}

// startHA6 serves the simulated HA-6 estate (iapsim and mongosim on free
// ports) and writes the exporter configuration for it.
func startHA6(t *testing.T) (*iapsim.Sim, string) {
	t.Helper()
	topo, err := iapsim.LoadTopology("../../fixtures/iapsim/testdata/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	topo.Control = ""
	for i := range topo.Servers {
		topo.Servers[i].Listen = "127.0.0.1:0"
	}
	iap, err := iapsim.Start(topo)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(iap.Close)

	sc, err := mongosim.Builtin("ha6")
	if err != nil {
		t.Fatal(err)
	}
	for i := range sc.Members {
		sc.Members[i].Port = 0
	}
	mongo, err := mongosim.Start(sc, mongosim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(mongo.Close)

	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "iap-password"), []byte("admin\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	b.WriteString("architecture: HA-6\nsites: [{name: dc1}, {name: dc2, role: standby}, {name: dc3, role: witness}]\n")
	b.WriteString("iap:\n  auth: {username: admin, password_file: iap-password}\n  servers:\n")
	for _, s := range iap.Servers() {
		site, role := "dc1", "active"
		if strings.Contains(s.Name(), "dc2") {
			site, role = "dc2", "standby"
		}
		fmt.Fprintf(&b, "    - {name: %s, url: %q, site: %s, role: %s, cluster: %s}\n", s.Name(), s.URL(), site, role, s.Cluster())
	}
	fmt.Fprintf(&b, "mongodb:\n  - name: %s\n    uri: %q\n    direct_members: true\n", sc.SetName, mongo.URI())
	file := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return iap, file
}

// The page in a real browser: the expected boxes and verdicts are there, a
// screenshot is saved, and after the active dc1 server goes down the next
// refresh shows it down.
func TestTopologyPageInChromium(t *testing.T) {
	iap, file := startHA6(t)
	exp, err := exporter.New(exporter.Options{ConfigFile: file, Logger: promslog.NewNopLogger(), DefaultTimeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(exp.Close)
	mux := http.NewServeMux()
	view.Register(mux, view.Options{Source: exp, Refresh: time.Minute})
	mux.Handle("/metrics", exp.MetricsHandler())
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)

	scrape := func() {
		resp, err := http.Get(srv.URL + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	scrape()
	dom := chromium(t, "--dump-dom", srv.URL+"/topology")
	for _, want := range []string{
		`data-name="iap-dc1-1" data-state="active" data-class="head"`,
		`data-name="iap-dc2-1" data-state="standby" data-class="follower"`,
		`data-component="mongodb"`,
		`data-state="arbiter" data-class="follower"`,
		`id="arch-expected">HA-6</span>`,
		`lose dc3`,
	} {
		if !strings.Contains(dom, want) {
			t.Errorf("the rendered page lacks %s", want)
		}
	}

	shots := os.Getenv("ARTIFACTS_DIR")
	if shots == "" {
		shots = t.TempDir()
	}
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	shot := filepath.Join(shots, "topology.png")
	chromium(t, "--screenshot="+shot, srv.URL+"/topology")
	if st, err := os.Stat(shot); err != nil || st.Size() < 10_000 {
		t.Fatalf("no screenshot at %s: %v", shot, err)
	}
	t.Logf("screenshot: %s", shot)

	if err := iap.Server("iap-dc1-1").SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	scrape()
	dom = chromium(t, "--dump-dom", srv.URL+"/topology")
	if !strings.Contains(dom, `data-name="iap-dc1-1" data-state="down" data-class="down"`) {
		t.Errorf("after the active dc1 server went down, the page does not show it down")
	}
}
