package remediation

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// postAlerts sends alerts to a real Alertmanager as Prometheus does
// (POST /api/v2/alerts), each alert a label set.
func postAlerts(t *testing.T, am *lab.Process, startsAt time.Time, alerts ...map[string]string) {
	t.Helper()
	var body []map[string]any
	for _, labels := range alerts {
		body = append(body, map[string]any{"labels": labels, "startsAt": startsAt, "generatorURL": "http://prometheus/graph"})
	}
	b, _ := json.Marshal(body)
	resp, err := http.Post(am.URL()+"/api/v2/alerts", "application/json", bytes.NewReader(b))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("Alertmanager %s took the alerts with %s", am.Addr, resp.Status)
	}
}

// notified counts the notifications a receiver journaled, and the
// incidents it decided.
func notified(t *testing.T, r *receiver) (notifications int, incidents map[string]bool) {
	incidents = map[string]bool{}
	for _, rec := range records(t, r.journal) {
		switch {
		case rec.Kind == kindNotification:
			notifications++
		case rec.Kind == kindDecision || rec.Kind == kindFinished:
			incidents[rec.Incident] = true
		}
	}
	return notifications, incidents
}

// One failure, two exporters (one per site), two Alertmanagers, two
// receivers. Each exporter's Prometheus sends its alert to both
// Alertmanagers, as an HA pair is set up; the alerts differ by instance, so
// Alertmanager fingerprints them apart, and each Alertmanager delivers two
// incidents, and resends them, to its site's receiver. The receivers claim
// the failure by the failed server, not the fingerprint: exactly one
// standby is activated at the IAP simulator.
func TestTwoExportersTwoAlertmanagersOnePromotion(t *testing.T) {
	e := startEstate(t)
	cfg := e.config(t, nil)
	yaml := remediationYAML(t, "dc1", "")
	receivers := []*receiver{e.startReceiver(t, yaml, cfg, cfg), e.startReceiver(t, otherSite(yaml), cfg, cfg)}
	var ams []*lab.Process
	for i, r := range receivers {
		dir := filepath.Join(e.dir, fmt.Sprintf("am%d", i))
		if err := os.Mkdir(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		am, err := lab.StartAlertmanager(lab.AlertmanagerOptions{
			Dir: dir, WebhookURL: r.url, WebhookCredentialsFile: filepath.Join(e.dir, "token"), RepeatInterval: 2 * time.Second,
		})
		if err != nil {
			t.Fatalf("this test needs a real Alertmanager and it did not start: %v", err)
		}
		t.Cleanup(func() { am.Stop() })
		ams = append(ams, am)
	}

	e.down(t, "iap-dc1-1")
	alert := func(exporter string) map[string]string {
		return map[string]string{
			"alertname": "IAPActiveServerDownStandbyAvailable", "severity": "critical", RemediateLabel: PromoteStandby,
			"job": "iap_ha", "instance": exporter, "server": "iap-dc1-1", "site": "dc1",
		}
	}
	// Each Prometheus evaluates the rule on its own: the two alerts start
	// a little apart.
	start := time.Now().Add(-time.Minute)
	for _, am := range ams {
		postAlerts(t, am, start, alert("exporter-dc1:9894"))
		postAlerts(t, am, start.Add(700*time.Millisecond), alert("exporter-dc2:9894"))
	}

	// Both incidents reach both receivers, and a resend after them.
	err := lab.Retry(60*time.Second, 100*time.Millisecond, func() error {
		for i, r := range receivers {
			n, incidents := notified(t, r)
			if len(incidents) < 2 || n < 3 {
				return fmt.Errorf("receiver %d: %d notifications, %d incidents decided; want both incidents and a resend", i, n, len(incidents))
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range receivers {
		r.settle(t)
	}
	activations := 0
	for _, n := range e.activations() {
		activations += n
	}
	if activations != 1 {
		t.Errorf("%d activations at the IAP simulator (%v), want 1", activations, e.activations())
	}
	promotions := 0
	for _, r := range receivers {
		for _, rec := range records(t, r.journal) {
			if rec.Kind == kindFinished && rec.Result == ResultSuccess {
				promotions++
			}
		}
	}
	if promotions != 1 {
		t.Errorf("%d promotions journaled by the two receivers, want 1", promotions)
	}
}
