package e2e

import (
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iagsim"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
	"github.com/iapha/iap_ha_exporter/fixtures/recorded"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// The exporter's own endpoint: basic auth user and password, and the bcrypt
// hash of that password in the web configuration.
const (
	scrapeUser     = "prometheus"
	scrapePassword = "scrape-pw-Tb6Kd1"
	scrapeHash     = "$2a$10$5K86PkwKG.1lpEwVw08x9.hZrhUorNJL8AS6y7PtCKg.FnuatRXei"
)

// tlsLab is one target of every kind, each speaking TLS only: IAP (iapsim),
// MongoDB (mongosim), Redis and Sentinel (the real servers, with their own
// CA), the RabbitMQ management API (recorded answers of RabbitMQ 3.10) and an
// Automation Gateway (iagsim).
type tlsLab struct {
	files     lab.TLSFiles // the CA and certificate of every target but Redis
	redis     *lab.SentinelGroup
	iap       *iapsim.Sim
	mongo     *mongosim.Sim
	gateway   *iagsim.Server
	rabbitURL string
}

func startTLSLab(t *testing.T) *tlsLab {
	t.Helper()
	l := &tlsLab{}
	var err error
	if l.files, err = lab.WriteTLSFiles(t.TempDir()); err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(l.files.CertFile, l.files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	serverTLS := &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}

	if l.redis, err = lab.StartSentinelGroup(lab.SentinelOptions{TLS: true, Dir: t.TempDir()}); err != nil {
		t.Fatalf("the Redis TLS lab did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.redis.Stop(); err != nil {
			t.Errorf("stopping Redis: %v", err)
		}
	})
	if l.iap, err = iapsim.Start(iapsim.Topology{
		Users:   map[string]string{"admin": "admin"},
		Servers: []iapsim.ServerSpec{{Name: "iap1", Release: iapsim.Release2023_2, Role: "active", TLS: serverTLS}},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.iap.Close)
	sc, err := mongosim.Builtin("pss")
	if err != nil {
		t.Fatal(err)
	}
	if l.mongo, err = mongosim.Start(sc, mongosim.Options{TLS: serverTLS}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(l.mongo.Close)
	if l.gateway, err = iagsim.Start(iagsim.Options{Username: "admin", Password: "admin", TLS: serverTLS}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.gateway.Close() })
	rabbit := httptest.NewUnstartedServer(recorded.RabbitMQ("../probe/rabbitmq/testdata/3.10/healthy"))
	rabbit.TLS = serverTLS
	rabbit.Config.ErrorLog = log.New(io.Discard, "", 0) // the wrong-CA case makes handshakes fail
	rabbit.StartTLS()
	t.Cleanup(rabbit.Close)
	l.rabbitURL = rabbit.URL
	return l
}

// config is the exporter configuration for the lab, every target trusting
// ca (Redis: redisCA).
func (l *tlsLab) config(t *testing.T, dir, ca, redisCA string) string {
	t.Helper()
	for name, secret := range map[string]string{"iap-password": "admin", "gateway-password": "admin", "rabbitmq-password": "guest"} {
		writeFile(t, filepath.Join(dir, name), secret+"\n")
	}
	var sentinels []string
	for _, a := range l.redis.SentinelAddrs() {
		sentinels = append(sentinels, fmt.Sprintf("{address: %q}", a))
	}
	tlsConfig := fmt.Sprintf("{ca_file: %q}", ca)
	cfg := fmt.Sprintf(`
iap:
  auth: {username: admin, password_file: iap-password}
  tls_config: %[1]s
  servers: [{name: iap1, url: %[2]q}]
mongodb:
  - {name: rs0, uri: %[3]q, timeout: 3s, tls_config: %[1]s}
redis:
  - {name: cache, master_name: %[4]s, sentinels: [%[5]s], tls_config: {ca_file: %[6]q}}
rabbitmq:
  - {name: rabbit, urls: [%[7]q], username: guest, password_file: rabbitmq-password, tls_config: %[1]s}
gateways:
  - {name: iag1, url: %[8]q, username: admin, password_file: gateway-password, tls_config: %[1]s}
`, tlsConfig, l.iap.Server("iap1").URL(), l.mongo.URI(), l.redis.MasterName, strings.Join(sentinels, ", "),
		redisCA, l.rabbitURL, l.gateway.URL())
	path := filepath.Join(dir, "config.yml")
	writeFile(t, path, cfg)
	return path
}

// upSeries are the series that read 1 when the exporter reached a target.
var upSeries = []string{
	`iap_ha_iap_up{server="iap1",site="local"}`,
	`iap_ha_mongodb_up{set="rs0"}`,
	`iap_ha_rabbitmq_up{cluster="rabbit"}`,
	`iap_ha_gateway_up{gateway="iag1",site="local"}`,
}

// notUp lists the upSeries that do not read 1, and the Sentinels missing
// from iap_ha_redis_sentinel_reachable.
func notUp(body string, sentinels int) []string {
	var out []string
	for _, series := range upSeries {
		if !strings.Contains(body, "\n"+series+" 1\n") {
			out = append(out, series)
		}
	}
	if want := fmt.Sprintf("\niap_ha_redis_sentinel_reachable{master=\"cache\"} %d\n", sentinels); !strings.Contains(body, want) {
		out = append(out, strings.TrimSpace(want))
	}
	return out
}

// TestTLSEndToEnd runs the binary behind TLS and basic auth from a web
// configuration file, towards targets that all speak TLS: with the right CAs
// every target is up; with a CA that signed none of them, every target is
// down with an error that names it and the certificate, and the scrape
// still answers in time.
func TestTLSEndToEnd(t *testing.T) {
	l := startTLSLab(t)
	dir := t.TempDir()
	webConfig := filepath.Join(dir, "web.yml")
	writeFile(t, webConfig, fmt.Sprintf("tls_server_config: {cert_file: %q, key_file: %q}\nbasic_auth_users: {%s: %q}\n",
		l.files.CertFile, l.files.KeyFile, scrapeUser, scrapeHash))
	clientTLS, err := l.files.ClientConfig()
	if err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Transport: &http.Transport{TLSClientConfig: clientTLS}, Timeout: 30 * time.Second}

	t.Run("trusted", func(t *testing.T) {
		cfg := l.config(t, t.TempDir(), l.files.CAFile, l.redis.TLS.CAFile)
		exp := startExporter(t, "--config.file", cfg, "--web.config.file", webConfig)
		url := "https://" + exp.addr + "/metrics"

		for _, c := range []struct {
			name, user, password string
			want                 int
		}{
			{"no credentials", "", "", http.StatusUnauthorized},
			{"wrong password", scrapeUser, "guess", http.StatusUnauthorized},
		} {
			if code, _ := get(t, client, url, c.user, c.password); code != c.want {
				t.Errorf("%s: HTTP %d, want %d", c.name, code, c.want)
			}
		}
		if res, err := http.Get("http://" + exp.addr + "/metrics"); err == nil {
			res.Body.Close()
			if res.StatusCode != http.StatusBadRequest {
				t.Errorf("plain HTTP: %d, want 400", res.StatusCode)
			}
		}
		// The drivers may need a scrape to find their servers.
		var down []string
		for range 10 {
			_, body := get(t, client, url, scrapeUser, scrapePassword)
			if down = notUp(body, len(l.redis.SentinelAddrs())); len(down) == 0 {
				break
			}
			time.Sleep(time.Second)
		}
		if len(down) > 0 {
			t.Errorf("not every target is up over TLS: %q\n%s", down, exp.output)
		}
	})

	t.Run("wrong CA", func(t *testing.T) {
		other, err := lab.WriteTLSFiles(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		cfg := l.config(t, t.TempDir(), other.CAFile, other.CAFile)
		exp := startExporter(t, "--config.file", cfg, "--web.config.file", webConfig)
		start := time.Now()
		code, body := get(t, client, "https://"+exp.addr+"/api/v1/topology", scrapeUser, scrapePassword)
		if code != http.StatusOK {
			t.Fatalf("/api/v1/topology: HTTP %d: %s", code, body)
		}
		// Generous: the default scrape deadline is 10 s; a hang would exceed it.
		if d := time.Since(start); d > 10*time.Second {
			t.Errorf("the scrape took %s", d)
		}
		var doc struct{ Snapshot topology.Snapshot }
		if err := json.Unmarshal([]byte(body), &doc); err != nil {
			t.Fatal(err)
		}
		s := doc.Snapshot
		if len(s.IAP) != 1 || len(s.MongoDB) != 1 || len(s.Redis) != 1 || len(s.RabbitMQ) != 1 || len(s.Gateways) != 1 {
			t.Fatalf("a target is missing from the snapshot: %s", body)
		}
		targets := []struct{ target, addr, err string }{
			{"iap server iap1", l.iap.Server("iap1").URL(), s.IAP[0].Error},
			{"mongodb rs0", l.mongo.Addrs()[0], s.MongoDB[0].Error},
			{"rabbitmq rabbit", l.rabbitURL, s.RabbitMQ[0].Error},
			{"gateway iag1", l.gateway.URL(), s.Gateways[0].Error},
		}
		// A Sentinel's error stands in the view of that Sentinel, which
		// carries its address.
		if got, want := len(s.Redis[0].Sentinels), len(l.redis.SentinelAddrs()); got != want {
			t.Errorf("%d Sentinel views, want %d", got, want)
		}
		for i, sv := range s.Redis[0].Sentinels {
			if sv.Address != l.redis.SentinelAddrs()[i] {
				t.Errorf("Sentinel view %d is of %q, want %q", i, sv.Address, l.redis.SentinelAddrs()[i])
			}
			targets = append(targets, struct{ target, addr, err string }{"sentinel " + sv.Address, "", sv.Error})
		}
		for _, c := range targets {
			if !strings.Contains(c.err, "certificate signed by unknown authority") {
				t.Errorf("%s: error %q does not say the certificate is not trusted", c.target, c.err)
			}
			if addr := strings.TrimPrefix(c.addr, "https://"); !strings.Contains(c.err, addr) {
				t.Errorf("%s: error %q does not name %s", c.target, c.err, addr)
			}
		}
	})
}

// get fetches url with basic auth (when user is set).
func get(t *testing.T, client *http.Client, url, user, password string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if user != "" {
		req.SetBasicAuth(user, password)
	}
	return send(t, client, req)
}

// send does req and returns the answer's status and body.
func send(t *testing.T, client *http.Client, req *http.Request) (int, string) {
	t.Helper()
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return res.StatusCode, string(b)
}
