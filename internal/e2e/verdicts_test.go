package e2e

import (
	"fmt"
	"io"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
)

// The verdicts of issue 19, read from the built binary's /metrics with the
// wire-level simulators as its targets: nothing in-process but the targets.

// scrapeUntil scrapes the exporter until every wanted line is in /metrics and
// no unwanted series is, or fails with the last answer.
func scrapeUntil(t *testing.T, e *exporter, want, absent []string) {
	t.Helper()
	var body string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		resp, err := http.Get("http://" + e.addr + "/metrics")
		if err != nil {
			continue
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		ok := true
		for _, w := range want {
			ok = ok && strings.Contains(body, w+"\n")
		}
		for _, a := range absent {
			ok = ok && !strings.Contains(body, a)
		}
		if ok {
			return
		}
	}
	var missing, present []string
	for _, w := range want {
		if !strings.Contains(body, w+"\n") {
			missing = append(missing, w)
		}
	}
	for _, a := range absent {
		if strings.Contains(body, a) {
			present = append(present, a)
		}
	}
	t.Fatalf("missing %q, present %q in /metrics:\n%s\nexporter output:\n%s", missing, present, grepLines(body, "iap_ha_"), e.output)
}

func grepLines(body, prefix string) string {
	var out []string
	for _, l := range strings.Split(body, "\n") {
		if strings.HasPrefix(l, prefix) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func startMongoSim(t *testing.T, scenario string) *mongosim.Sim {
	t.Helper()
	sc, err := mongosim.Builtin(scenario)
	if err != nil {
		t.Fatal(err)
	}
	sim, err := mongosim.Start(sc, mongosim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}

func TestBinaryMongoDBVerdicts(t *testing.T) {
	for _, tc := range []struct {
		scenario string
		want     []string
	}{
		// Without the primary nothing is electable: 0, not 1.
		{"psa-secondary-priority0", []string{`iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 0`}},
		{"pra", []string{`iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 0`}},
		// Losing both dc1 members leaves nothing electable: 1, not 2.
		{"ha6-dc2-priority0", []string{`iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 1`}},
		{"ha6", []string{`iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 2`}},
		// 3610 s behind with a 3600 s delay: 10 s of lag; hidden, reported so.
		{"member-delayed", []string{
			`iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 1`,
			`iap_ha_mongodb_member_replication_lag_seconds{member="%s",set="rs0",site="dc1"} 10`,
			`iap_ha_mongodb_member_hidden{member="%s",set="rs0",site="dc1"} 1`,
			`iap_ha_mongodb_member_secondary_delay_seconds{member="%s",set="rs0",site="dc1"} 3600`,
		}},
	} {
		t.Run(tc.scenario, func(t *testing.T) {
			sim := startMongoSim(t, tc.scenario)
			dir := t.TempDir()
			file := filepath.Join(dir, "exporter.yml")
			writeFile(t, file, fmt.Sprintf("mongodb:\n  - {name: rs0, uri: %q}\n", sim.URI()))
			e := startExporter(t, "--config.file", file, "--no-collector.iap", "--no-collector.redis", "--no-collector.rabbitmq")
			last := sim.Addrs()[len(sim.Addrs())-1]
			var want []string
			for _, w := range tc.want {
				if strings.Contains(w, "%s") {
					w = fmt.Sprintf(w, last)
				}
				want = append(want, w)
			}
			scrapeUntil(t, e, want, nil)
		})
	}
}

// An arbiter without a site tag: --config.check warns about it, and the site
// losses that depend on where it stands send no sample; dc3 holds no voter,
// so the estate is no HA-6.
func TestBinaryUnplacedArbiter(t *testing.T) {
	mongo := startMongoSim(t, "ha6-arbiter-untagged")
	iap := startIAPSim(t, iapsim.Topology{
		Users: map[string]string{"monitor": "pw"},
		Servers: []iapsim.ServerSpec{
			{Name: "iap-dc1-1", Cluster: "dc1"}, {Name: "iap-dc1-2", Cluster: "dc1"},
			{Name: "iap-dc2-1", Cluster: "dc2", Role: "standby"}, {Name: "iap-dc2-2", Cluster: "dc2", Role: "standby"},
		},
	})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), "pw")
	var servers, sites strings.Builder
	for _, s := range iap.Servers() {
		site, role := "dc1", "active"
		if strings.HasPrefix(s.Name(), "iap-dc2") {
			site, role = "dc2", "standby"
		}
		fmt.Fprintf(&servers, "    - {name: %s, url: %q, site: %s, role: %s}\n", s.Name(), s.URL(), site, role)
	}
	addrs := mongo.Addrs()
	for i, site := range []string{"dc1", "dc1", "dc2", "dc2"} {
		fmt.Fprintf(&sites, "      %q: %s\n", addrs[i], site)
	}
	file := filepath.Join(dir, "exporter.yml")
	writeFile(t, file, fmt.Sprintf(`architecture: HA-6
sites: [{name: dc1, role: active}, {name: dc2, role: standby}, {name: dc3, role: witness}]
iap:
  auth: {username: monitor, password_file: pw}
  servers:
%smongodb:
  - name: rs0
    uri: %q
    member_sites:
%s`, servers.String(), mongo.URI(), sites.String()))

	out, err := exec.Command(binary, "--config.check", "--config.file", file).CombinedOutput()
	if err != nil || !strings.Contains(string(out), fmt.Sprintf("warning: mongodb[0].member_sites (line 14): no entry for %s: unless", addrs[4])) {
		t.Errorf("--config.check: %v\n%s\nwant a warning about %s", err, out, addrs[4])
	}

	e := startExporter(t, "--config.file", file, "--no-collector.redis", "--no-collector.rabbitmq")
	scrapeUntil(t, e, []string{
		`iap_ha_component_failures_tolerated{component="mongodb",name="rs0"} 2`,
		`iap_ha_site_loss_survivable{site="dc3"} 1`,
		// No Redis configured: never HA-3, let alone HA-6.
		`iap_ha_architecture_info{expected="HA-6",observed="HA-0"} 1`,
	}, []string{`iap_ha_site_loss_survivable{site="dc1"}`, `iap_ha_site_loss_survivable{site="dc2"}`})
}

// IAP: a standby whose adapters are offline is not promotable, one whose
// worker state cannot be read is unknown (not a standby), and Platform 6's
// configured worker state comes from /server/config.
func TestBinaryIAPVerdicts(t *testing.T) {
	iap := startIAPSim(t, iapsim.Topology{
		Users: map[string]string{"monitor": "pw"},
		Servers: []iapsim.ServerSpec{
			// One token domain, as the exporter assumes of servers in one site.
			{Name: "active", Cluster: "local", Release: iapsim.Release6},
			{Name: "standby", Cluster: "local", Release: iapsim.Release6, Role: "standby", ConfiguredRole: "active"},
			{Name: "offline", Cluster: "local", Release: iapsim.Release6, Role: "standby"},
		},
	})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), "pw")
	file := filepath.Join(dir, "exporter.yml")
	writeFile(t, file, fmt.Sprintf(`iap:
  auth: {username: monitor, password_file: pw}
  servers:
    - {name: active, url: %q}
    - {name: standby, url: %q, role: standby}
    - {name: offline, url: %q, role: standby}
`, iap.Server("active").URL(), iap.Server("standby").URL(), iap.Server("offline").URL()))
	for _, a := range []string{"local_aaa", "ServiceNow", "email"} {
		if err := iap.Server("offline").SetAdapter(a, "", "OFFLINE"); err != nil {
			t.Fatal(err)
		}
	}
	e := startExporter(t, "--config.file", file, "--no-collector.mongodb", "--no-collector.redis", "--no-collector.rabbitmq")
	scrapeUntil(t, e, []string{
		// The active and the one promotable standby: 2 − 1.
		`iap_ha_component_failures_tolerated{component="iap",name="servers"} 1`,
		`iap_ha_iap_task_worker_configured{server="standby",site="local"} 1`,
		`iap_ha_iap_job_worker_configured{server="standby",site="local"} 1`,
		`iap_ha_iap_job_worker_configured{server="offline",site="local"} 0`,
		`iap_ha_iap_servers{site="local",state="standby"} 2`,
	}, nil)

	// Without credentials nothing shows whether a server works tasks: the
	// servers are unknown, and so is the IAP verdict.
	writeFile(t, file, fmt.Sprintf("iap:\n  servers:\n    - {name: active, url: %q}\n    - {name: standby, url: %q, role: standby}\n",
		iap.Server("active").URL(), iap.Server("standby").URL()))
	if err := e.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, e, []string{`iap_ha_iap_servers{site="local",state="unknown"} 2`},
		[]string{`iap_ha_component_failures_tolerated{component="iap"`})
}

// Single points of failure (issue 27) from the binary: in a PSA set whose
// secondary has priority 0 the primary is the only electable member, so its
// loss alone stops the estate; the secondary's or the arbiter's leaves two
// of three votes and the primary. Neither of two working IAP servers is
// one. No class is declared, so no member's loss can fall below it.
func TestBinarySinglePointsOfFailure(t *testing.T) {
	mongo := startMongoSim(t, "psa-secondary-priority0")
	iap := startIAPSim(t, iapsim.Topology{
		Users:   map[string]string{"monitor": "pw"},
		Servers: []iapsim.ServerSpec{{Name: "iap-1", Cluster: "dc1"}, {Name: "iap-2", Cluster: "dc1"}},
	})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), "pw")
	file := filepath.Join(dir, "exporter.yml")
	writeFile(t, file, fmt.Sprintf(`sites: [{name: dc1, role: active}]
iap:
  auth: {username: monitor, password_file: pw}
  servers:
    - {name: iap-1, url: %q, site: dc1}
    - {name: iap-2, url: %q, site: dc1}
mongodb:
  - {name: rs0, uri: %q}
`, iap.Server("iap-1").URL(), iap.Server("iap-2").URL(), mongo.URI()))
	e := startExporter(t, "--config.file", file, "--no-collector.sentinel", "--no-collector.rabbitmq")
	addrs := mongo.Addrs()
	spof := `iap_ha_member_single_point_of_failure{component="%s",member="%s",site="dc1"} %d`
	scrapeUntil(t, e, []string{
		fmt.Sprintf(spof, "mongodb", addrs[0], 1),
		fmt.Sprintf(spof, "mongodb", addrs[1], 0),
		fmt.Sprintf(spof, "mongodb", addrs[2], 0),
		fmt.Sprintf(spof, "iap", "iap-1", 0),
		fmt.Sprintf(spof, "iap", "iap-2", 0),
	}, []string{"iap_ha_member_loss_degrades_architecture{"})
}
