package remediation

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// reload reads yaml against estate and applies it as the binary's reload
// does once every other part of the reload has prepared.
func (r *receiver) reload(t *testing.T, e *estate, yaml string, estate *config.Config) error {
	t.Helper()
	cfg, err := Parse([]byte(yaml), e.dir, estate)
	if err != nil {
		return err
	}
	apply, _, err := r.Prepare(cfg, estate)
	if err != nil {
		return err
	}
	apply()
	return nil
}

// postWith posts body with the Authorization header auth.
func (r *receiver) postWith(t *testing.T, body []byte, auth string) int {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
	req.Header.Set("Authorization", auth)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// An operator turns dry_run off and reloads: the next alert is acted on.
// The topology page, reading Status meanwhile, sees the change once the
// worker has taken it.
func TestReloadTurnsDryRunOff(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	acting := remediationYAML(t, "dc1", "")
	r := e.startReceiver(t, strings.Replace(acting, "dry_run: false\n", "", 1), cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.post(t, alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring))
	if got, want := outcomes(r.settle(t)), []string{"fp-iap-dc1-1: dry_run"}; !equal(got, want) {
		t.Fatalf("before the reload: outcomes %v, want %v", got, want)
	}
	if !r.Status().DryRun {
		t.Fatal("Status says acting before the reload")
	}

	stop := make(chan struct{})
	var readers sync.WaitGroup
	readers.Go(func() { // the topology page, from its own goroutine
		for {
			select {
			case <-stop:
				return
			default:
				r.Status()
			}
		}
	})
	err := r.reload(t, e, acting, cfg)
	close(stop)
	readers.Wait()
	if err != nil {
		t.Fatal(err)
	}

	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring)) // a new incident
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: dry_run", "fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
		t.Errorf("after the reload: outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 1 || got["iap-dc1-3"] != 1 {
		t.Errorf("activations %v, want one of iap-dc1-3", got)
	}
	if r.Status().DryRun {
		t.Error("Status still says dry run after the worker acted under the reloaded configuration")
	}
}

// What a reload cannot apply is refused whole: the receiver goes on under
// the settings it had, the webhook's included.
func TestReloadRefused(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := remediationYAML(t, "dc1", "")
	r := e.startReceiver(t, yaml, cfg, cfg)
	if err := os.WriteFile(filepath.Join(e.dir, "token"), []byte("a-token-never-in-force\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, yaml, want string }{
		{"journal_file changed", strings.Replace(yaml, "journal_file: journal-dc1", "journal_file: journal-elsewhere", 1),
			"journal_file: changed from " + filepath.Join(e.dir, "journal-dc1") + " to " + filepath.Join(e.dir, "journal-elsewhere") + "; the running receiver holds the journal and its lock: restart to change it"},
		{"audit log unwritable", yaml + "audit_log_file: no-such-dir/audit.json\n", "remediation: audit log: open " + filepath.Join(e.dir, "no-such-dir/audit.json")},
	}
	before := r.latest.Load()
	for _, tt := range tests {
		err := r.reload(t, e, tt.yaml, cfg)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: reload error %v, want one containing %q", tt.name, err, tt.want)
		}
		if r.latest.Load() != before || r.next.Load() != nil {
			t.Errorf("%s: a refused reload changed the settings in force", tt.name)
		}
		if code := r.post(t, alertFor(t, "iap-dc1-2", time.Now(), StatusResolved)); code != http.StatusAccepted {
			t.Errorf("%s: the token in force before the reload got %d", tt.name, code)
		}
	}
	if _, err := os.Stat(filepath.Join(e.dir, "journal-elsewhere")); !os.IsNotExist(err) {
		t.Errorf("a refused reload created the other journal: %v", err)
	}
}

// A rotated token file is required by the very next request after the
// reload, and the old token refused.
func TestReloadRotatesWebhookToken(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := remediationYAML(t, "dc1", "")
	r := e.startReceiver(t, yaml, cfg, cfg)
	const rotated = "rotated-am-token"
	if err := os.WriteFile(filepath.Join(e.dir, "token"), []byte(rotated+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	body := alertFor(t, "iap-dc1-2", time.Now(), StatusResolved)
	if code := r.postWith(t, body, "Bearer "+rotated); code != http.StatusUnauthorized {
		t.Fatalf("the new token before the reload: %d, want 401", code)
	}
	if err := r.reload(t, e, yaml, cfg); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		token string
		want  int
	}{
		{testToken, http.StatusUnauthorized},
		{rotated, http.StatusAccepted},
	} {
		if code := r.postWith(t, body, "Bearer "+tt.token); code != tt.want {
			t.Errorf("token %q after the reload: %d, want %d", tt.token, code, tt.want)
		}
	}
}

// A reload while an action runs changes nothing of that action: it
// finishes under the settings it started with (their post-promotion
// script, their lease client, which releases the lease); the next alert is
// decided under the new ones.
func TestReloadDuringActionFinishesUnderOldSettings(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	started, release := filepath.Join(e.dir, "started"), filepath.Join(e.dir, "release")
	gate := writeScript(t, e.dir, "gate.sh", "touch "+started+"\nwhile [ ! -e "+release+" ]; do sleep 0.05; done\n")
	oldHook := writeScript(t, e.dir, "old-hook.sh", "touch "+filepath.Join(e.dir, "old-hook-ran")+"\n")
	newHook := writeScript(t, e.dir, "new-hook.sh", "touch "+filepath.Join(e.dir, "new-hook-ran")+"\n")
	yaml := remediationYAML(t, "dc1", "scripts: {pre_check: ["+gate+"], post_promotion: {dc1: ["+oldHook+"]}}\n")
	r := e.startReceiver(t, yaml, cfg, cfg)
	e.down(t, "iap-dc1-1")
	r.post(t, alertFor(t, "iap-dc1-1", time.Now(), StatusFiring))
	if err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		_, err := os.Stat(started)
		return err
	}); err != nil {
		t.Fatalf("the action did not reach its pre-check: %v", err)
	}

	// The action waits in its pre-check, under the lease: the cluster is
	// opted out, and the hook replaced.
	reloaded := strings.Replace(strings.Replace(yaml, oldHook, newHook, 1), "clusters: [{name: prod}]", "clusters: []", 1)
	if err := r.reload(t, e, reloaded, cfg); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(release, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	if got, want := outcomes(r.settle(t)), []string{"fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
		t.Fatalf("outcomes %v, want %v", got, want)
	}
	for hook, want := range map[string]bool{"old-hook-ran": true, "new-hook-ran": false} {
		if _, err := os.Stat(filepath.Join(e.dir, hook)); (err == nil) != want {
			t.Errorf("%s: %v, want it to exist: %v", hook, err, want)
		}
	}
	// The old lease client released the lease before it was closed.
	l := r.latest.Load().lease
	ok, holder, _, err := l.acquire(context.Background(), "prod")
	if err != nil || !ok {
		t.Errorf("the lease of cluster prod after the action: free %v, held by %q, %v", ok, holder, err)
	}
	if err := l.release(context.Background(), "prod"); err != nil {
		t.Fatal(err)
	}

	e.down(t, "iap-dc1-2")
	r.post(t, alertFor(t, "iap-dc1-2", time.Now(), StatusFiring))
	if got, want := outcomes(r.settle(t))[1:], []string{"fp-iap-dc1-2: not_opted_in"}; !equal(got, want) {
		t.Errorf("the alert after the action: %v, want %v", got, want)
	}
}
