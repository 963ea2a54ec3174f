package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// receiverLab is an estate of two IAP servers (iap-dc1-1 active,
// iap-dc2-1 standby, cluster main) on the IAP simulator, the exporter's
// configuration of it (Redis at an address that refuses: nothing here
// takes the lease), and a directory for the remediation file and journal.
type receiverLab struct {
	dir, config string
	iap         *iapsim.Sim
}

const webhookToken = "webhook-token-e2e"

func startReceiverLab(t *testing.T) *receiverLab {
	t.Helper()
	sim := startIAPSim(t, iapsim.Topology{
		Users: map[string]string{"admin": "iap-pw"},
		Servers: []iapsim.ServerSpec{
			{Name: "iap-dc1-1", Cluster: "main", Role: "active"},
			{Name: "iap-dc2-1", Cluster: "main", Role: "standby"},
		},
	})
	l := &receiverLab{dir: t.TempDir(), iap: sim}
	writeFile(t, filepath.Join(l.dir, "iap-password"), "iap-pw\n")
	writeFile(t, filepath.Join(l.dir, "token"), webhookToken+"\n")
	l.config = filepath.Join(l.dir, "config.yml")
	writeFile(t, l.config, fmt.Sprintf(`
sites: [{name: dc1, role: active}, {name: dc2, role: standby}]
iap:
  auth: {username: admin, password_file: iap-password}
  servers:
    - {name: iap-dc1-1, url: %q, site: dc1, role: active, cluster: main}
    - {name: iap-dc2-1, url: %q, site: dc2, role: standby, cluster: main}
redis:
  - {name: dc1, site: dc1, sentinels: [{address: %q}]}
`, sim.Server("iap-dc1-1").URL(), sim.Server("iap-dc2-1").URL(), closedAddr(t)))
	return l
}

// remediation writes a remediation file with the lines given after the
// common ones (site dc2, the lease in dc1, cluster main opted in, across
// sites) and returns its path.
func (l *receiverLab) remediation(t *testing.T, name string, lines ...string) string {
	t.Helper()
	path := filepath.Join(l.dir, name)
	writeFile(t, path, "site: dc2\nlease: {redis: dc1}\nclusters: [{name: main, allow_cross_site: true}]\n"+strings.Join(lines, "\n")+"\n")
	return path
}

func (l *receiverLab) journal() string { return filepath.Join(l.dir, "journal") }

func firingNotification(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../../remediation/testdata/firing.json")
	if err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSpace(b))
}

// waitFor retries get of url until its body contains want.
func waitFor(t *testing.T, url, want string) string {
	t.Helper()
	var body string
	err := lab.Retry(30*time.Second, 50*time.Millisecond, func() error {
		_, body = get(t, http.DefaultClient, url, "", "")
		if !strings.Contains(body, want) {
			return fmt.Errorf("%s does not contain %q", url, want)
		}
		return nil
	})
	if err != nil {
		t.Fatalf("%v; it reads:\n%s", err, body)
	}
	return body
}

// waitProcessed waits until the journal records a processed notification.
func (l *receiverLab) waitProcessed(t *testing.T) {
	t.Helper()
	err := lab.Retry(30*time.Second, 50*time.Millisecond, func() error {
		b, _ := os.ReadFile(l.journal())
		if !bytes.Contains(b, []byte(`"kind":"processed"`)) {
			return errors.New("no notification processed")
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// Issue 26 item 2: a notification nested 9,999 deep inside an unknown field
// was accepted, and its journal line, one level deeper than encoding/json
// reads, made the receiver, ack and promote fail at the next start. It is
// refused at intake now; one as deep as allowed replays after a restart.
func TestDeepNotificationNeverBreaksTheJournal(t *testing.T) {
	l := startReceiverLab(t)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	args := []string{"--config.file", l.config, "--remediation.config.file", rem}
	exp := startExporter(t, args...)
	url := "http://" + exp.addr + "/remediation/alertmanager"
	nested := func(depth int) string {
		return `{"x":` + strings.Repeat("[", depth) + strings.Repeat("]", depth) + "," + strings.TrimPrefix(firingNotification(t), "{")
	}
	if code, body := post(t, url, "Bearer "+webhookToken, nested(9999)); code != http.StatusBadRequest {
		t.Errorf("a notification 9,999 deep: HTTP %d, want 400: %s", code, body)
	}
	if code, body := post(t, url, "Bearer "+webhookToken, nested(20)); code != http.StatusAccepted {
		t.Errorf("a notification 21 deep: HTTP %d, want 202: %s", code, body)
	}
	l.waitProcessed(t)
	exp.stop()

	exp = startExporter(t, args...)
	waitFor(t, "http://"+exp.addr+"/metrics", "\niap_ha_remediation_blocked 0\n")
	exp.stop()
	out, _ := exec.Command(binary, append([]string{"remediation", "ack"}, args...)...).CombinedOutput()
	if !strings.Contains(string(out), "not blocked: nothing to acknowledge") {
		t.Errorf("remediation ack after the restart:\n%s", out)
	}
}

// Issue 26 item 6: garbage appended to the journal while the receiver runs.
// It answered 202 and decided nothing, showing "not blocked". It blocks
// now, on its metric and page, naming the line, and says so in its log.
func TestGarbageInTheJournalBlocksTheReceiver(t *testing.T) {
	l := startReceiverLab(t)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	exp := startExporter(t, "--config.file", l.config, "--remediation.config.file", rem)
	base := "http://" + exp.addr
	f, err := os.OpenFile(l.journal(), os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString("\x00\xffgarbage\n")
	f.Close()
	if code, body := post(t, base+"/remediation/alertmanager", "Bearer "+webhookToken, firingNotification(t)); code != http.StatusAccepted {
		t.Errorf("HTTP %d: %s", code, body)
	}
	waitFor(t, base+"/metrics", "\niap_ha_remediation_blocked 1\n")
	waitFor(t, base+"/topology", "line 1 ")
	if out := exp.output.String(); !strings.Contains(out, "remediation blocked") || !strings.Contains(out, "line 1 ") {
		t.Errorf("the log does not say the receiver is blocked, at line 1:\n%s", out)
	}
}

// Issue 26 item 7: with only the web configuration's basic_auth_users
// protecting the webhook, a web configuration reloaded without users (the
// toolkit reads it at every request) left the webhook open to anyone.
func TestWebhookClosesWhenTheWebConfigStopsAuthenticating(t *testing.T) {
	l := startReceiverLab(t)
	hash, err := bcrypt.GenerateFromPassword([]byte("am-pw"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	web := filepath.Join(l.dir, "web.yml")
	writeFile(t, web, "basic_auth_users:\n  alertmanager: "+string(hash)+"\n")
	rem := l.remediation(t, "remediation.yml", "journal_file: journal")
	exp := startExporter(t, "--config.file", l.config, "--remediation.config.file", rem, "--web.config.file", web)
	url := "http://" + exp.addr + "/remediation/alertmanager"
	basic := "Basic " + basicAuth("alertmanager", "am-pw")
	if code, body := post(t, url, basic, firingNotification(t)); code != http.StatusAccepted {
		t.Errorf("with the user's password: HTTP %d: %s", code, body)
	}
	if code, _ := post(t, url, "", firingNotification(t)); code != http.StatusUnauthorized {
		t.Errorf("without credentials: HTTP %d, want 401", code)
	}
	writeFile(t, web, "# the users were removed\n")
	if code, body := post(t, url, "", firingNotification(t)); code != http.StatusServiceUnavailable {
		t.Errorf("without credentials, the web configuration naming no users: HTTP %d, want 503: %s", code, body)
	}
}

// Issue 26 item 9: a FIFO as journal_file hung the start before the port
// was bound; /dev/null was accepted (and /dev/null.lock created). Both are
// refused at once, by the start and by --config.check, which now checks
// the remediation file too.
func TestIrregularJournalRefused(t *testing.T) {
	l := startReceiverLab(t)
	fifo := filepath.Join(l.dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	_, lockBefore := os.Stat("/dev/null.lock")
	for _, journal := range []string{fifo, "/dev/null"} {
		rem := l.remediation(t, "remediation.yml", "journal_file: "+journal, "auth: {bearer_token_file: token}")
		for name, args := range map[string][]string{
			"start":          {"--config.file", l.config, "--remediation.config.file", rem, "--web.listen-address", closedAddr(t)},
			"--config.check": {"--config.check", "--config.file", l.config, "--remediation.config.file", rem},
		} {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			out, err := exec.CommandContext(ctx, binary, args...).CombinedOutput()
			hung := ctx.Err()
			cancel()
			var exit *exec.ExitError
			if !errors.As(err, &exit) || exit.ExitCode() != 1 || hung != nil {
				t.Errorf("%s with journal_file %s: want exit status 1 at once, got %v (%v)\n%s", name, journal, err, hung, out)
			}
			if want := journal + " is not a regular file"; !strings.Contains(string(out), want) {
				t.Errorf("%s with journal_file %s does not say %q:\n%s", name, journal, want, out)
			}
		}
	}
	if _, err := os.Stat("/dev/null.lock"); lockBefore != nil && err == nil {
		t.Error("/dev/null.lock was created")
	}
	// A good file: both files checked.
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	out, err := exec.Command(binary, "--config.check", "--config.file", l.config, "--remediation.config.file", rem).CombinedOutput()
	if err != nil || !strings.Contains(string(out), rem+": OK") {
		t.Errorf("--config.check of good files: %v\n%s", err, out)
	}
	// And a remediation file nothing would authenticate is refused, as the start refuses it.
	rem = l.remediation(t, "open.yml", "journal_file: journal")
	out, err = exec.Command(binary, "--config.check", "--config.file", l.config, "--remediation.config.file", rem).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "would accept notifications from anyone") {
		t.Errorf("--config.check of an unauthenticated webhook: %v\n%s", err, out)
	}
}

// Issue 26 item 10: --remediation.insecure-unauthenticated-webhook with the
// remediation file's token warned that the webhook was unauthenticated,
// although it still required the token.
func TestInsecureFlagSaysWhatIsTrue(t *testing.T) {
	l := startReceiverLab(t)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	exp := startExporter(t, "--config.file", l.config, "--remediation.config.file", rem, "--remediation.insecure-unauthenticated-webhook")
	if code, _ := post(t, "http://"+exp.addr+"/remediation/alertmanager", "", firingNotification(t)); code != http.StatusUnauthorized {
		t.Errorf("without the token: HTTP %d, want 401", code)
	}
	exp.stop()
	out := exp.output.String()
	if strings.Contains(out, "UNAUTHENTICATED") || !strings.Contains(out, "has no effect: the webhook requires the remediation file's bearer token") {
		t.Errorf("the log does not say that the token is required:\n%s", out)
	}
}

// Issue 26 item 11: a journal cut mid-line (a crash mid-write) lost the cut
// record without a word.
func TestTornJournalLineIsLogged(t *testing.T) {
	l := startReceiverLab(t)
	whole := `{"time":"2026-11-25T20:51:14Z","kind":"ack","by":"ops"}` + "\n"
	writeFile(t, l.journal(), whole+`{"time":"2026-11-25T20:51:15Z","kind":"dec`)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	exp := startExporter(t, "--config.file", l.config, "--remediation.config.file", rem)
	exp.stop()
	out := exp.output.String()
	for _, want := range []string{"level=WARN", "cut short", "file=" + l.journal(), fmt.Sprintf("offset=%d", len(whole))} {
		if !strings.Contains(out, want) {
			t.Errorf("the log does not say %q:\n%s", want, out)
		}
	}
}

// Issue 26 item 12: a disk full between a notification and its decision
// repeated the decision in the audit log every second and never blocked.
// The binary runs under a file size limit that the notification's journal
// line fits in and the decision's does not (writes past it fail, EFBIG).
func TestFailedJournalWriteBlocksTheReceiver(t *testing.T) {
	l := startReceiverLab(t)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	const limit = 2048 // ulimit -f 4: four blocks of 512 bytes
	// The notification's line is its body and at most 113 bytes (the time,
	// the id, the keys); pad the body to end it within the limit.
	body := firingNotification(t)
	pad := limit - 113 - 5 - len(body) - len(`"pad":"",`)
	if pad < 0 {
		t.Fatalf("the recorded notification is %d bytes, over the %d the test has room for", len(body), limit)
	}
	body = `{"pad":"` + strings.Repeat("x", pad) + `",` + strings.TrimPrefix(body, "{")
	exp := startExporterUnder(t, []string{"sh", "-c", `ulimit -f 4 && exec "$0" "$@"`},
		"--config.file", l.config, "--remediation.config.file", rem)
	base := "http://" + exp.addr
	if code, out := post(t, base+"/remediation/alertmanager", "Bearer "+webhookToken, body); code != http.StatusAccepted {
		t.Fatalf("HTTP %d: %s", code, out)
	}
	waitFor(t, base+"/metrics", "\niap_ha_remediation_blocked 1\n")
	time.Sleep(3 * time.Second) // the worker wakes every second: three chances to repeat itself
	exp.stop()
	out := exp.output.String()
	if n := strings.Count(out, `msg="remediation decision"`); n != 2 { // the two alerts of the notification
		t.Errorf("%d decisions logged, want the notification's two, once:\n%s", n, out)
	}
	if !strings.Contains(out, "remediation blocked") {
		t.Errorf("the log does not say that the receiver is blocked:\n%s", out)
	}
}

// Issue 26 item 14: a notification of 1,000 alerts ran 1,000 estate probes.
// One fresh observation serves the batch, and alerts without the
// remediation label cost none.
func TestThousandAlertsOneObservation(t *testing.T) {
	l := startReceiverLab(t)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	exp := startExporter(t, "--config.file", l.config, "--remediation.config.file", rem)
	base := "http://" + exp.addr
	standby := l.iap.Server("iap-dc2-1") // asked only by a scrape
	before := standby.Requests("/health/status")
	get(t, http.DefaultClient, base+"/metrics", "", "")
	perScrape := standby.Requests("/health/status") - before
	if perScrape == 0 {
		t.Fatal("a scrape does not ask the standby for /health/status: the test counts nothing")
	}
	var hook map[string]any
	if err := json.Unmarshal([]byte(firingNotification(t)), &hook); err != nil {
		t.Fatal(err)
	}
	template := hook["alerts"].([]any)[0].(map[string]any)
	var alerts []any
	for i := range 1000 {
		a := map[string]any{}
		for k, v := range template {
			a[k] = v
		}
		labels := map[string]any{"alertname": "IAPActiveServerDownStandbyAvailable", "server": "iap-dc1-1", "remediate": "promote-standby"}
		if i%2 == 1 {
			labels = map[string]any{"alertname": "IAPAdapterDown", "server": "iap-dc1-1"}
		}
		a["labels"], a["fingerprint"], a["annotations"] = labels, fmt.Sprintf("fp%d", i), map[string]any{}
		alerts = append(alerts, a)
	}
	hook["alerts"] = alerts
	body, err := json.Marshal(hook)
	if err != nil {
		t.Fatal(err)
	}
	before = standby.Requests("/health/status")
	if code, out := post(t, base+"/remediation/alertmanager", "Bearer "+webhookToken, string(body)); code != http.StatusAccepted {
		t.Fatalf("HTTP %d: %s", code, out)
	}
	l.waitProcessed(t)
	if got := standby.Requests("/health/status") - before; got != perScrape {
		t.Errorf("1,000 alerts asked the standby %d times; one observation asks %d", got, perScrape)
	}
}

// Issue 26 item 15: `remediation ack` on a journal path that did not exist
// created an empty journal and said "not blocked"; `promote` without
// --dry-run acted where the remediation file says dry_run: true.
func TestAckAndPromoteFollowTheFiles(t *testing.T) {
	l := startReceiverLab(t)
	// The standby in dc2 has no Sentinel group of its own, so it works with
	// the estate's only one (dc1): a promotion is verified against it and
	// takes its lease there, so here it is a real group.
	g, err := lab.StartSentinelGroup(lab.SentinelOptions{Site: "dc1"})
	if err != nil {
		t.Fatalf("starting the Redis lab: %v", err)
	}
	t.Cleanup(func() { g.Stop() })
	l.useSentinels(t, g)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	args := []string{"--config.file", l.config, "--remediation.config.file", rem}
	out, err := exec.Command(binary, append([]string{"remediation", "ack"}, args...)...).CombinedOutput()
	if err == nil || !strings.Contains(string(out), "no such file") {
		t.Errorf("ack without a journal: %v\n%s", err, out)
	}
	if _, err := os.Stat(l.journal()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ack created the journal: %v", err)
	}

	if err := l.iap.Server("iap-dc1-1").SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	// dry_run is not set in the file: true by default.
	out, err = exec.Command(binary, append([]string{"promote", "--from", "iap-dc1-1"}, args...)...).CombinedOutput()
	if err != nil || !strings.Contains(string(out), "dry_run: ") || !strings.Contains(string(out), "--no-dry-run acts") {
		t.Errorf("promote where the file says dry_run: %v\n%s", err, out)
	}
	if n := l.iap.Server("iap-dc2-1").Requests("/workflow_engine/activate"); n != 0 {
		t.Errorf("the standby's workers were activated %d times", n)
	}
	// --no-dry-run acts: the standby's workers are activated, once.
	out, err = exec.Command(binary, append([]string{"promote", "--from", "iap-dc1-1", "--no-dry-run"}, args...)...).CombinedOutput()
	if n := l.iap.Server("iap-dc2-1").Requests("/workflow_engine/activate"); err != nil || n != 1 {
		t.Errorf("promote --no-dry-run: %v, the standby's workers activated %d times, want once\n%s", err, n, out)
	}
}

// Issue 20 item 3: `remediation pause` holds every receiver of the estate,
// the command-line promote too (a key beside the lease, not a file on one
// host), until `remediation resume`.
func TestPauseAndResumeTheEstate(t *testing.T) {
	l := startReceiverLab(t)
	g, err := lab.StartSentinelGroup(lab.SentinelOptions{Site: "dc1"})
	if err != nil {
		t.Fatalf("starting the Redis lab: %v", err)
	}
	t.Cleanup(func() { g.Stop() })
	l.useSentinels(t, g)
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}")
	args := []string{"--config.file", l.config, "--remediation.config.file", rem}
	run := func(cmd ...string) (string, error) {
		out, err := exec.Command(binary, append(cmd, args...)...).CombinedOutput()
		return string(out), err
	}
	if out, err := run("remediation", "pause", "--by", "ops", "--note", "dc1 maintenance"); err != nil || !strings.Contains(out, "paused") {
		t.Fatalf("pause: %v\n%s", err, out)
	}
	if err := l.iap.Server("iap-dc1-1").SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	activations := func() int { return l.iap.Server("iap-dc2-1").Requests("/workflow_engine/activate") }
	if out, err := run("promote", "--from", "iap-dc1-1", "--no-dry-run"); err == nil || !strings.Contains(out, "paused") || activations() != 0 {
		t.Errorf("promote while the estate is paused: %v, %d activations\n%s", err, activations(), out)
	}
	if out, err := run("remediation", "resume"); err != nil || !strings.Contains(out, "dc1 maintenance") {
		t.Errorf("resume: %v\n%s", err, out)
	}
	if out, err := run("remediation", "resume"); err == nil || !strings.Contains(out, "not paused") {
		t.Errorf("a second resume: %v\n%s", err, out)
	}
	if out, err := run("promote", "--from", "iap-dc1-1", "--no-dry-run"); err != nil || activations() != 1 {
		t.Errorf("promote after resume: %v, %d activations, want 1\n%s", err, activations(), out)
	}
}

// useSentinels points the estate's Sentinel group dc1 at the lab group g.
func (l *receiverLab) useSentinels(t *testing.T, g *lab.SentinelGroup) {
	t.Helper()
	b, err := os.ReadFile(l.config)
	if err != nil {
		t.Fatal(err)
	}
	var addrs []string
	for _, s := range g.Sentinels {
		addrs = append(addrs, fmt.Sprintf("{address: %q}", s.Addr))
	}
	i := bytes.Index(b, []byte("redis:"))
	if i < 0 {
		t.Fatal("the lab's configuration has no redis section")
	}
	cfg := string(b[:i]) + fmt.Sprintf("redis:\n  - {name: dc1, site: dc1, master_name: %q, sentinels: [%s]}\n", g.MasterName, strings.Join(addrs, ", "))
	writeFile(t, l.config, cfg)
}

func basicAuth(user, password string) string {
	return base64.StdEncoding.EncodeToString([]byte(user + ":" + password))
}
