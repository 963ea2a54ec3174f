package exporter

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// startIAP starts a simulated IAP server that the account monitor logs in
// to, for one estate.
func startIAP(t *testing.T) *iapsim.Server {
	t.Helper()
	sim, err := iapsim.Start(iapsim.Topology{
		Users:   map[string]string{"monitor": "monitor-pw"},
		Servers: []iapsim.ServerSpec{{Name: "iap-1", Role: "active"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim.Server("iap-1")
}

// estateFile is an estate of one IAP server; timeout is its IAP timeouts.
func estateFile(server *iapsim.Server, timeout string) string {
	return fmt.Sprintf(`iap:
  timeout: %s
  health_timeout: %s
  auth: {username: monitor, password_file: iap-pw}
  servers:
    - {name: iap-1, url: %q}
`, timeout, timeout, server.URL())
}

// estatesDir writes the estates (name → file content) beside the password
// they share; the password file is no estate (no .yml ending).
func estatesDir(t *testing.T, estates map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "iap-pw"), "monitor-pw\n")
	for name, content := range estates {
		writeFile(t, filepath.Join(dir, name+".yml"), content)
	}
	return dir
}

func newEstates(t *testing.T, dir string) *Estates {
	t.Helper()
	es, err := NewEstates(Options{EstatesPath: dir, TimeoutOffset: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(es.Close)
	return es
}

// probe scrapes one estate and wants its IAP server up.
func probeUp(t *testing.T, es *Estates, estate string) {
	t.Helper()
	code, body := get(t, es.ProbeHandler(), http.MethodGet, "/probe?estate="+estate, nil)
	if code != http.StatusOK || !strings.Contains(body, `iap_ha_iap_api_up{server="iap-1",site="local"} 1`) {
		t.Fatalf("probe of %s: HTTP %d\n%s", estate, code, grep(body, "iap_up"))
	}
}

// An estate whose every target hangs costs only its own probe: the other
// estate's probe, asked while the hung one waits for its deadline, answers
// first, through real TCP on both sides. Ordering, not timing: the hung
// probe's deadline is Prometheus's default 10 s.
func TestHungEstateCostsOnlyItsOwnProbe(t *testing.T) {
	hungIAP, okIAP := startIAP(t), startIAP(t)
	dir := estatesDir(t, map[string]string{"hung": estateFile(hungIAP, "1m"), "ok": estateFile(okIAP, "1m")})
	es := newEstates(t, dir)
	srv := httptest.NewServer(es.ProbeHandler())
	defer srv.Close()
	if err := hungIAP.SetFault(iapsim.Fault{Mode: iapsim.FaultHung}); err != nil {
		t.Fatal(err)
	}
	scrape := func(estate string) (int, string, error) {
		req, err := http.NewRequest(http.MethodGet, srv.URL+"/probe?estate="+estate, nil)
		if err != nil {
			return 0, "", err
		}
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, "", err
		}
		defer res.Body.Close()
		body, err := io.ReadAll(res.Body)
		return res.StatusCode, string(body), err
	}
	type answer struct {
		code int
		body string
		err  error
	}
	hung := make(chan answer, 1)
	go func() {
		code, body, err := scrape("hung")
		hung <- answer{code, body, err}
	}()
	// The hung estate's probe is under way once its server has the request.
	if err := lab.Retry(20*time.Second, 10*time.Millisecond, func() error {
		if hungIAP.Requests("/health/status") == 0 {
			return fmt.Errorf("the hung estate's server has no request")
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	code, body, err := scrape("ok")
	if err != nil || code != http.StatusOK || !strings.Contains(body, `iap_ha_iap_up{server="iap-1",site="local"} 1`) {
		t.Fatalf("the healthy estate's probe: HTTP %d, %v\n%s", code, err, grep(body, "iap_up"))
	}
	select {
	case a := <-hung:
		t.Fatalf("the hung estate's probe answered (HTTP %d) before the healthy one's: the healthy estate waited for it", a.code)
	default:
	}
	a := <-hung
	if a.err != nil || a.code != http.StatusOK {
		t.Fatalf("the hung estate's probe: HTTP %d, %v", a.code, a.err)
	}
	if !strings.Contains(a.body, `iap_ha_iap_up{server="iap-1",site="local"} 0`) &&
		!strings.Contains(a.body, `iap_ha_scrape_collector_success{collector="iap"} 0`) {
		t.Errorf("the hung estate's server is reported neither down nor as a failed collector:\n%s", grep(a.body, "iap"))
	}
}

// A reload adds, changes and removes estates without disturbing the
// others: the unchanged estate keeps its instance and its IAP login (one
// login over the reloads), the changed one gets a new instance, the removed
// one closes its connections, the new one is served.
func TestEstatesReloadKeepsUnchangedReplacesChangedClosesRemoved(t *testing.T) {
	iaps := map[string]*iapsim.Server{}
	for _, name := range []string{"a", "b", "c", "d"} {
		iaps[name] = startIAP(t)
	}
	dir := estatesDir(t, map[string]string{
		"a": estateFile(iaps["a"], "5s"), "b": estateFile(iaps["b"], "5s"), "c": estateFile(iaps["c"], "5s"),
	})
	es := newEstates(t, dir)
	for _, name := range []string{"a", "b", "c"} {
		probeUp(t, es, name)
	}
	a, b := es.Estate("a"), es.Estate("b")
	if n := len(clientConns(t, iaps["c"].Addr())); n == 0 {
		t.Fatal("no connection to estate c's server after its probe: the test cannot see it closed")
	}

	writeFile(t, filepath.Join(dir, "b.yml"), estateFile(iaps["b"], "6s"))
	if err := os.Remove(filepath.Join(dir, "c.yml")); err != nil {
		t.Fatal(err)
	}
	writeFile(t, filepath.Join(dir, "d.yml"), estateFile(iaps["d"], "5s"))
	for range 5 { // the same files again: nothing more changes
		if err := es.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	if es.Estate("a") != a {
		t.Error("the unchanged estate a got a new instance")
	}
	if nb := es.Estate("b"); nb == nil || nb == b {
		t.Error("the changed estate b kept its instance")
	}
	if es.Estate("c") != nil {
		t.Error("the removed estate c still runs")
	}
	if got := es.Names(); !slices.Equal(got, []string{"a", "b", "d"}) {
		t.Errorf("estates %v after the reload, want a b d", got)
	}
	for _, name := range []string{"a", "b", "d"} {
		probeUp(t, es, name)
	}
	if code, body := get(t, es.ProbeHandler(), http.MethodGet, "/probe?estate=c", nil); code != http.StatusNotFound {
		t.Errorf("probe of the removed estate c: HTTP %d %q, want 404", code, body)
	}
	// IAP tokens live until the server refuses them: the unchanged estate
	// logs in once; the changed one's IAP settings differ, so it logs in
	// again, as a single-estate reload of changed settings does.
	for name, want := range map[string]int{"a": 1, "b": 2, "d": 1} {
		if n := iaps[name].Logins(); n != want {
			t.Errorf("estate %s: %d IAP logins, want %d", name, n, want)
		}
	}
	es.closing.Wait()
	if conns := clientConns(t, iaps["c"].Addr()); len(conns) != 0 {
		t.Errorf("the removed estate c left %d connections to its server open: %v", len(conns), conns)
	}
}

// A broken estate file on reload keeps that estate's instance in force and
// says so (the error names the estate and the field, its reload gauge is
// 0); the other estates reload. A new estate whose file is broken does not
// run, and its probe says why. A listing that cannot be read reloads
// nothing.
func TestEstatesReloadKeepsABrokenEstateAsItWas(t *testing.T) {
	ia, ib := startIAP(t), startIAP(t)
	dir := estatesDir(t, map[string]string{"a": estateFile(ia, "5s"), "b": estateFile(ib, "5s")})
	es := newEstates(t, dir)
	a, b := es.Estate("a"), es.Estate("b")

	writeFile(t, filepath.Join(dir, "a.yml"), estateFile(ia, "6s"))
	writeFile(t, filepath.Join(dir, "b.yml"), estateFile(ib, "5s")+"    - {name: iap-2, url: \"not a url\"}\n")
	writeFile(t, filepath.Join(dir, "e.yml"), "iap: {servers: [{url: http://127.0.0.1:1, rol: standby}]}\n")
	err := es.Reload()
	for _, want := range []string{"estate b", "b.yml", "iap.servers[1].url", "estate e", "iap.servers[0].rol"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("reload error does not say %q: %v", want, err)
		}
	}
	if es.Estate("a") == a {
		t.Error("estate a, changed and good, was not reloaded beside the broken one")
	}
	if es.Estate("b") != b {
		t.Error("the broken estate b lost the instance in force")
	}
	probeUp(t, es, "b")
	if code, body := get(t, es.ProbeHandler(), http.MethodGet, "/probe?estate=e", nil); code != http.StatusNotFound || !strings.Contains(body, "iap.servers[0].rol") {
		t.Errorf("probe of the new broken estate e: HTTP %d %q, want 404 saying why", code, body)
	}
	_, metrics := get(t, es.MetricsHandler(), http.MethodGet, "/metrics", nil)
	for _, want := range []string{
		`iap_ha_exporter_config_last_reload_successful{estate="a"} 1`,
		`iap_ha_exporter_config_last_reload_successful{estate="b"} 0`,
		`iap_ha_exporter_config_last_reload_successful{estate="e"} 0`,
		"iap_ha_exporter_estates 2",
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grep(metrics, "iap_ha_exporter_"))
		}
	}

	// The new broken estate removed: its gauge goes with it.
	if err := os.Remove(filepath.Join(dir, "e.yml")); err != nil {
		t.Fatal(err)
	}
	_ = es.Reload() // b is still broken
	if _, metrics := get(t, es.MetricsHandler(), http.MethodGet, "/metrics", nil); strings.Contains(metrics, `estate="e"`) {
		t.Errorf("/metrics still reports the removed estate e:\n%s", grep(metrics, `estate="e"`))
	}

	// The listing itself broken: nothing reloads, every estate says so.
	a = es.Estate("a")
	writeFile(t, filepath.Join(dir, "a b.yml"), estateFile(ia, "5s"))
	if err := es.Reload(); err == nil || !strings.Contains(err.Error(), `"a b" is not an estate name`) {
		t.Errorf("reload of a listing with a bad name: %v", err)
	}
	if es.Estate("a") != a || es.Estate("b") != b {
		t.Error("a reload whose listing is broken changed the estates in force")
	}
	if _, metrics := get(t, es.MetricsHandler(), http.MethodGet, "/metrics", nil); !strings.Contains(metrics, `iap_ha_exporter_config_last_reload_successful{estate="a"} 0`) {
		t.Errorf("/metrics after a broken listing:\n%s", grep(metrics, "reload_successful"))
	}
}

// At start every problem is fatal: an exporter does not start with an
// estate it cannot watch.
func TestEstatesBrokenEstateRefusedAtStart(t *testing.T) {
	dir := estatesDir(t, map[string]string{
		"good":   "rabbitmq: [{name: r, urls: [\"http://127.0.0.1:1\"]}]\n",
		"broken": "iap: {servers: [{url: http://127.0.0.1:1, rol: standby}]}\n",
	})
	_, err := NewEstates(Options{EstatesPath: dir})
	for _, want := range []string{"estate broken", "broken.yml", "iap.servers[0].rol"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("start error does not say %q: %v", want, err)
		}
	}
}

// /probe names its estate: 400 without one, 404 for one that does not
// run; the timeout header is checked per request, as /metrics checks it.
func TestProbeHTTPCodes(t *testing.T) {
	dir := estatesDir(t, map[string]string{"a": "rabbitmq: [{name: r, urls: [\"http://" + closedPort(t) + "\"]}]\n"})
	es := newEstates(t, dir)
	for _, c := range []struct {
		path, timeout string
		code          int
		says          string
	}{
		{"/probe", "", http.StatusBadRequest, "missing the estate parameter"},
		{"/probe?estate=", "", http.StatusBadRequest, "missing the estate parameter"},
		{"/probe?estate=b", "", http.StatusNotFound, `unknown estate "b"`},
		{"/probe?estate=a", "NaN", http.StatusBadRequest, "X-Prometheus-Scrape-Timeout-Seconds"},
		{"/probe?estate=a", "3", http.StatusOK, `iap_ha_rabbitmq_up{cluster="r"} 0`},
	} {
		h := http.Header{}
		if c.timeout != "" {
			h.Set("X-Prometheus-Scrape-Timeout-Seconds", c.timeout)
		}
		code, body := get(t, es.ProbeHandler(), http.MethodGet, c.path, h)
		if code != c.code || !strings.Contains(body, c.says) {
			t.Errorf("GET %s (timeout %q): HTTP %d %q, want %d saying %q", c.path, c.timeout, code, body, c.code, c.says)
		}
	}
}

// /probe?estate=NAME serves what /metrics serves in single-estate mode for
// the same file, less the process's own metrics, which move to the
// multi-estate /metrics; no estate label is added (Prometheus adds it).
func TestProbeServesWhatSingleEstateMetricsServes(t *testing.T) {
	iapServer := startIAP(t)
	content := estateFile(iapServer, "5s") + "rabbitmq: [{name: r, urls: [\"http://" + closedPort(t) + "\"]}]\n"
	dir := estatesDir(t, map[string]string{"x": content})
	single, err := New(Options{ConfigFile: filepath.Join(dir, "x.yml")})
	if err != nil {
		t.Fatal(err)
	}
	defer single.Close()
	es := newEstates(t, dir)

	_, fromMetrics := get(t, single.MetricsHandler(), http.MethodGet, "/metrics", nil)
	_, fromProbe := get(t, es.ProbeHandler(), http.MethodGet, "/probe?estate=x", nil)
	own := regexp.MustCompile(`^(# (HELP|TYPE) )?(go_|process_|iap_ha_exporter_build_info|iap_ha_config_last_reload)`)
	var want []string
	for _, l := range exposition(fromMetrics) {
		if !own.MatchString(l) {
			want = append(want, l)
		}
	}
	got := exposition(fromProbe)
	if !slices.Equal(got, want) {
		t.Errorf("/probe?estate=x differs from the single-estate /metrics:\n--- probe\n%s\n--- metrics\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	_, ownMetrics := get(t, es.MetricsHandler(), http.MethodGet, "/metrics", nil)
	for _, want := range []string{"go_goroutines", "process_open_fds", "iap_ha_exporter_build_info", "iap_ha_exporter_estates 1"} {
		if !strings.Contains(ownMetrics, want) {
			t.Errorf("the multi-estate /metrics lacks %s", want)
		}
	}
	if strings.Contains(ownMetrics, "iap_ha_iap_up") {
		t.Error("the multi-estate /metrics serves an estate's metrics")
	}
}

// exposition is the lines of a text exposition with the values of
// durations and timestamps blanked: two scrapes differ in those only.
func exposition(body string) []string {
	timed := regexp.MustCompile(`^([a-z_]*(duration|seconds|timestamp)[a-z_]*(\{[^}]*\})?) .*$`)
	var out []string
	for l := range strings.SplitSeq(strings.TrimSpace(body), "\n") {
		out = append(out, timed.ReplaceAllString(l, "$1 _"))
	}
	return out
}

// Estates added and removed over many reloads leave no goroutine, file or
// connection behind: each removed instance closes its clients.
func TestEstatesAddedAndRemovedLeaveNothingBehind(t *testing.T) {
	ia, id := startIAP(t), startIAP(t)
	dir := estatesDir(t, map[string]string{"a": estateFile(ia, "5s")})
	es := newEstates(t, dir)
	probeUp(t, es, "a")
	// A few rounds of adding and removing first: what a first use sets up
	// once (estate a's pool of connections, each with its goroutines and
	// files on both ends, grows to what its probes use at once) is in the
	// baseline.
	round := func() {
		t.Helper()
		writeFile(t, filepath.Join(dir, "d.yml"), estateFile(id, "5s"))
		if err := es.Reload(); err != nil {
			t.Fatal(err)
		}
		probeUp(t, es, "d")
		probeUp(t, es, "a")
		if err := os.Remove(filepath.Join(dir, "d.yml")); err != nil {
			t.Fatal(err)
		}
		if err := es.Reload(); err != nil {
			t.Fatal(err)
		}
	}
	for range 5 {
		round()
	}
	es.closing.Wait()
	settled := func() (int, int) { return runtime.NumGoroutine(), openFiles(t) }
	var g0, f0 int
	_ = lab.Retry(5*time.Second, 100*time.Millisecond, func() error {
		g, f := settled()
		if g != g0 || f != f0 {
			g0, f0 = g, f
			return fmt.Errorf("not settled")
		}
		return nil
	})
	const rounds = 30
	for range rounds {
		round()
	}
	es.closing.Wait()
	const slack = 2 // a connection a probe let go closes a moment later
	var g, f int
	if err := lab.Retry(10*time.Second, 100*time.Millisecond, func() error {
		g, f = settled()
		if g > g0+slack || f > f0+slack || len(clientConns(t, id.Addr())) > 0 {
			return fmt.Errorf("grew")
		}
		return nil
	}); err != nil {
		t.Errorf("after %d rounds of adding and removing an estate: goroutines %d → %d, open files %d → %d, connections to the removed estate's server %d",
			rounds, g0, g, f0, f, len(clientConns(t, id.Addr())))
	}
	if n := ia.Logins(); n != 1 {
		t.Errorf("estate a, never changed, logged in %d times over %d reloads, want 1", n, 2*rounds+2)
	}
}

func openFiles(t *testing.T) int {
	t.Helper()
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(entries)
}

// clientConns are the established TCP connections to addr (an IPv4
// host:port), by their local address, from /proc/net/tcp: the network
// namespace's, where only this test's probes dial the simulator's port.
func clientConns(t *testing.T, addr string) []string {
	t.Helper()
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		t.Fatal(err)
	}
	ip := net.ParseIP(host).To4()
	p, _ := strconv.Atoi(port)
	// /proc/net/tcp writes the address as the bytes of the IP in the
	// host's (little-endian) order and the port big-endian, in hex.
	remote := fmt.Sprintf("%02X%02X%02X%02X:%04X", ip[3], ip[2], ip[1], ip[0], p)
	f, err := os.Open("/proc/net/tcp")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		const established = "01"
		if len(fields) > 3 && fields[2] == remote && fields[3] == established {
			out = append(out, fields[1])
		}
	}
	return out
}

// The comparison a reload makes holds for every kind of section, TLS and
// secrets included: the examples' estates, reloaded unchanged, keep their
// instances; the same files with one secret changed do not.
func TestEstatesUnchangedExamplesKeepTheirInstances(t *testing.T) {
	dir := t.TempDir()
	examples, err := filepath.Abs("../examples")
	if err != nil {
		t.Fatal(err)
	}
	secrets := filepath.Join(dir, "secrets")
	if err := os.Mkdir(secrets, 0o755); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(filepath.Join(examples, "secrets"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		data, err := os.ReadFile(filepath.Join(examples, "secrets", e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(secrets, e.Name()), string(data))
	}
	names := []string{"ha0", "ha3", "ha6"}
	for _, name := range names {
		data, err := os.ReadFile(filepath.Join(examples, name+".yml"))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, filepath.Join(dir, name+".yml"), string(data))
	}
	es, err := NewEstates(Options{EstatesPath: dir, Collectors: []string{"topology"}})
	if err != nil {
		t.Fatal(err)
	}
	defer es.Close()
	before := map[string]*Exporter{}
	for _, name := range names {
		before[name] = es.Estate(name)
	}
	if err := es.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if es.Estate(name) != before[name] {
			t.Errorf("estate %s, unchanged, got a new instance", name)
		}
	}
	writeFile(t, filepath.Join(secrets, "iap-password"), "rotated\n")
	if err := es.Reload(); err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if es.Estate(name) == before[name] {
			t.Errorf("estate %s kept its instance though its IAP password changed", name)
		}
	}
}

// BenchmarkEstatesReload100Unchanged reloads 100 estates whose files did
// not change: what a SIGHUP costs a large exporter (every file read and
// checked, every instance kept).
func BenchmarkEstatesReload100Unchanged(b *testing.B) {
	dir := b.TempDir()
	for i := range 100 {
		if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("e%03d.yml", i)),
			[]byte("rabbitmq:\n  - {name: r, urls: [\"http://127.0.0.1:1\"]}\n"), 0o600); err != nil {
			b.Fatal(err)
		}
	}
	es, err := NewEstates(Options{EstatesPath: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	b.ReportAllocs()
	for b.Loop() {
		if err := es.Reload(); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkProbeHandler is BenchmarkMetricsHandler through /probe?estate=:
// the estate's lookup beside the same scrape.
func BenchmarkProbeHandler(b *testing.B) {
	dir := b.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "dc1.yml"), []byte("rabbitmq:\n  - {name: dc1, urls: [\"http://127.0.0.1:1\"]}\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	es, err := NewEstates(Options{EstatesPath: dir})
	if err != nil {
		b.Fatal(err)
	}
	defer es.Close()
	benchmarkScrape(b, es.ProbeHandler(), "/probe?estate=dc1")
}

// estateStep is what an EstateReloader was asked about one estate.
type estateStep struct {
	name, remediation string
	next              *Exporter
}

// What follows each estate (the remediation router) is asked about every
// estate a reload keeps, starts or removes, with the instance in force
// after it and its remediation file; its refusal keeps that estate as it
// was (instance and all), the others reload; what it prepared applies once
// the new estates are in force.
func TestEstateReloadersFollowEachEstate(t *testing.T) {
	rabbit := func(name string) string {
		return "rabbitmq: [{name: " + name + ", urls: [\"http://127.0.0.1:1\"]}]\n"
	}
	dir := estatesDir(t, map[string]string{"a": rabbit("a1"), "b": rabbit("b1"), "c": rabbit("c1")})
	writeFile(t, filepath.Join(dir, "a.remediation.yml"), "read by the reloader, not here")
	es := newEstates(t, dir)
	a, b := es.Estate("a"), es.Estate("b")
	var asked []estateStep
	var appliedUnder []string // the estates in force when each apply ran
	es.AddReloader(func(name string, next *Exporter, remediation string) (func(), func(), error) {
		asked = append(asked, estateStep{name, filepath.Base(remediation), next})
		if next != nil && next.Config().RabbitMQ[0].Name == "refused" {
			return nil, nil, fmt.Errorf("%s.remediation.yml: lease.redis: refused", name)
		}
		return func() { appliedUnder = append(appliedUnder, strings.Join(es.Names(), " ")) }, func() {}, nil
	})

	writeFile(t, filepath.Join(dir, "b.yml"), rabbit("refused"))
	if err := os.Remove(filepath.Join(dir, "c.yml")); err != nil {
		t.Fatal(err)
	}
	err := es.Reload()
	if err == nil || !strings.Contains(err.Error(), "estate b: b.remediation.yml: lease.redis: refused") {
		t.Errorf("reload error %v, want estate b's refusal", err)
	}
	slices.SortFunc(asked, func(x, y estateStep) int { return strings.Compare(x.name, y.name) })
	// filepath.Base("") is ".": no remediation file.
	want := []estateStep{{"a", "a.remediation.yml", a}, {"b", ".", nil}, {"c", ".", nil}}
	if len(asked) != 3 {
		t.Fatalf("asked about %v, want a, b and c", asked)
	}
	for i, w := range want {
		got := asked[i]
		if got.name != w.name || got.remediation != w.remediation {
			t.Errorf("asked %+v, want %+v", got, w)
		}
	}
	if asked[0].next != a {
		t.Error("estate a, unchanged, was offered another instance than the one in force")
	}
	if asked[1].next == nil || asked[1].next == b {
		t.Error("estate b, changed, was not offered its new instance")
	}
	if asked[2].next != nil {
		t.Error("estate c, removed, was offered an instance")
	}
	if es.Estate("b") != b || es.Estate("b").Config().RabbitMQ[0].Name != "b1" {
		t.Error("estate b, refused, did not keep the instance in force")
	}
	if !slices.Equal(appliedUnder, []string{"a b", "a b"}) {
		t.Errorf("applies ran under the estates %q, want a and c's both under the new estates (a b)", appliedUnder)
	}
}
