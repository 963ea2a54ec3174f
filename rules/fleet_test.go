package rules

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// shards are the fleet's Prometheus configurations, one per shard, in
// shard order.
var shards = []string{"fleet/prometheus-shard-0.yml", "fleet/prometheus-shard-1.yml"}

// TestPrometheusExamplesCheck runs `promtool check config` (Debian's 2.42,
// the oldest the pack supports) on every Prometheus configuration of
// examples/: the single-estate one, the multi-target one and each shard of
// the fleet, with their rule files and file_sd target files.
func TestPrometheusExamplesCheck(t *testing.T) {
	if err := lab.EnsurePackages(map[string]string{debianPromtool: "prometheus"}); err != nil {
		t.Fatal(err)
	}
	files := append([]string{"prometheus.yml", "prometheus-estates.yml"}, shards...)
	for _, f := range files {
		t.Run(f, func(t *testing.T) { promtool(t, debianPromtool, "../examples", "check", "config", f) })
	}
}

// TestFleetShardsSplitTheEstates starts one real Prometheus per shard of
// examples/fleet/, each with its configuration file unchanged but for the
// remote-write address, over a targets file of many estates, and reads back
// their /api/v1/targets. The hashmod relabelling must give every estate to
// exactly one shard (Prometheus hashes the target's address, here the
// estate's name, and each shard keeps its remainder), and each shard must
// probe its estates through its own exporter replica at /probe?estate=NAME
// with the estate label set. A third Prometheus stands for the long-term
// store: what the shards remote-write must show every estate once, from its
// shard, named by the shard's external label.
func TestFleetShardsSplitTheEstates(t *testing.T) {
	if err := lab.EnsurePackages(map[string]string{"prometheus": "prometheus"}); err != nil {
		t.Fatal(err)
	}
	// The examples' tree, as the shard files name it: the shard files as
	// they are, the rule pack, and a targets file of many estates.
	root := t.TempDir()

	// The long-term store's stand-in: a Prometheus that takes remote write
	// (Thanos Receive and Mimir take the same protocol). The shard files
	// are copied as they are but for its address.
	global := startPrometheus(t, filepath.Join(root, "global"), "global: {}\n", "--web.enable-remote-write-receiver")
	for _, f := range shards {
		b, err := os.ReadFile(filepath.Join("..", "examples", f))
		if err != nil {
			t.Fatal(err)
		}
		const receive = "http://thanos-receive:19291/api/v1/receive"
		if !strings.Contains(string(b), receive) {
			t.Fatalf("%s does not remote-write to %s", f, receive)
		}
		writeTestFile(t, filepath.Join(root, "examples", f), []byte(strings.ReplaceAll(string(b), receive, global.URL()+"/api/v1/write")))
	}
	for _, f := range ruleFiles {
		copyFile(t, f, filepath.Join(root, "rules", f))
	}
	estates := []string{"prod-emea", "staging-apac"} // the example's own
	for i := range 40 {
		estates = append(estates, fmt.Sprintf("estate-%02d", i))
	}
	targets, err := yaml.Marshal([]map[string]any{{"targets": estates}})
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, filepath.Join(root, "examples", "targets", "estates.yml"), targets)

	var servers []*lab.Process
	for i, f := range shards {
		servers = append(servers, startPrometheus(t, filepath.Join(root, fmt.Sprintf("shard-%d", i)), "", "--config.file="+filepath.Join(root, "examples", f)))
	}

	// Service discovery hands the targets over a few seconds after start.
	shardOf := map[string][]int{}
	err = lab.Retry(60*time.Second, 500*time.Millisecond, func() error {
		shardOf = map[string][]int{}
		for i, p := range servers {
			active, err := activeTargets(p.URL())
			if err != nil {
				return err
			}
			for _, tg := range active {
				if tg.Labels["job"] != "iap-ha-estates" {
					continue
				}
				estate := tg.Labels["estate"]
				exporter := fmt.Sprintf("iap-ha-exporter-%d:9894", i)
				want := "http://" + exporter + "/probe?estate=" + url.QueryEscape(estate)
				if tg.ScrapeURL != want || tg.Labels["instance"] != exporter {
					return fmt.Errorf("shard %d: estate %q scraped at %s as instance %s, want %s as %s", i, estate, tg.ScrapeURL, tg.Labels["instance"], want, exporter)
				}
				shardOf[estate] = append(shardOf[estate], i)
			}
		}
		if len(shardOf) < len(estates) {
			return fmt.Errorf("%d of %d estates discovered", len(shardOf), len(estates))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the shards' targets: %v", err)
	}
	perShard := make([]int, len(servers))
	for _, e := range estates {
		if len(shardOf[e]) != 1 {
			t.Errorf("estate %s is scraped by shards %v, want exactly one", e, shardOf[e])
			continue
		}
		perShard[shardOf[e][0]]++
	}
	for e := range shardOf {
		if !slices.Contains(estates, e) {
			t.Errorf("a shard scrapes %q, which is no estate of the targets file", e)
		}
	}
	// md5 of 42 names splits them about evenly: a shard with none would
	// mean its keep rule matches nothing.
	for i, n := range perShard {
		if n == 0 {
			t.Errorf("shard %d scrapes no estate of %d (per shard: %v)", i, len(estates), perShard)
		}
	}
	t.Logf("estates per shard: %v", perShard)

	// The global view: every estate's up, remote-written by the one shard
	// that scrapes it and labelled with that shard's external label.
	var inGlobal map[string][]string
	err = lab.Retry(90*time.Second, time.Second, func() error {
		inGlobal = map[string][]string{}
		series, err := instantQuery(global.URL(), `count by (estate, shard) (up{job="iap-ha-estates"})`)
		if err != nil {
			return err
		}
		for _, s := range series {
			inGlobal[s["estate"]] = append(inGlobal[s["estate"]], s["shard"])
		}
		if len(inGlobal) < len(estates) {
			return fmt.Errorf("%d of %d estates in the global view", len(inGlobal), len(estates))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the global view: %v", err)
	}
	for _, e := range estates {
		if want := []string{strconv.Itoa(shardOf[e][0])}; !slices.Equal(inGlobal[e], want) {
			t.Errorf("estate %s is in the global view from shards %v, want %v", e, inGlobal[e], want)
		}
	}
}

// startPrometheus starts a Prometheus in dir, with config written as its
// configuration file unless a --config.file is among args.
func startPrometheus(t *testing.T, dir, config string, args ...string) *lab.Process {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(args, func(a string) bool { return strings.HasPrefix(a, "--config.file=") }) {
		file := filepath.Join(dir, "prometheus.yml")
		writeTestFile(t, file, []byte(config))
		args = append(args, "--config.file="+file)
	}
	ports, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	args = append(args, "--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr)
	p, err := lab.StartProcess("prometheus "+filepath.Base(dir), addr, filepath.Join(dir, "prometheus.log"), exec.Command("prometheus", args...))
	if err != nil {
		t.Fatalf("Prometheus %s could not start: %v", filepath.Base(dir), err)
	}
	t.Cleanup(func() { p.Stop() })
	return p
}

// instantQuery returns the label sets of an instant query's result.
func instantQuery(base, query string) ([]map[string]string, error) {
	res, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(query))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", query, res.Status)
	}
	var body struct {
		Data struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	var out []map[string]string
	for _, r := range body.Data.Result {
		out = append(out, r.Metric)
	}
	return out, nil
}

type target struct {
	Labels    map[string]string `json:"labels"`
	ScrapeURL string            `json:"scrapeUrl"`
}

func activeTargets(base string) ([]target, error) {
	res, err := http.Get(base + "/api/v1/targets?state=active")
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s/api/v1/targets: %s", base, res.Status)
	}
	var body struct {
		Data struct {
			ActiveTargets []target `json:"activeTargets"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return nil, err
	}
	return body.Data.ActiveTargets, nil
}

func copyFile(t *testing.T, src, dst string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	writeTestFile(t, dst, b)
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestEstateExamplesCheck runs the exporter's --config.check on every estate
// file of examples/estates/: each is in the --config.file format, which is
// what --config.estates reads for each estate.
func TestEstateExamplesCheck(t *testing.T) {
	files, _ := filepath.Glob("../examples/estates/*.yml")
	if len(files) < 2 {
		t.Fatalf("found %d estate files in examples/estates/, want the example's two", len(files))
	}
	binary := filepath.Join(t.TempDir(), "iap_ha_exporter")
	build := exec.Command("go", "build", "-o", binary, "../cmd/iap_ha_exporter")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	for _, f := range files {
		if out, err := exec.Command(binary, "--config.check", "--config.file", f).CombinedOutput(); err != nil {
			t.Errorf("%s: %v\n%s", f, err, out)
		}
	}
}

// TestFleetComposeFiles checks that examples/fleet/compose.yml mounts files
// that exist, runs one Prometheus per shard configuration with it, and
// points Grafana at the global view.
func TestFleetComposeFiles(t *testing.T) {
	b, err := os.ReadFile("../examples/fleet/compose.yml")
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Command []string
			Volumes []string
		}
	}
	if err := yaml.Unmarshal(b, &compose); err != nil {
		t.Fatal(err)
	}
	var commands []string
	for name, s := range compose.Services {
		commands = append(commands, s.Command...)
		for _, v := range s.Volumes {
			src, _, _ := strings.Cut(v, ":")
			if !strings.HasPrefix(src, ".") {
				continue // a named volume
			}
			if _, err := os.Stat(filepath.Join("../examples/fleet", src)); err != nil {
				t.Errorf("service %s mounts %s: %v", name, src, err)
			}
		}
	}
	for _, f := range shards {
		if !slices.Contains(commands, "--config.file=/etc/prometheus/examples/"+f) {
			t.Errorf("no service runs Prometheus with %s", f)
		}
	}
	if _, ok := compose.Services["thanos-query"]; !ok {
		t.Error("no Thanos Query for the global view")
	}
}
