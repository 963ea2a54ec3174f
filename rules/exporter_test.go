package rules

import (
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestAlertmanagerRoutesWatchTheWatcher checks where examples/alertmanager.yml
// sends the alerts about the exporters and the pipeline: the watchdog to the
// heartbeat only (a dead man's switch must not page people while it works),
// and IAPHAExporterDown to people by its severity.
func TestAlertmanagerRoutesWatchTheWatcher(t *testing.T) {
	if _, err := os.Stat(amtool); err != nil {
		t.Fatalf("amtool: %v (Debian 12: apt-get install prometheus-alertmanager)", err)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"watchdog to the heartbeat only", []string{"alertname=IAPHAWatchdog", "severity=info"}, "heartbeat"},
		{"every exporter down", []string{"alertname=IAPHAExporterDown", "severity=critical"}, "pager"},
		{"one exporter down", []string{"alertname=IAPHAExporterDown", "severity=warning", "job=iap_ha_dc1", "instance=exporter-dc1:9894"}, "chat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := append([]string{"config", "routes", "test", "--config.file=" + alertmanagerConfig, "--verify.receivers=" + tc.want}, tc.labels...)
			out, err := exec.Command(amtool, args...).Output()
			if err != nil {
				t.Errorf("%s routed to %s, want %s: %v", strings.Join(tc.labels, " "), firstLine(out), tc.want, err)
			}
		})
	}
}
