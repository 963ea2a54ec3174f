package exporter

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/iagsim"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// syncBuffer collects log output written from several goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func debugLogger(w io.Writer) *slog.Logger {
	level := promslog.NewLevel()
	_ = level.Set("debug")
	return promslog.New(&promslog.Config{Level: level, Writer: w})
}

// closedPort returns an address nothing listens on.
func closedPort(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

func get(t *testing.T, h http.Handler, method, path string, header http.Header) (int, string) {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec.Code, rec.Body.String()
}

func TestReloadWithBadFileKeepsTheOldConfig(t *testing.T) {
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yml")
	good := "rabbitmq:\n  - name: first\n    urls: [\"http://" + closedPort(t) + "\"]\n"
	writeFile(t, file, good)
	e, err := New(Options{ConfigFile: file})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()

	writeFile(t, file, "rabbitmq:\n  - name: second\n    urls: [\"not a url\"]\n")
	code, body := get(t, e.ReloadHandler(), http.MethodPost, "/-/reload", nil)
	if code != http.StatusInternalServerError || !strings.Contains(body, "rabbitmq[0].urls[0]") {
		t.Fatalf("reload of a bad file: %d %q, want 500 naming the field", code, body)
	}
	if got := e.Config().RabbitMQ[0].Name; got != "first" {
		t.Fatalf("config in force after a bad reload is %q, want the old one", got)
	}
	_, metrics := get(t, e.MetricsHandler(), http.MethodGet, "/metrics", nil)
	if !strings.Contains(metrics, "iap_ha_config_last_reload_successful 0") {
		t.Errorf("metrics after a bad reload do not say so:\n%s", grep(metrics, "reload"))
	}

	writeFile(t, file, strings.Replace(good, "first", "third", 1))
	if code, body := get(t, e.ReloadHandler(), http.MethodPost, "/-/reload", nil); code != http.StatusOK {
		t.Fatalf("reload of a good file: %d %q", code, body)
	}
	if got := e.Config().RabbitMQ[0].Name; got != "third" {
		t.Fatalf("config after a good reload is %q", got)
	}
	_, metrics = get(t, e.MetricsHandler(), http.MethodGet, "/metrics", nil)
	if !strings.Contains(metrics, "iap_ha_config_last_reload_successful 1") {
		t.Errorf("metrics after a good reload:\n%s", grep(metrics, "reload"))
	}
	if code, _ := get(t, e.ReloadHandler(), http.MethodGet, "/-/reload", nil); code != http.StatusMethodNotAllowed {
		t.Errorf("GET /-/reload = %d, want 405", code)
	}
}

// fakeReloader counts what a reload asked of it; it refuses a configuration
// whose first RabbitMQ cluster is named refuse.
type fakeReloader struct {
	refuse                      string
	prepared, applied, discards int
	appliedUnder                string // the RabbitMQ name of the configuration in force at apply
}

func (f *fakeReloader) reloader(e *Exporter) Reloader {
	return func(cfg *config.Config) (func(), func(), error) {
		f.prepared++
		if cfg.RabbitMQ[0].Name == f.refuse {
			return nil, nil, errors.New("remediation.yml: lease.redis: refused")
		}
		return func() { f.applied++; f.appliedUnder = e.Config().RabbitMQ[0].Name },
			func() { f.discards++ }, nil
	}
}

// A reload applies the exporter's configuration and every Reloader's, or
// none of them.
func TestReloadersApplyTogetherOrNotAtAll(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	configNamed := func(name string) string {
		return "rabbitmq:\n  - name: " + name + "\n    urls: [\"http://" + closedPort(t) + "\"]\n"
	}
	writeFile(t, file, configNamed("first"))
	e, err := New(Options{ConfigFile: file})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	accepting, refusing := &fakeReloader{}, &fakeReloader{refuse: "second"}
	e.AddReloader(accepting.reloader(e))
	e.AddReloader(refusing.reloader(e))

	steps := []struct {
		name, file string
		wantErr    string // "" for a reload that succeeds
		inForce    string
		// What each Reloader saw so far: prepared, applied, discarded.
		accepting, refusing [3]int
	}{
		{"a Reloader refuses", configNamed("second"), "lease.redis: refused", "first", [3]int{1, 0, 1}, [3]int{1, 0, 0}},
		{"the exporter's file is bad", "rabbitmq: [{name: x, urls: [\"not a url\"]}]\n", "rabbitmq[0].urls[0]", "first", [3]int{1, 0, 1}, [3]int{1, 0, 0}},
		{"every part accepts", configNamed("third"), "", "third", [3]int{2, 1, 1}, [3]int{2, 1, 0}},
	}
	for _, step := range steps {
		writeFile(t, file, step.file)
		code, body := get(t, e.ReloadHandler(), http.MethodPost, "/-/reload", nil)
		if step.wantErr == "" && code != http.StatusOK || step.wantErr != "" && (code != http.StatusInternalServerError || !strings.Contains(body, step.wantErr)) {
			t.Errorf("%s: reload answered %d %q, want the error %q", step.name, code, body, step.wantErr)
		}
		if got := e.Config().RabbitMQ[0].Name; got != step.inForce {
			t.Errorf("%s: configuration in force %q, want %q", step.name, got, step.inForce)
		}
		for _, f := range []struct {
			name string
			r    *fakeReloader
			want [3]int
		}{{"accepting", accepting, step.accepting}, {"refusing", refusing, step.refusing}} {
			if got := [3]int{f.r.prepared, f.r.applied, f.r.discards}; got != f.want {
				t.Errorf("%s: the %s Reloader was prepared, applied, discarded %v times, want %v", step.name, f.name, got, f.want)
			}
		}
		want := "iap_ha_config_last_reload_successful " + map[bool]string{true: "1", false: "0"}[step.wantErr == ""]
		if _, metrics := get(t, e.MetricsHandler(), http.MethodGet, "/metrics", nil); !strings.Contains(metrics, want) {
			t.Errorf("%s: metrics do not say %q:\n%s", step.name, want, grep(metrics, "reload"))
		}
	}
	// Applied once the new configuration is in force: the receiver's fresh
	// probes then see the estate it was checked against.
	if accepting.appliedUnder != "third" {
		t.Errorf("a Reloader applied while %q was in force, want the new configuration", accepting.appliedUnder)
	}
}

func TestBadConfigRefusedAtStart(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "iap:\n  servers:\n    - url: http://127.0.0.1:3000\n      rol: standby\n")
	if _, err := New(Options{ConfigFile: file}); err == nil || !strings.Contains(err.Error(), "iap.servers[0].rol") {
		t.Fatalf("New with a bad config: err = %v, want one naming iap.servers[0].rol", err)
	}
}

func TestScrapeTimeoutFromHeader(t *testing.T) {
	e := &Exporter{opts: Options{DefaultTimeout: 10 * time.Second, TimeoutOffset: 500 * time.Millisecond}}
	for _, c := range []struct {
		header string
		want   time.Duration
		bad    bool
	}{
		{"", 10 * time.Second, false},
		{"5", 4500 * time.Millisecond, false},
		{"2.5", 2 * time.Second, false},
		{"0.4", 0, true},
		{"soon", 0, true},
		{"-1", 0, true},
		// Not a timeout (NaN compares false with everything, Inf and huge
		// values overflow a time.Duration): refused, never a scrape
		// without a deadline.
		{"NaN", 0, true},
		{"Inf", 0, true},
		{"+Inf", 0, true},
		{"-Inf", 0, true},
		{"1e300", 0, true},
		{"9.3e9", 0, true},
		{"3601", 0, true},
		{"3600", time.Hour - 500*time.Millisecond, false},
	} {
		req := httptest.NewRequest(http.MethodGet, "/metrics", nil)
		if c.header != "" {
			req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", c.header)
		}
		got, err := e.timeout(req)
		if (err != nil) != c.bad || got != c.want {
			t.Errorf("header %q: got %s, %v; want %s (error: %v)", c.header, got, err, c.want, c.bad)
		}
	}
}

// Every secret path of the configuration, fed distinctive passwords, with
// every target unreachable so that every error path runs: no secret may
// appear in /metrics, the landing page, the logs or the errors.
func TestSecretsNeverLeak(t *testing.T) {
	dir := t.TempDir()
	secrets := map[string]string{
		"iap":      "iap-pw-Xy7Rq1",
		"oauth":    "oauth-secret-Mn4Tz8",
		"mongo":    "mongo-pw-Lk2Vb6",
		"redis":    "redis-pw-Qa9Wd3",
		"sentinel": "sentinel-pw-Ej5Hc0",
		"rabbitmq": "rabbit-pw-Uo1Gf4",
		"gateway":  "gateway-pw-Ry8Np2",
	}
	for name, s := range secrets {
		writeFile(t, filepath.Join(dir, name), s+"\n")
	}
	dead := closedPort(t)
	cfg := `
iap:
  auth: {username: monitor, password_file: iap}
  servers:
    - {name: a, url: "http://` + dead + `"}
    - {name: b, url: "http://` + dead + `", auth: {client_id: exporter, client_secret_file: oauth}}
mongodb:
  - {name: rs0, uri: "mongodb://` + dead + `/?replicaSet=rs0", username: monitor, password_file: mongo}
redis:
  - sentinels: [{address: "` + dead + `"}]
    auth: {username: default, password_file: redis}
    sentinel_auth: {username: sentinel, password_file: sentinel}
rabbitmq:
  - {name: r, urls: ["http://` + dead + `"], username: monitor, password_file: rabbitmq}
gateways:
  - {name: g, url: "http://` + dead + `", username: admin, password_file: gateway}
`
	file := filepath.Join(dir, "config.yml")
	writeFile(t, file, cfg)
	logs := &syncBuffer{}
	e, err := New(Options{ConfigFile: file, Logger: debugLogger(logs), DefaultTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	var seen []string
	for range 2 { // the second scrape reuses pools and tokens
		_, body := get(t, e.MetricsHandler(), http.MethodGet, "/metrics", nil)
		seen = append(seen, body)
	}
	// A bad reload runs the error paths of the loader too.
	writeFile(t, file, cfg+"\nbogus: "+secrets["iap"]+"\n")
	_, body := get(t, e.ReloadHandler(), http.MethodPost, "/-/reload", nil)
	seen = append(seen, body, logs.String())
	for _, out := range seen {
		for name, s := range secrets {
			if strings.Contains(out, s) {
				t.Errorf("the %s secret appears in the output:\n%s", name, grep(out, s))
			}
		}
	}
}

// promtool (Debian's prometheus package, installed when missing) must find
// nothing wrong with what /metrics serves.
func TestPromtoolCheckMetrics(t *testing.T) {
	if err := lab.EnsurePackages(map[string]string{"promtool": "prometheus"}); err != nil {
		t.Fatal(err)
	}
	promtool, err := exec.LookPath("promtool")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Logger: promslog.NewNopLogger(), DefaultTimeout: 3 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	_, body := get(t, e.MetricsHandler(), http.MethodGet, "/metrics", nil)
	if !strings.Contains(body, "iap_ha_exporter_build_info") {
		t.Fatalf("no build info in the output:\n%s", body)
	}
	cmd := exec.Command(promtool, "check", "metrics")
	cmd.Stdin = strings.NewReader(body)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

func grep(s, substr string) string {
	var out []string
	for _, l := range strings.Split(s, "\n") {
		if strings.Contains(l, substr) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// A target that accepts and never answers, with timeouts longer than the
// scrape: the scrape still answers within Prometheus's timeout, with that
// collector failed and the rest served.
func TestHungTargetCutAtTheScrapeDeadline(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "iap:\n  health_timeout: 1m\n  timeout: 1m\n  servers:\n    - {name: hung, url: \"http://"+l.Addr().String()+"\"}\n")
	e, err := New(Options{ConfigFile: file, TimeoutOffset: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	start := time.Now()
	code, body := get(t, e.MetricsHandler(), http.MethodGet, "/metrics", http.Header{"X-Prometheus-Scrape-Timeout-Seconds": {"2"}})
	took := time.Since(start)
	if code != http.StatusOK {
		t.Fatalf("scrape with a hung target: %d\n%s", code, body)
	}
	// 1.5 s budget (2 s less the offset); the bound is generous for a busy machine.
	if took > 4*time.Second {
		t.Errorf("scrape took %s with a 2 s scrape timeout", took)
	}
	for _, want := range []string{`iap_ha_scrape_collector_success{collector="topology"} 1`, "iap_ha_exporter_build_info"} {
		if !strings.Contains(body, want) {
			t.Errorf("scrape lacks %s", want)
		}
	}
	// The IAP probe either gave up at the deadline itself (server down) or
	// was abandoned there (collector failed): both say so, neither guesses.
	if !strings.Contains(body, `iap_ha_iap_up{server="hung",site="local"} 0`) &&
		!strings.Contains(body, `iap_ha_scrape_collector_success{collector="iap"} 0`) {
		t.Errorf("the hung server is reported neither down nor as a failed collector:\n%s", grep(body, "iap"))
	}
}

// BenchmarkMetricsHandler serves /metrics as Prometheus asks for it (gzip,
// the timeout header) for a configuration whose one target refuses at once:
// the exporter's own cost per scrape, nearly nothing of probing.
func BenchmarkMetricsHandler(b *testing.B) {
	file := filepath.Join(b.TempDir(), "config.yml")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		b.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	if err := os.WriteFile(file, []byte("rabbitmq:\n  - name: dc1\n    urls: [\"http://"+addr+"\"]\n"), 0o600); err != nil {
		b.Fatal(err)
	}
	e, err := New(Options{ConfigFile: file})
	if err != nil {
		b.Fatal(err)
	}
	defer e.Close()
	benchmarkScrape(b, e.MetricsHandler(), "/metrics")
}

// benchmarkScrape times h answering a scrape of target as Prometheus sends it.
func benchmarkScrape(b *testing.B, h http.Handler, target string) {
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Header.Set("Accept-Encoding", "gzip")
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	b.ReportAllocs()
	for b.Loop() {
		rec := httptest.NewRecorder()
		h.ServeHTTP(rec, req)
		if rec.Code != http.StatusOK {
			b.Fatalf("status %d: %s", rec.Code, rec.Body)
		}
	}
}

// TestDefaultTargetTimeoutsFitTheDefaultDeadline: a target's own timeout
// longer than the scrape deadline (Prometheus's default scrape_timeout of
// 10 s less the offset) lets one hung target run into the deadline, where
// it is cut rather than reported down. Every default timeout fits, with
// the collectors' reserve for reporting (a tenth, at most 250 ms) to spare.
func TestDefaultTargetTimeoutsFitTheDefaultDeadline(t *testing.T) {
	deadline := DefaultTimeout - DefaultTimeoutOffset - 250*time.Millisecond
	for name, d := range map[string]time.Duration{
		"iap":        config.DefaultIAPTimeout,
		"iap health": config.DefaultHealthTimeout,
		"mongodb":    config.DefaultMongoTimeout,
		"redis":      config.DefaultRedisTimeout,
		"rabbitmq":   config.DefaultRabbitMQTimeout,
		"gateway":    config.DefaultGatewayTimeout,
	} {
		if d >= deadline {
			t.Errorf("the default %s timeout %s does not fit under the default scrape deadline %s", name, d, deadline)
		}
	}
}

// TestLongScrapeOutlivesServerTimeouts: Go cancels a request's context
// when the server's ReadTimeout passes, and cuts the answer at its
// WriteTimeout. A scrape whose header asks for longer than both still
// answers in full: /metrics moves its own deadlines.
func TestLongScrapeOutlivesServerTimeouts(t *testing.T) {
	mute, err := hostile.StartMute()
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "rabbitmq:\n  - {name: hung, timeout: 1m, urls: [\"http://"+mute.Addr()+"\"]}\n")
	e, err := New(Options{ConfigFile: file, TimeoutOffset: 500 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	srv := httptest.NewUnstartedServer(e.MetricsHandler())
	srv.Config = NewServer(e.MetricsHandler(), time.Second, slog.New(slog.DiscardHandler))
	srv.Config.ReadTimeout, srv.Config.WriteTimeout = time.Second, time.Second
	srv.Start()
	defer srv.Close()
	req, err := http.NewRequest(http.MethodGet, srv.URL+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "3")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("a 3 s scrape behind 1 s server timeouts: %v", err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil || res.StatusCode != http.StatusOK || !strings.Contains(string(body), `iap_ha_rabbitmq_up{cluster="hung"} 0`) {
		t.Errorf("HTTP %d, %v, want the whole answer:\n%s", res.StatusCode, err, body)
	}
}

// TestReloadKeepsLogins: IAP and Automation Gateway tokens live until the
// server refuses them (401), so a reload that leaves a section's settings
// as they were keeps its tokens: 30 reloads and scrapes cost one login per
// IAP cluster and gateway. A reload that changes the IAP settings (a new
// timeout here) logs in to IAP again; the gateway keeps its token.
func TestReloadKeepsLogins(t *testing.T) {
	sim, err := iapsim.Start(iapsim.Topology{
		Users:   map[string]string{"monitor": "monitor-pw"},
		Servers: []iapsim.ServerSpec{{Name: "iap-1", Role: "active"}, {Name: "iap-2", Role: "standby", Cluster: "iap-1"}},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer sim.Close()
	gw, err := iagsim.Start(iagsim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer gw.Close()
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yml")
	writeFile(t, filepath.Join(dir, "iap-pw"), "monitor-pw\n")
	writeFile(t, filepath.Join(dir, "gw-pw"), iagsim.DefaultPassword+"\n")
	config := func(timeout string) string {
		return fmt.Sprintf(`iap:
  timeout: %s
  auth: {username: monitor, password_file: iap-pw}
  servers:
    - {name: iap-1, url: %q, role: active, cluster: c}
    - {name: iap-2, url: %q, role: standby, cluster: c}
gateways:
  - {name: g, url: %q, username: %q, password_file: gw-pw}
`, timeout, sim.Server("iap-1").URL(), sim.Server("iap-2").URL(), gw.URL(), iagsim.DefaultUsername)
	}
	writeFile(t, file, config("5s"))
	e, err := New(Options{ConfigFile: file, Collectors: []string{"iap", "gateway"}})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	iapLogins := func() int { return sim.Server("iap-1").Requests("/login") + sim.Server("iap-2").Requests("/login") }
	scrape := func() {
		t.Helper()
		if code, body := get(t, e.MetricsHandler(), http.MethodGet, "/metrics", nil); code != http.StatusOK ||
			!strings.Contains(body, `iap_ha_iap_api_up{server="iap-1",site="local"} 1`) || !strings.Contains(body, `iap_ha_gateway_up{gateway="g",site="local"} 1`) {
			t.Fatalf("HTTP %d:\n%s", code, grep(body, "_up{"))
		}
	}
	for range 30 {
		if err := e.Reload(); err != nil {
			t.Fatal(err)
		}
		scrape()
	}
	if n := iapLogins(); n != 1 {
		t.Errorf("%d IAP logins over 30 reloads of the same settings, want 1", n)
	}
	if n := gw.Stats().Logins; n != 1 {
		t.Errorf("%d gateway logins over 30 reloads of the same settings, want 1", n)
	}
	writeFile(t, file, config("6s"))
	if err := e.Reload(); err != nil {
		t.Fatal(err)
	}
	scrape()
	if n := iapLogins(); n != 2 {
		t.Errorf("%d IAP logins after the IAP settings changed, want 2", n)
	}
	if n := gw.Stats().Logins; n != 1 {
		t.Errorf("%d gateway logins after a reload that left the gateway as it was, want 1", n)
	}
}

// TestReloadEndpointDisabled: with the endpoint turned off, POST /-/reload
// is refused (403, as Prometheus's lifecycle endpoints when disabled) and
// changes nothing; Reload (SIGHUP) still works.
func TestReloadEndpointDisabled(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "rabbitmq:\n  - {name: a, urls: [\"http://"+closedPort(t)+"\"]}\n")
	e, err := New(Options{ConfigFile: file, ReloadEndpointDisabled: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Close()
	writeFile(t, file, "rabbitmq:\n  - {name: b, urls: [\"http://"+closedPort(t)+"\"]}\n")
	if code, body := get(t, e.ReloadHandler(), http.MethodPost, "/-/reload", nil); code != http.StatusForbidden {
		t.Errorf("POST /-/reload: HTTP %d, want 403: %s", code, body)
	}
	if name := e.Config().RabbitMQ[0].Name; name != "a" {
		t.Errorf("the refused reload loaded the new file (cluster %s)", name)
	}
	if err := e.Reload(); err != nil || e.Config().RabbitMQ[0].Name != "b" {
		t.Errorf("Reload: %v, cluster %s, want b", err, e.Config().RabbitMQ[0].Name)
	}
}
