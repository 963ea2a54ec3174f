package e2e

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/recorded"
)

// hostileConfigs are configuration files meant to hurt: each must be
// refused, quickly, with a problem report.
func hostileConfigs() map[string]string {
	var bomb strings.Builder // 3000 groups sharing 3000 Sentinels through one alias
	bomb.WriteString("redis:\n  - name: g0\n    sentinels: &s\n")
	for range 3000 {
		bomb.WriteString("      - {address: \"a:1\"}\n")
	}
	for i := 1; i < 3000; i++ {
		fmt.Fprintf(&bomb, "  - {name: g%d, sentinels: *s}\n", i)
	}
	return map[string]string{
		"alias bomb":        bomb.String(),
		"endless secret":    "rabbitmq:\n  - {name: r, urls: [\"http://127.0.0.1:1\"], username: u, password_file: /dev/zero}\n",
		"deep nesting":      "sites: " + strings.Repeat("[", 100000) + "\n",
		"binary garbage":    "\x00\xff\xfe{{{\x01",
		"type confusion":    "iap: [1, 2, 3]\nmongodb: {a: b}\nredis: 7\n",
		"10,000 bad fields": strings.Repeat("x: 1\n", 10000),
		"password in a URL": "rabbitmq:\n  - {name: r, urls: [\"http://admin:pw@127.0.0.1:15672\"]}\n",
		"duplicate key":     "sites: &a [{name: x}]\nsites: *a\n",
	}
}

// TestHostileConfigRefused: the binary does not start on a hostile
// configuration, and a running one keeps its good configuration when a
// hostile one is reloaded.
func TestHostileConfigRefused(t *testing.T) {
	dir := t.TempDir()
	for name, cfg := range hostileConfigs() {
		t.Run("start with "+name, func(t *testing.T) {
			file := filepath.Join(dir, strings.ReplaceAll(name, " ", "-")+".yml")
			writeFile(t, file, cfg)
			// Generous: a refusal takes well under a second; a hang or an
			// expansion would take minutes.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			out, err := exec.CommandContext(ctx, binary, "--config.file", file, "--web.listen-address", closedAddr(t)).CombinedOutput()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || ctx.Err() != nil {
				t.Fatalf("want exit status 1 at once, got %v (%v)\n%s", err, ctx.Err(), out)
			}
			if !strings.Contains(string(out), "invalid configuration") {
				t.Errorf("the output does not say what is wrong:\n%s", out)
			}
		})
	}

	file := filepath.Join(dir, "config.yml")
	good := "rabbitmq:\n  - {name: good, urls: [\"http://" + closedAddr(t) + "\"]}\n"
	writeFile(t, file, good)
	exp := startExporter(t, "--config.file", file)
	base := "http://" + exp.addr
	for name, cfg := range hostileConfigs() {
		writeFile(t, file, cfg)
		if code, body := post(t, base+"/-/reload", "", ""); code != http.StatusInternalServerError || !strings.Contains(body, "invalid configuration") {
			t.Errorf("reload of %s: HTTP %d: %s", name, code, body)
		}
		_, metrics := get(t, http.DefaultClient, base+"/metrics", "", "")
		for _, want := range []string{"iap_ha_config_last_reload_successful 0", `iap_ha_rabbitmq_up{cluster="good"} 0`} {
			if !strings.Contains(metrics, want) {
				t.Errorf("after reloading %s, /metrics lacks %s", name, want)
			}
		}
	}
}

// TestHostileScrapeTimeoutHeader: a scrape timeout header that is not a
// number of seconds in range (NaN, infinite, negative, huge enough to
// overflow a duration) would leave the scrape without a deadline; the
// binary answers 400 and a good header still scrapes.
func TestHostileScrapeTimeoutHeader(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "rabbitmq:\n  - {name: r, urls: [\"http://"+closedAddr(t)+"\"]}\n")
	exp := startExporter(t, "--config.file", file)
	for header, want := range map[string]int{
		"NaN": http.StatusBadRequest, "Inf": http.StatusBadRequest, "-Inf": http.StatusBadRequest,
		"-5": http.StatusBadRequest, "1e300": http.StatusBadRequest, "5": http.StatusOK,
	} {
		req, err := http.NewRequest(http.MethodGet, "http://"+exp.addr+"/metrics", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", header)
		if code, body := send(t, http.DefaultClient, req); code != want {
			t.Errorf("timeout header %q: HTTP %d, want %d: %.200s", header, code, want, body)
		}
	}
}

// TestHungRabbitMQClusterHidesNoOther: of two RabbitMQ clusters with the
// default timeouts, one accepts connections and never answers. A scrape
// with Prometheus's default scrape_timeout (10 s) serves
// iap_ha_rabbitmq_up for both: 1 for the cluster that answered, 0 for the
// hung one, so that alerts on either can fire.
func TestHungRabbitMQClusterHidesNoOther(t *testing.T) {
	mute, err := hostile.StartMute()
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	good := httptest.NewServer(recorded.RabbitMQ("../probe/rabbitmq/testdata/3.10/healthy"))
	defer good.Close()
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, fmt.Sprintf("rabbitmq:\n  - {name: good, urls: [%q]}\n  - {name: hung, urls: [\"http://%s\"]}\n", good.URL, mute.Addr()))
	exp := startExporter(t, "--config.file", file)
	req, err := http.NewRequest(http.MethodGet, "http://"+exp.addr+"/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-Prometheus-Scrape-Timeout-Seconds", "10")
	code, body := send(t, http.DefaultClient, req)
	if code != http.StatusOK {
		t.Fatalf("HTTP %d: %s", code, body)
	}
	for _, want := range []string{`iap_ha_rabbitmq_up{cluster="good"} 1`, `iap_ha_rabbitmq_up{cluster="hung"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s:\n%s", want, grep(body, "rabbitmq_up"))
		}
	}
}

// TestReloadsCostNoLogins: POST /-/reload answers anyone the web
// configuration lets through. Reloads of unchanged settings, each followed
// by a scrape, cost no IAP login beyond the first; with
// --no-web.enable-reload the endpoint is refused.
func TestReloadsCostNoLogins(t *testing.T) {
	sim := startIAPSim(t, iapsim.Topology{
		Users:   map[string]string{"monitor": "monitor-pw"},
		Servers: []iapsim.ServerSpec{{Name: "iap-1", Role: "active"}},
	})
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "iap-pw"), "monitor-pw\n")
	file := filepath.Join(dir, "config.yml")
	writeFile(t, file, fmt.Sprintf("iap:\n  auth: {username: monitor, password_file: iap-pw}\n  servers:\n    - {name: iap-1, url: %q, role: active}\n", sim.Server("iap-1").URL()))
	exp := startExporter(t, "--config.file", file)
	for range 30 {
		if code, body := post(t, "http://"+exp.addr+"/-/reload", "", ""); code != http.StatusOK {
			t.Fatalf("reload: HTTP %d: %s", code, body)
		}
		if _, body := get(t, http.DefaultClient, "http://"+exp.addr+"/metrics", "", ""); !strings.Contains(body, `iap_ha_iap_api_up{server="iap-1",site="local"} 1`) {
			t.Fatalf("the scrape after a reload:\n%s", grep(body, "iap_up"))
		}
	}
	if n := sim.Server("iap-1").Requests("/login"); n != 1 {
		t.Errorf("%d logins over 30 reloads and scrapes, want 1", n)
	}
	off := startExporter(t, "--config.file", file, "--no-web.enable-reload")
	if code, body := post(t, "http://"+off.addr+"/-/reload", "", ""); code != http.StatusForbidden {
		t.Errorf("reload with --no-web.enable-reload: HTTP %d, want 403: %s", code, body)
	}
}
