package e2e

import (
	"bufio"
	"context"
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

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// crashSteps are the steps of a promotion the receiver is killed at, each
// with the hook the crashtest build names it by: the journal records
// (claimed, started) and the audit steps (fence, activate, confirm, the
// post-promotion scripts).
var crashSteps = []struct{ name, hook string }{
	{"claimed", "claimed"},
	{"started", "started"},
	{"fenced", "fence"},
	{"activated", "activate"},
	{"confirmed", "confirm"},
	{"scripts", "post_promotion"},
}

// crashesPerStep is how many times the receiver is killed at each step.
const crashesPerStep = 20

// Issue 20: the real receiver, killed with SIGKILL at each step of a
// promotion, crashesPerStep times a step with a restart after each, never
// promotes twice and never drops an incident silently. Each incident is
// one alert (its own startsAt) for the failed active iap-dc1-1; the
// receiver acts for real against the IAP simulator, with its lease and
// claims in a real Sentinel group. After each kill the lease is expired
// (its holder is dead; the test does not wait out its TTL), the receiver is
// restarted and Alertmanager's resend of the alert arrives. Then:
//   - killed after the claim and before the start, the incident is decided
//     again and the standby promoted, once (the claim is taken over);
//   - killed after the start, the action is settled as interrupted and the
//     receiver blocks (iap_ha_remediation_blocked 1, which pages) until
//     `remediation ack`; the resend does not act again;
//   - the standby's workers are activated at most once an incident, and
//     every incident has exactly one start and one finish in the journal.
func TestReceiverKilledAtEveryStep(t *testing.T) {
	crashBinary := filepath.Join(filepath.Dir(binary), "iap_ha_exporter-crashtest")
	if out, err := exec.Command("go", "build", "-tags", "crashtest", "-o", crashBinary, "../../cmd/iap_ha_exporter").CombinedOutput(); err != nil {
		t.Fatalf("building the crashtest binary: %v\n%s", err, out)
	}
	g, err := lab.StartSentinelGroup(lab.SentinelOptions{Site: "dc1"})
	if err != nil {
		t.Fatalf("starting the Redis lab: %v", err)
	}
	t.Cleanup(func() { g.Stop() })
	l := startReceiverLab(t)
	l.useSentinels(t, g)
	post := filepath.Join(l.dir, "post-promotion.sh")
	if err := os.WriteFile(post, []byte("#!/bin/sh\nexit 0\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "audit_log_file: audit.log",
		"auth: {bearer_token_file: token}", "dry_run: false", "cooldown: 1ms", "allow_single_vantage: true",
		"confirm_timeout: 5s", "scripts: {timeout: 5s, post_promotion: {dc2: ["+post+"]}}")
	args := []string{"--config.file", l.config, "--remediation.config.file", rem, "--no-collector.mongodb", "--no-collector.rabbitmq"}
	active, standby := l.iap.Server("iap-dc1-1"), l.iap.Server("iap-dc2-1")
	if err := active.SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	master, err := g.Master()
	if err != nil {
		t.Fatal(err)
	}
	redis := g.Client(master)
	defer redis.Close()

	start := time.Now()
	base := time.Date(2026, 12, 5, 0, 0, 0, 0, time.UTC)
	n := 0
	for _, step := range crashSteps {
		for i := range crashesPerStep {
			n++
			startsAt := base.Add(time.Duration(n) * time.Minute)
			standby.SetWorkers(false, false)
			activations := standby.Requests("/workflow_engine/activate")

			killed := startReceiver(t, crashBinary, "IAP_HA_CRASH_AT="+step.hook, args...)
			sendAlert(t, killed, startsAt)
			select {
			case <-killed.exited:
			case <-time.After(30 * time.Second):
				t.Fatalf("%s #%d: the receiver never reached the step\n%s", step.name, i, killed.output)
			}
			if ws, ok := killed.cmd.ProcessState.Sys().(syscall.WaitStatus); !ok || ws.Signal() != syscall.SIGKILL {
				t.Fatalf("%s #%d: the receiver ended with %v, not killed at the step\n%s", step.name, i, killed.cmd.ProcessState, killed.output)
			}
			// Its holder is dead: the lease is as good as expired.
			if err := redis.Del(context.Background(), "iap_ha_exporter:remediation:lease:main").Err(); err != nil {
				t.Fatal(err)
			}

			restarted := startReceiver(t, binary, "", args...)
			sendAlert(t, restarted, startsAt) // Alertmanager's resend
			want := "\niap_ha_remediation_blocked 1\n"
			if step.name == "claimed" {
				want = "\niap_ha_remediation_actions_total{action=\"promote\",result=\"success\"} 1\n"
			}
			waitFor(t, "http://"+restarted.addr+"/metrics", want)
			restarted.stop()

			wantActivations := 0
			if step.name == "claimed" || step.hook == "activate" || step.hook == "confirm" || step.hook == "post_promotion" {
				wantActivations = 1
			}
			if got := standby.Requests("/workflow_engine/activate") - activations; got != wantActivations {
				t.Fatalf("%s #%d: the standby's workers were activated %d times, want %d", step.name, i, got, wantActivations)
			}
			if step.name != "claimed" {
				if out, err := exec.Command(binary, append([]string{"remediation", "ack", "--by", "crash-test"}, args...)...).CombinedOutput(); err != nil {
					t.Fatalf("%s #%d: remediation ack: %v\n%s", step.name, i, err, out)
				}
			}
		}
	}
	t.Logf("%d kills and restarts in %s", n, time.Since(start).Round(time.Second))

	// The journal, read whole: one start and one finish an incident, a
	// success where the kill came before the start, interrupted after.
	type incident struct {
		started, finished int
		results           []string
	}
	incidents := map[string]*incident{}
	f, err := os.Open(l.journal())
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		var rec struct{ Kind, Incident, Result string }
		if err := json.Unmarshal(sc.Bytes(), &rec); err != nil {
			t.Fatal(err)
		}
		if rec.Incident == "" {
			continue
		}
		inc := incidents[rec.Incident]
		if inc == nil {
			inc = &incident{}
			incidents[rec.Incident] = inc
		}
		switch rec.Kind {
		case "started":
			inc.started++
		case "finished":
			inc.finished++
			inc.results = append(inc.results, rec.Result)
		}
	}
	if len(incidents) != n {
		t.Errorf("the journal names %d incidents, want %d", len(incidents), n)
	}
	results := map[string]int{}
	for id, inc := range incidents {
		if inc.started != 1 || inc.finished != 1 {
			t.Errorf("incident %s: started %d times, finished %d times (%v), want once each", id, inc.started, inc.finished, inc.results)
			continue
		}
		results[inc.results[0]]++
	}
	if want := map[string]int{"success": crashesPerStep, "interrupted": n - crashesPerStep}; fmt.Sprint(results) != fmt.Sprint(want) {
		t.Errorf("results %v, want %v", results, want)
	}
}

// startReceiver runs bin (the exporter with its receiver) with env added
// to its environment; unlike startExporter it may be killed under the test.
func startReceiver(t *testing.T, bin, env string, args ...string) *exporter {
	t.Helper()
	ports, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	e := &exporter{addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), output: &syncBuffer{}, exited: make(chan struct{})}
	e.cmd = exec.Command(bin, append(args, "--web.listen-address", e.addr)...)
	e.cmd.Stdout, e.cmd.Stderr = e.output, e.output
	if env != "" {
		e.cmd.Env = append(os.Environ(), env)
	}
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(e.stop)
	if err := lab.Retry(30*time.Second, 20*time.Millisecond, func() error {
		select {
		case <-e.exited:
			return errors.New("exited")
		default:
		}
		return lab.WaitTCP(e.addr, 0)
	}); err != nil {
		t.Fatalf("the receiver does not listen: %v\n%s", err, e.output)
	}
	return e
}

// sendAlert posts one firing IAPActiveServerDownStandbyAvailable for
// iap-dc1-1 that started at startsAt, as Alertmanager does.
func sendAlert(t *testing.T, e *exporter, startsAt time.Time) {
	t.Helper()
	body := strings.Replace(firingNotification(t), `"startsAt":"2026-11-25T20:51:14Z"`, `"startsAt":"`+startsAt.Format(time.RFC3339)+`"`, 1)
	// Only the alert for iap-dc1-1: the lab has no iap-dc1-2.
	if i := strings.Index(body, `,{"status":"firing","labels":{"alertname":"IAPActiveServerDownStandbyAvailable","job":"iap_ha","remediate":"promote-standby","server":"iap-dc1-2"`); i >= 0 {
		j := strings.Index(body[i:], `"fingerprint":"2e8b00c2ab2f2744"}`)
		body = body[:i] + body[i+j+len(`"fingerprint":"2e8b00c2ab2f2744"}`):]
	}
	if code, answer := post(t, "http://"+e.addr+"/remediation/alertmanager", "Bearer "+webhookToken, body); code != http.StatusAccepted {
		t.Fatalf("the notification: HTTP %d: %s", code, answer)
	}
}

// systemd and Kubernetes stop a service with SIGTERM. A receiver stopped
// in the middle of a promotion finishes it (its scripts included: a half
// promotion would block the estate) and returns the lease before it exits
// cleanly; before, SIGTERM ended the process at once and the next receiver
// refused every promotion as lease_held for a whole TTL.
func TestSIGTERMDuringAPromotionFinishesItAndReturnsTheLease(t *testing.T) {
	g, err := lab.StartSentinelGroup(lab.SentinelOptions{Site: "dc1"})
	if err != nil {
		t.Fatalf("starting the Redis lab: %v", err)
	}
	t.Cleanup(func() { g.Stop() })
	l := startReceiverLab(t)
	l.useSentinels(t, g)
	began, ended := filepath.Join(l.dir, "began"), filepath.Join(l.dir, "ended")
	post := filepath.Join(l.dir, "post-promotion.sh")
	if err := os.WriteFile(post, []byte("#!/bin/sh\ntouch "+began+"\nsleep 3\ntouch "+ended+"\n"), 0o700); err != nil {
		t.Fatal(err)
	}
	rem := l.remediation(t, "remediation.yml", "journal_file: journal", "auth: {bearer_token_file: token}",
		"dry_run: false", "allow_single_vantage: true", "scripts: {timeout: 2m, post_promotion: {dc2: ["+post+"]}}")
	if err := l.iap.Server("iap-dc1-1").SetFault(iapsim.Fault{Mode: iapsim.FaultDown}); err != nil {
		t.Fatal(err)
	}
	master, err := g.Master()
	if err != nil {
		t.Fatal(err)
	}
	redis := g.Client(master)
	defer redis.Close()

	e := startReceiver(t, binary, "", "--config.file", l.config, "--remediation.config.file", rem, "--no-collector.mongodb", "--no-collector.rabbitmq")
	sendAlert(t, e, time.Date(2026, 12, 5, 1, 0, 0, 0, time.UTC))
	if err := lab.Retry(60*time.Second, 50*time.Millisecond, func() error {
		_, err := os.Stat(began)
		return err
	}); err != nil {
		t.Fatalf("the post-promotion script never ran: %v\n%s", err, e.output)
	}
	const lease = "iap_ha_exporter:remediation:lease:main"
	if n, err := redis.Exists(context.Background(), lease).Result(); err != nil || n != 1 {
		t.Fatalf("the lease is not held while the script runs (exists %d, %v)", n, err)
	}
	if err := e.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-e.exited:
	case <-time.After(60 * time.Second):
		t.Fatalf("the receiver did not stop within 60 s of SIGTERM\n%s", e.output)
	}
	if code := e.cmd.ProcessState.ExitCode(); code != 0 {
		t.Errorf("exit code %d after SIGTERM, want 0\n%s", code, e.output)
	}
	if _, err := os.Stat(ended); err != nil {
		t.Errorf("the post-promotion script was cut short: %v\n%s", err, e.output)
	}
	if n, err := redis.Exists(context.Background(), lease).Result(); err != nil || n != 0 {
		t.Errorf("the lease is still in Redis after the receiver stopped (exists %d, %v)\n%s", n, err, e.output)
	}
}
