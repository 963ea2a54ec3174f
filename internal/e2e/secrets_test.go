package e2e

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iagsim"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/mongosim"
)

// leakSecrets are distinctive values for every secret path: the exporter's
// targets and the remediation receiver's own.
var leakSecrets = map[string]string{
	"iap":            "iap-pw-Hq3Zt7",
	"oauth":          "oauth-secret-Pc8Wm2",
	"mongo":          "mongo-pw-Vd5Kr9",
	"redis":          "redis-pw-Fs1Jx4",
	"sentinel":       "sentinel-pw-Lb6Ny0",
	"rabbitmq":       "rabbit-pw-Ga2Ue8",
	"gateway":        "gateway-pw-Tk7Ow3",
	"webhook-token":  "webhook-token-Rm4Qa6",
	"webhook-basic":  "webhook-pw-Ej9Sd1",
	"remediation-ia": "remediation-iap-pw-Yx2Cv5",
}

// TestSecretsNeverLeakFromTheBinary feeds a distinctive secret through every
// secret path, to targets that refuse them (wrong passwords) or do not
// answer, and greps everything the binary emits for them: its logs at debug
// level, /metrics, the landing and topology pages, /api/v1/topology, the
// remediation webhook's answers, its journal and audit log, a failed
// reload's error, `--config.check` and `promote --dry-run`.
func TestSecretsNeverLeakFromTheBinary(t *testing.T) {
	dir := t.TempDir()
	for name, secret := range leakSecrets {
		writeFile(t, filepath.Join(dir, name), secret+"\n")
	}
	targets := startRefusingTargets(t)
	cfg := filepath.Join(dir, "config.yml")
	writeFile(t, cfg, targets.config(closedAddr(t)))
	writeFile(t, filepath.Join(dir, "remediation.yml"), remediationConfig("auth: {bearer_token_file: webhook-token}"))
	writeFile(t, filepath.Join(dir, "remediation-basic.yml"),
		remediationConfig("auth: {basic_auth: {username: alertmanager, password_file: webhook-basic}}"))
	outputs := map[string]string{}

	exp := startExporter(t, "--config.file", cfg, "--remediation.config.file", filepath.Join(dir, "remediation.yml"), "--log.level", "debug")
	base := "http://" + exp.addr
	for _, path := range []string{"/metrics", "/metrics", "/", "/topology", "/api/v1/topology", "/-/healthy", "/-/ready"} {
		code, body := get(t, http.DefaultClient, base+path, "", "")
		if code != http.StatusOK {
			t.Errorf("GET %s: HTTP %d: %s", path, code, body)
		}
		outputs["GET "+path] += body
	}
	// The active server goes down, so that the receiver checks the standby
	// with its own IAP account.
	if err := targets.iap.Server("iap-dc1-1").SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	notification, err := os.ReadFile("../../remediation/testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name, authorization string
		want                int
	}{
		{"no credentials", "", http.StatusUnauthorized},
		{"a wrong token", "Bearer " + leakSecrets["webhook-token"] + "x", http.StatusUnauthorized},
		{"the token", "Bearer " + leakSecrets["webhook-token"], http.StatusAccepted},
	} {
		code, body := post(t, base+"/remediation/alertmanager", c.authorization, string(notification))
		if code != c.want {
			t.Errorf("webhook with %s: HTTP %d, want %d: %s", c.name, code, c.want, body)
		}
		outputs["webhook with "+c.name] = body
	}
	// The receiver acts in the background: wait until it has decided.
	audit := filepath.Join(dir, "audit.log")
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		if fi, err := os.Stat(audit); err == nil && fi.Size() > 0 {
			break
		}
	}
	// A reload of a broken file reports every problem it finds.
	good, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, cfg, string(good)+"bogus: true\n")
	code, body := post(t, base+"/-/reload", "", "")
	if code != http.StatusInternalServerError {
		t.Errorf("reload of a broken file: HTTP %d: %s", code, body)
	}
	outputs["failed reload"] = body
	writeFile(t, cfg, string(good))
	exp.stop()
	outputs["logs"] = exp.output.String()
	for _, name := range []string{"audit.log", "journal"} {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("the receiver wrote no %s: %v", name, err)
		}
		outputs[name] = string(b)
	}

	// The commands that load the files and print.
	bad := filepath.Join(dir, "bad.yml")
	writeFile(t, bad, "rabbitmq:\n  - {name: r, urls: [\"http://monitor:"+leakSecrets["rabbitmq"]+"@127.0.0.1:15672\"]}\n")
	for name, args := range map[string][]string{
		"--config.check (good)": {"--config.check", "--config.file", cfg},
		"--config.check (bad)":  {"--config.check", "--config.file", bad},
		"promote --dry-run":     {"promote", "--from", "iap-dc1-1", "--dry-run", "--config.file", cfg, "--remediation.config.file", filepath.Join(dir, "remediation-basic.yml"), "--log.level", "debug"},
	} {
		out, _ := exec.Command(binary, args...).CombinedOutput()
		outputs[name] = string(out)
	}

	// Each output must be what it claims, or the test proves nothing.
	for name, want := range map[string]string{
		"logs":                  `level=DEBUG`,
		"GET /metrics":          `iap_ha_iap_up{server="iap-dc1-1"`,
		"GET /":                 "IAP HA Exporter",
		"GET /api/v1/topology":  `"error"`,
		"failed reload":         `unknown field "bogus"`,
		"--config.check (good)": ": OK",
		"--config.check (bad)":  "must not carry credentials",
		"promote --dry-run":     "iap-dc1-1",
	} {
		if !strings.Contains(outputs[name], want) {
			t.Errorf("%s does not contain %q; it reads:\n%s", name, want, outputs[name])
		}
	}
	for name, out := range outputs {
		for secretName, secret := range leakSecrets {
			if strings.Contains(out, secret) {
				t.Errorf("the %s secret appears in %s:\n%s", secretName, name, grep(out, secret))
			}
		}
	}
}

// refusingTargets are live targets that refuse every secret the exporter
// sends: their refusals run the error paths of authentication.
type refusingTargets struct {
	iap     *iapsim.Sim
	mongo   *mongosim.Sim
	gateway *iagsim.Server
	rabbit  *httptest.Server
}

func startRefusingTargets(t *testing.T) *refusingTargets {
	t.Helper()
	var r refusingTargets
	var err error
	if r.iap, err = iapsim.Start(iapsim.Topology{
		Users:   map[string]string{"monitor": "another"},
		Clients: map[string]string{"exporter": "another"},
		Servers: []iapsim.ServerSpec{
			{Name: "iap-dc1-1", Cluster: "main", Role: "active"},
			{Name: "iap-dc2-1", Cluster: "main", Role: "standby"},
		},
	}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.iap.Close)
	sc, err := mongosim.Builtin("pss")
	if err != nil {
		t.Fatal(err)
	}
	if r.mongo, err = mongosim.Start(sc, mongosim.Options{Username: "monitor", Password: "another"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(r.mongo.Close)
	if r.gateway, err = iagsim.Start(iagsim.Options{Username: "admin", Password: "another"}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.gateway.Close() })
	r.rabbit = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"error":"not_authorized","reason":"Login failed"}`)
	}))
	t.Cleanup(r.rabbit.Close)
	return &r
}

// config is the exporter configuration: every credential read from the
// files of leakSecrets; Redis and its Sentinels at dead, an address that
// refuses connections.
func (r *refusingTargets) config(dead string) string {
	return fmt.Sprintf(`
sites:
  - {name: dc1, role: active}
  - {name: dc2, role: standby}
iap:
  auth: {username: monitor, password_file: iap}
  servers:
    - {name: iap-dc1-1, url: %q, site: dc1, role: active, cluster: main}
    - {name: iap-dc2-1, url: %q, site: dc2, role: standby, cluster: main,
       auth: {client_id: exporter, client_secret_file: oauth}}
mongodb:
  - {name: rs0, uri: %q, username: monitor, password_file: mongo, timeout: 2s}
redis:
  - name: dc1
    site: dc1
    sentinels: [{address: %q}]
    auth: {username: default, password_file: redis}
    sentinel_auth: {username: sentinel, password_file: sentinel}
rabbitmq:
  - {name: r, site: dc1, urls: [%q], username: monitor, password_file: rabbitmq}
gateways:
  - {name: g, site: dc1, url: %q, username: admin, password_file: gateway}
`, r.iap.Server("iap-dc1-1").URL(), r.iap.Server("iap-dc2-1").URL(), r.mongo.URI(), dead, r.rabbit.URL, r.gateway.URL())
}

// remediationConfig is a receiver of dc2, authenticated by auth.
func remediationConfig(auth string) string {
	return auth + `
site: dc2
journal_file: journal
audit_log_file: audit.log
lease: {redis: dc1}
iap_auth: {username: remediation, password_file: remediation-ia}
clusters: [{name: main, allow_cross_site: true}]
`
}

func post(t *testing.T, url, authorization, body string) (int, string) {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	if authorization != "" {
		req.Header.Set("Authorization", authorization)
	}
	return send(t, http.DefaultClient, req)
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

// TestMalformedAddressesKeepTheirPasswords: a URL or address that the
// configuration refuses (malformed, so not parsed into parts that could be
// redacted) may carry a password. --config.check, a refused /-/reload and
// the log name the field and never quote the password.
func TestMalformedAddressesKeepTheirPasswords(t *testing.T) {
	const pw = "pw-Ux5Hn2"
	bad := map[string]string{
		"bad escape":         "rabbitmq:\n  - {name: r, urls: [\"http://admin:" + pw + "@host:15672/%zz\"]}\n",
		"escape in password": "rabbitmq:\n  - {name: r, urls: [\"http://admin:" + pw + "%zz@host:15672\"]}\n",
		"space":              "gateways:\n  - {name: g, url: \"http://admin:" + pw + "@ho st:8083\"}\n",
		"no scheme":          "iap:\n  servers:\n    - {name: i, url: \"admin:" + pw + "@host:3000\"}\n",
		"sentinel URL":       "redis:\n  - {name: g, sentinels: [{address: \"redis://:" + pw + "@host:26379\"}]}\n",
		"member_sites key":   "mongodb:\n  - {name: rs, uri: \"mongodb://h:27017/?replicaSet=rs\", member_sites: {\"u:" + pw + "@h:27017\": nowhere}}\n",
	}
	dir := t.TempDir()
	file := filepath.Join(dir, "config.yml")
	good := "rabbitmq:\n  - {name: good, urls: [\"http://" + closedAddr(t) + "\"]}\n"
	writeFile(t, file, good)
	exp := startExporter(t, "--config.file", file)
	for name, cfg := range bad {
		check := filepath.Join(dir, "check.yml")
		writeFile(t, check, cfg)
		out, err := exec.Command(binary, "--config.check", "--config.file", check).CombinedOutput()
		if err == nil || !strings.Contains(string(out), "invalid configuration") {
			t.Errorf("--config.check of %s: %v, want it refused:\n%s", name, err, out)
		}
		if strings.Contains(string(out), pw) {
			t.Errorf("--config.check of %s quotes the password:\n%s", name, out)
		}
		writeFile(t, file, cfg)
		code, body := post(t, "http://"+exp.addr+"/-/reload", "", "")
		if code != http.StatusInternalServerError || !strings.Contains(body, "invalid configuration") {
			t.Errorf("reload of %s: HTTP %d, want it refused: %s", name, code, body)
		}
		if strings.Contains(body, pw) {
			t.Errorf("the reload of %s answers with the password: %s", name, body)
		}
	}
	writeFile(t, file, good)
	exp.stop()
	if logs := exp.output.String(); strings.Contains(logs, pw) {
		t.Errorf("the log quotes the password:\n%s", grep(logs, pw))
	}
}
