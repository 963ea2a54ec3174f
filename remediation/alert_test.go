package remediation

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestDecodeRecordedWebhooks(t *testing.T) {
	tests := []struct {
		file      string
		status    string
		truncated int
		alerts    []string // server/status of each alert
	}{
		{"firing.json", StatusFiring, 0, []string{"iap-dc1-1/firing", "iap-dc1-2/firing"}},
		// The group stays firing while one of its alerts is resolved: act per alert.
		{"mixed.json", StatusFiring, 0, []string{"iap-dc1-1/firing", "iap-dc1-2/resolved"}},
		{"truncated.json", StatusFiring, 2, []string{"iap-dc9-1/firing"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			w, err := decodeWebhook(readTestdata(t, tt.file))
			if err != nil {
				t.Fatal(err)
			}
			var got []string
			for _, a := range w.Alerts {
				got = append(got, a.Labels["server"]+"/"+a.Status)
			}
			if w.Status != tt.status || w.TruncatedAlerts != tt.truncated || strings.Join(got, " ") != strings.Join(tt.alerts, " ") {
				t.Errorf("got status %s, truncated %d, alerts %v", w.Status, w.TruncatedAlerts, got)
			}
		})
	}
}

func TestIncidentSurvivesResolution(t *testing.T) {
	firing, err := decodeWebhook(readTestdata(t, "firing.json"))
	if err != nil {
		t.Fatal(err)
	}
	mixed, err := decodeWebhook(readTestdata(t, "mixed.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The resolved notice of an alert names the incident its firing named.
	if a, b := firing.Alerts[1].Incident(), mixed.Alerts[1].Incident(); a != b {
		t.Errorf("incident %q while firing, %q once resolved", a, b)
	}
	if firing.Alerts[0].Incident() == firing.Alerts[1].Incident() {
		t.Error("two alerts of one group share an incident")
	}
}

func TestDecodeRefuses(t *testing.T) {
	good := string(readTestdata(t, "firing.json"))
	tests := []struct {
		name, body, want string
	}{
		{"malformed JSON", good[:len(good)/2], "unexpected end of JSON input"},
		{"not an object", `[]`, "cannot unmarshal array"},
		{"wrong version", strings.Replace(good, `"version":"4"`, `"version":"3"`, 1), `version "3"`},
		{"no version", strings.Replace(good, `"version":"4",`, ``, 1), `version ""`},
		{"unknown group status", strings.Replace(good, `"status":"firing","alerts"`, `"status":"pending","alerts"`, 1), `status "pending"`},
		{"unknown alert status", strings.Replace(good, `{"status":"firing","labels"`, `{"status":"silenced","labels"`, 1), `alerts[0].status "silenced"`},
		{"no fingerprint", strings.Replace(good, `"fingerprint":"6962e1f2901f7551"`, `"fingerprint":""`, 1), "alerts[0] has no fingerprint"},
		{"no startsAt", strings.Replace(good, `"startsAt":"2026-11-25T20:51:14Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"http://prometheus.example.net:9090/graph?g0.expr=iap_ha_iap_up+%3D%3D+0\u0026g0.tab=1","fingerprint":"6962e1f2901f7551"`, `"fingerprint":"6962e1f2901f7551"`, 1), "alerts[0] has no startsAt"},
		{"two objects", good + good, "after top-level value"},
		{"negative truncation", strings.Replace(good, `"truncatedAlerts":0`, `"truncatedAlerts":-1`, 1), "truncatedAlerts -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if tt.body == good {
				t.Fatal("the test's replacement did not apply")
			}
			_, err := decodeWebhook([]byte(tt.body))
			if !errors.Is(err, errPayload) || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want a payload error containing %q", err, tt.want)
			}
		})
	}
}

func FuzzDecodeWebhook(f *testing.F) {
	for _, name := range []string{"firing.json", "mixed.json", "truncated.json"} {
		f.Add(readTestdata(f, name))
	}
	f.Add([]byte(`{"version":"4","status":"resolved","alerts":[]}`))
	f.Add([]byte("{\n  \"version\": \"4\",\n  \"status\": \"resolved\",\n  \"alerts\": []\n}\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		w, err := decodeWebhook(b)
		if err != nil {
			if !errors.Is(err, errPayload) {
				t.Fatalf("error not marked as a payload error: %v", err)
			}
			return
		}
		// What is accepted is what the receiver keys on.
		if w.Version != "4" || !validStatus(w.Status) || w.TruncatedAlerts < 0 {
			t.Fatalf("accepted %+v", w)
		}
		for _, a := range w.Alerts {
			if a.Fingerprint == "" || a.StartsAt.IsZero() || !validStatus(a.Status) {
				t.Fatalf("accepted alert %+v", a)
			}
		}
		// And it is journaled as received: one line, which reads back as
		// the webhook accepted.
		line, err := appendNotificationLine(nil, time.Now(), "0123abcd", b)
		if err != nil {
			t.Fatalf("accepted but not journaled: %v", err)
		}
		if bytes.IndexByte(line, '\n') != len(line)-1 {
			t.Fatalf("journaled as more than one line: %q", line)
		}
		var rec record
		if err := json.Unmarshal(line, &rec); err != nil || !reflect.DeepEqual(rec.Webhook, w) {
			t.Fatalf("journaled %q, read back %+v, %v", line, rec.Webhook, err)
		}
	})
}
