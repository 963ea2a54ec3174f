package remediation

import (
	"context"
	"testing"
	"time"
)

// A receiver killed between claiming an incident in Redis and journaling
// the start of its action changed nothing in the estate (no step runs
// before "started" is on disk). Its journal ends with the claim, and the
// notification is not processed. The restarted receiver (another holder)
// must decide the incident again, not read its own claim as "already
// taken" and drop it. Both crash points: right after SET NX of the claim,
// and after the claim was marked started in Redis but before the journal
// said so.
func TestCrashAfterClaimIsReevaluated(t *testing.T) {
	for _, redisValue := range []string{"", claimStartedSuffix} {
		name := "claimed"
		if redisValue != "" {
			name = "marked started in Redis only"
		}
		t.Run(name, func(t *testing.T) {
			e := startEstate(t)
			cfg := e.config(t, nil)
			yaml := remediationYAML(t, "dc1", "")
			body := alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring)
			w, _ := decodeWebhook(body)
			incident := w.Alerts[0].Incident()
			dead := "iap-receiver-dc1/4242/deadbeef"

			j, err := OpenJournal(e.dir+"/journal-dc1", nil)
			if err != nil {
				t.Fatal(err)
			}
			err = j.Append(context.Background(),
				record{Kind: kindNotification, ID: "n1", Webhook: w},
				record{Kind: kindClaimed, Incident: incident, Cluster: "prod", Holder: dead})
			j.Close()
			if err != nil {
				t.Fatal(err)
			}
			// What the killed process left in Redis: its claim.
			master, err := redisGroup(t).Master()
			if err != nil {
				t.Fatal(err)
			}
			c := redisGroup(t).Client(master)
			defer c.Close()
			key := "test:" + testRun(t) + ":episode:iap-dc1-1"
			if err := c.Set(context.Background(), key, dead+redisValue, time.Hour).Err(); err != nil {
				t.Fatal(err)
			}

			e.down(t, "iap-dc1-1")
			r := e.startReceiver(t, yaml, cfg, cfg)
			got := outcomes(r.settle(t))
			if want := []string{"fp-iap-dc1-1: success iap-dc1-1 → iap-dc1-3"}; !equal(got, want) {
				t.Errorf("outcomes %v, want %v", got, want)
			}
			if task, job := e.sim.Server("iap-dc1-3").Workers(); !task || !job {
				t.Errorf("iap-dc1-3 workers: task %v job %v, want both running", task, job)
			}
		})
	}
}

// A claim another receiver marked started is that receiver's action: this
// one does not act on the same failure of the server again, whatever
// incident told it of it (Redis SET NX: the first claim wins).
func TestClaimStartedByAnotherIsNotActedOn(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	body := alertFor(t, "iap-dc1-1", time.Now().Add(-time.Minute), StatusFiring)
	master, err := redisGroup(t).Master()
	if err != nil {
		t.Fatal(err)
	}
	c := redisGroup(t).Client(master)
	defer c.Close()
	key := "test:" + testRun(t) + ":episode:iap-dc1-1"
	if err := c.Set(context.Background(), key, "iap-receiver-dc2/7/cafe"+claimStartedSuffix, time.Hour).Err(); err != nil {
		t.Fatal(err)
	}
	e.down(t, "iap-dc1-1")
	r := e.startReceiver(t, remediationYAML(t, "dc1", ""), cfg, cfg)
	r.post(t, body)
	got := outcomes(r.settle(t))
	if want := []string{"fp-iap-dc1-1: dedup"}; !equal(got, want) {
		t.Errorf("outcomes %v, want %v", got, want)
	}
	if got := e.activations(); len(got) != 0 {
		t.Errorf("activations %v", got)
	}
}
