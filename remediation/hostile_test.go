package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// logBuffer collects a logger's output.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *logBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *logBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func (b *logBuffer) logger() *slog.Logger { return slog.New(slog.NewTextHandler(b, nil)) }

// newReceiver builds a receiver of yaml with opts changed by edit, behind a
// real HTTP server, without starting its worker.
func (e *estate) newReceiver(t *testing.T, yaml string, cfg *config.Config, edit func(*Options)) *receiver {
	t.Helper()
	rc, err := Parse([]byte(yaml), e.dir, cfg)
	if err != nil {
		t.Fatalf("%v\n%s", err, yaml)
	}
	opts := Options{Config: rc, ExporterConfig: cfg, Scrape: scraper(t, cfg)}
	if edit != nil {
		edit(&opts)
	}
	rcv, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(rcv)
	t.Cleanup(func() {
		srv.Close()
		rcv.Close()
	})
	return &receiver{Receiver: rcv, url: srv.URL, journal: rc.JournalFile}
}

// waitBlocked waits until the receiver shows itself blocked, on its metric
// and its status, with a reason containing want.
func waitBlocked(t *testing.T, r *receiver, want string) {
	t.Helper()
	err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		st := r.Status()
		if !st.Blocked || testutil.ToFloat64(r.metrics.blocked) != 1 || !strings.Contains(st.BlockedReason, want) {
			return fmt.Errorf("status %+v, blocked metric %v", st, testutil.ToFloat64(r.metrics.blocked))
		}
		return nil
	})
	if err != nil {
		t.Fatalf("the receiver does not show itself blocked for %q: %v", want, err)
	}
}

func decisionsOf(recs []record) int {
	n := 0
	for _, r := range recs {
		if r.Kind == kindDecision {
			n++
		}
	}
	return n
}

// Garbage appended to the journal by something else, while the receiver
// serves: the receiver never reads past a line it cannot read (it could
// hide a started action), so it decides nothing more, and says so where a
// person looks: the blocked metric, the status page (with the line), the log.
func TestGarbageInTheJournalBlocksLoudly(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	var logs logBuffer
	r := e.newReceiver(t, remediationYAML(t, "dc1", ""), cfg, func(o *Options) { o.Logger = logs.logger() })
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	lines := len(r.settle(t))
	f, err := os.OpenFile(r.journal, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteString("garbage\n"); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if code := r.post(t, alertFor(t, "iap-dc1-2", time.Now(), StatusFiring)); code != http.StatusAccepted {
		t.Errorf("a notification after the garbage: %d; it is recorded, to be decided once the journal is repaired", code)
	}
	line := fmt.Sprintf("line %d ", lines+1)
	waitBlocked(t, r, line)
	b, err := os.ReadFile(r.journal)
	if err != nil {
		t.Fatal(err)
	}
	after := bytes.SplitN(b, []byte("\n"), lines+2)[lines+1]
	if n := bytes.Count(after, []byte(`"kind":"decision"`)); n != 0 || !bytes.Contains(after, []byte(`"kind":"notification"`)) {
		t.Errorf("after the garbage: %d decisions, want the notification only:\n%s", n, after)
	}
	if n := strings.Count(logs.String(), "remediation blocked"); n != 1 || !strings.Contains(logs.String(), line) {
		t.Errorf("the log says %d times that the receiver is blocked, want once, naming %q:\n%s", n, line, logs.String())
	}
}

// A receiver that starts on a journal with a line it cannot read starts
// blocked (the exporter goes on serving); promote and ack refuse, naming
// the line; nothing rewrites the journal.
func TestStartOnAnUnreadableJournal(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	path := filepath.Join(e.dir, "journal-dc1")
	content := `{"time":"2026-11-25T20:51:14Z","kind":"ack","by":"ops"}` + "\n{not a record\n"
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	r := e.newReceiver(t, remediationYAML(t, "dc1", ""), cfg, nil)
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, r, "line 2 ")
	if _, _, err := r.Promote(context.Background(), "iap-dc1-1", "", true); err == nil || !strings.Contains(err.Error(), "line 2 ") {
		t.Errorf("promote on an unreadable journal: %v", err)
	}
	if _, _, err := ack(context.Background(), path, "ops", "", nil); err == nil || !strings.Contains(err.Error(), "line 2 ") {
		t.Errorf("ack on an unreadable journal: %v", err)
	}
	if b, err := os.ReadFile(path); err != nil || string(b) != content {
		t.Errorf("the journal was changed: %q, %v", b, err)
	}
}

// A record the worker cannot write (a full disk) between a notification and
// its decision: deciding again every second would repeat the decision (and
// its probes) in the audit log without end. The receiver blocks at the
// first failed write, having logged the decision once.
func TestFailedJournalWriteBlocksOnce(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	var logs logBuffer
	r := e.newReceiver(t, remediationYAML(t, "dc1", ""), cfg, func(o *Options) { o.Logger = logs.logger() })
	if code := r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)); code != http.StatusAccepted {
		t.Fatal(code)
	}
	// The worker's next write fails: its file is now read-only. The
	// journal reopens the file after a failure, as it would a disk freed.
	ro, err := os.Open(r.journal)
	if err != nil {
		t.Fatal(err)
	}
	r.Receiver.journal.w.Close()
	r.Receiver.journal.w = ro
	if err := r.Start(); err != nil {
		t.Fatal(err)
	}
	waitBlocked(t, r, "bad file descriptor")
	// The worker wakes every second: give it three.
	time.Sleep(3 * time.Second)
	if n := strings.Count(logs.String(), `msg="remediation decision"`); n != 1 {
		t.Errorf("the decision is in the audit log %d times, want once:\n%s", n, logs.String())
	}
	if n := decisionsOf(records(t, r.journal)); n != 0 {
		t.Errorf("%d decisions journaled", n)
	}
}

// With nothing of its own authenticating the webhook, the receiver relies on
// the web configuration, which the toolkit reads at every request: one
// reloaded without users must not leave the webhook open.
func TestWebConfigLosingItsUsersClosesTheWebhook(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	web := filepath.Join(e.dir, "web.yml")
	writeTestFile(t, web, "basic_auth_users:\n  alertmanager: $2y$10$mDwo.lAisC94iLAyP81MCesa29IzH37oigHC/42V2pdJlUprsJPze\n")
	yaml := strings.Replace(remediationYAML(t, "dc1", ""), "auth: {bearer_token_file: token}\n", "", 1)
	rc, err := Parse([]byte(yaml), e.dir, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := CheckAuthentication(rc, web, false); err != nil {
		t.Fatalf("the web configuration with users: %v", err)
	}
	r := e.newReceiver(t, yaml, cfg, func(o *Options) { o.WebConfigFile = web })
	body := alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)
	// (The toolkit checks the user's password before the receiver sees it.)
	if code := r.postWith(t, body, ""); code != http.StatusAccepted {
		t.Errorf("behind a web configuration with users: %d", code)
	}
	writeTestFile(t, web, "# users removed\n")
	if code := r.postWith(t, body, ""); code != http.StatusServiceUnavailable {
		t.Errorf("behind a web configuration without users: %d, want 503", code)
	}
	os.Remove(web)
	if code := r.postWith(t, body, ""); code != http.StatusServiceUnavailable {
		t.Errorf("behind a web configuration gone: %d, want 503", code)
	}
}

func writeTestFile(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// One notification of 2,000 alerts, half of them the remediation alert
// (each its own incident), half others: one fresh observation of the
// estate serves the whole batch, and the other alerts cost none.
func TestOneObservationPerBatch(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	witness := e.sim.Server("iap-dc2-1") // probed by a scrape only
	before := witness.Requests("/health/status")
	if _, err := scraper(t, cfg)(context.Background()); err != nil {
		t.Fatal(err)
	}
	perScrape := witness.Requests("/health/status") - before
	if perScrape == 0 {
		t.Fatal("a scrape does not ask the witness for /health/status: the test counts nothing")
	}

	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	w, err := decodeWebhook(alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	if err != nil {
		t.Fatal(err)
	}
	template := w.Alerts[0]
	w.Alerts = nil
	for i := range 2000 {
		a := template
		a.Labels = map[string]string{"alertname": template.Labels["alertname"], "server": "iap-dc1-1", RemediateLabel: PromoteStandby}
		if i%2 == 1 {
			a.Labels = map[string]string{"alertname": "SomethingElse", "server": "iap-dc1-1"}
		}
		a.Fingerprint = fmt.Sprintf("fp-%d", i)
		a.Annotations, a.GeneratorURL = nil, "" // under max_body_bytes
		w.Alerts = append(w.Alerts, a)
	}
	body, err := json.Marshal(w)
	if err != nil {
		t.Fatal(err)
	}
	before = witness.Requests("/health/status")
	if code := r.post(t, body); code != http.StatusAccepted {
		t.Fatal(code)
	}
	recs := r.settle(t)
	if n := decisionsOf(recs); n != 2000 {
		t.Errorf("%d decisions, want 2000", n)
	}
	if got := witness.Requests("/health/status") - before; got != perScrape {
		t.Errorf("the witness was asked %d times, want %d: one observation for the batch", got, perScrape)
	}
	if got := e.sim.Server("iap-dc1-1").Requests("/health/status"); got > 2*perScrape+1 {
		t.Errorf("iap-dc1-1 was asked %d times: its direct check is not shared by the batch", got)
	}
}

// `remediation ack` with a path where there is no journal (a typo, another
// host's path) must not create an empty journal and report "not blocked".
func TestAckRefusesAMissingJournal(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	if _, _, err := ack(context.Background(), path, "ops", "", nil); err == nil || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ack without a journal: %v", err)
	}
	if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("ack created %s: %v", path, err)
	}
}

// A journal that is not a regular file is refused at once: a FIFO would
// hang the start before the port is bound, a device swallow every record.
func TestJournalRefusesIrregularFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{fifo, "/dev/null", t.TempDir()} {
		done := make(chan error, 1)
		go func() {
			j, err := OpenJournal(path, nil)
			if err == nil {
				j.Close()
			}
			done <- err
		}()
		select {
		case err := <-done:
			if err == nil || !strings.Contains(err.Error(), "not a regular file") {
				t.Errorf("%s: %v", path, err)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("opening %s as the journal hangs", path)
		}
	}
}
