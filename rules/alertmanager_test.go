package rules

import (
	"bytes"
	"encoding/json"
	"fmt"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// amtool comes with Debian 12's prometheus-alertmanager package.
const amtool = "/usr/bin/amtool"

const alertmanagerConfig = "../examples/alertmanager.yml"

// TestAlertmanagerRoutes checks examples/alertmanager.yml and where it sends
// alerts: people by severity, and the remediation alert to the receivers and
// on to people.
func TestAlertmanagerRoutes(t *testing.T) {
	if _, err := os.Stat(amtool); err != nil {
		t.Fatalf("amtool: %v (Debian 12: apt-get install prometheus-alertmanager)", err)
	}
	if out, err := exec.Command(amtool, "check-config", alertmanagerConfig).CombinedOutput(); err != nil {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
	for _, tc := range []struct {
		name   string
		labels []string
		want   string
	}{
		{"remediation then pager", []string{"alertname=IAPActiveServerDownStandbyAvailable", "severity=critical", "remediate=promote-standby", "server=iap-dc1-1"}, "remediation,pager"},
		{"critical", []string{"alertname=IAPNoActiveServer", "severity=critical"}, "pager"},
		{"warning", []string{"alertname=IAPServerDown", "severity=warning", "server=iap-dc2-1"}, "chat"},
		{"info", []string{"alertname=Anything", "severity=info"}, "tickets"},
		{"no severity", []string{"alertname=Anything"}, "tickets"},
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

func firstLine(b []byte) string {
	line, _, _ := strings.Cut(string(b), "\n")
	return line
}

// TestAlertmanagerInhibition loads the inhibit rules of
// examples/alertmanager.yml into a real Alertmanager, posts a site's worth of
// alerts and reads back which ones it suppresses: a site down silences its
// members and a member down its own lag and its own single-point warning,
// never the remediation alert nor anything elsewhere; with two estates
// through one exporter, nothing of the other estate.
func TestAlertmanagerInhibition(t *testing.T) {
	b, err := os.ReadFile(alertmanagerConfig)
	if err != nil {
		t.Fatal(err)
	}
	var example struct {
		InhibitRules []map[string]any `yaml:"inhibit_rules"`
	}
	if err := yaml.Unmarshal(b, &example); err != nil {
		t.Fatal(err)
	}
	am, err := lab.StartAlertmanager(lab.AlertmanagerOptions{Dir: t.TempDir(), InhibitRules: example.InhibitRules})
	if err != nil {
		t.Fatalf("Alertmanager could not start: %v", err)
	}
	t.Cleanup(func() { am.Stop() })

	alert := func(labels ...string) map[string]string {
		m := map[string]string{"job": "iap_ha", "instance": "exporter:9894"}
		for i := 0; i+1 < len(labels); i += 2 {
			m[labels[i]] = labels[i+1]
		}
		return m
	}
	want := map[string]bool{ // alert → suppressed
		"IAPSiteDown/dc2":                         false,
		"IAPServerDown/iap-dc2-1":                 true,
		"IAPActiveServerDownStandbyAvailable/dc2": false,
		"IAPNoActiveServer/":                      false,
		"IAPServerDown/iap-dc1-1":                 false,
		"IAPDependencyDown/iap-dc1-1":             true,
		"IAPMongoMemberUnhealthy/m1":              false,
		"IAPMongoReplicationLagHigh/m1":           true,
		"IAPMongoReplicationLagHigh/m2":           false,
		// A single point of failure whose own down alert fires is dealt
		// with there (issue 27); one whose alert does not fire pages.
		"IAPSinglePointOfFailure/m1":        true,
		"IAPSinglePointOfFailure/m3":        false,
		"IAPSinglePointOfFailure/iap-dc1-1": true,
		"IAPSinglePointOfFailure/iap-dc1-2": false,
		"IAPRabbitmqNodeDown/rabbit@a":      false,
		"IAPSinglePointOfFailure/rabbit@a":  true,
		"IAPSinglePointOfFailure/rabbit@b":  false,
		"IAPLoadBalancerDown/lb1":           false,
		"IAPSinglePointOfFailure/lb1":       true,
		"IAPSinglePointOfFailure/lb2":       false,
		// Two estates through one exporter (the multi-target job): same
		// job, instance, site and server names, told apart by estate
		// alone. Each estate's source alert silences its own members and
		// never the other estate's, nor those of the exporter above that
		// has no estate label.
		"IAPSiteDown/emea:dc2":                       false,
		"IAPServerDown/emea:iap-dc2-1":               true,
		"IAPServerDown/apac:iap-dc2-1":               false,
		"IAPServerDown/apac:iap-dc1-1":               false,
		"IAPDependencyDown/apac:iap-dc1-1":           true,
		"IAPDependencyDown/emea:iap-dc1-1":           false,
		"IAPMongoMemberUnhealthy/emea:m1":            false,
		"IAPMongoReplicationLagHigh/emea:m1":         true,
		"IAPMongoReplicationLagHigh/apac:m1":         false,
		"IAPSinglePointOfFailure/emea:m1":            true,
		"IAPSinglePointOfFailure/apac:m1":            false,
		"IAPRabbitmqQuorumQueueAtRisk/apac:critical": false,
		"IAPRabbitmqQuorumQueueAtRisk/apac:warning":  true,
		"IAPRabbitmqQuorumQueueAtRisk/emea:warning":  false,
	}
	alerts := []map[string]string{
		alert("alertname", "IAPSiteDown", "severity", "critical", "site", "dc2", "key", "dc2"),
		alert("alertname", "IAPServerDown", "severity", "warning", "server", "iap-dc2-1", "site", "dc2", "key", "iap-dc2-1"),
		alert("alertname", "IAPActiveServerDownStandbyAvailable", "severity", "critical", "remediate", "promote-standby", "server", "iap-dc2-1", "site", "dc2", "key", "dc2"),
		alert("alertname", "IAPNoActiveServer", "severity", "critical", "key", ""),
		alert("alertname", "IAPServerDown", "severity", "warning", "server", "iap-dc1-1", "site", "dc1", "key", "iap-dc1-1"),
		alert("alertname", "IAPDependencyDown", "severity", "warning", "server", "iap-dc1-1", "site", "dc1", "service", "mongo", "key", "iap-dc1-1"),
		alert("alertname", "IAPMongoMemberUnhealthy", "severity", "warning", "set", "rs0", "member", "m1", "site", "dc1", "key", "m1"),
		alert("alertname", "IAPMongoReplicationLagHigh", "severity", "warning", "set", "rs0", "member", "m1", "site", "dc1", "key", "m1"),
		alert("alertname", "IAPMongoReplicationLagHigh", "severity", "warning", "set", "rs0", "member", "m2", "site", "dc3", "key", "m2"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "mongodb", "member", "m1", "site", "dc1", "key", "m1"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "mongodb", "member", "m3", "site", "dc1", "key", "m3"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "iap", "member", "iap-dc1-1", "server", "iap-dc1-1", "site", "dc1", "key", "iap-dc1-1"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "iap", "member", "iap-dc1-2", "server", "iap-dc1-2", "site", "dc1", "key", "iap-dc1-2"),
		alert("alertname", "IAPRabbitmqNodeDown", "severity", "warning", "cluster", "dc1", "node", "rabbit@a", "key", "rabbit@a"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "rabbitmq", "member", "rabbit@a", "node", "rabbit@a", "site", "dc1", "key", "rabbit@a"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "rabbitmq", "member", "rabbit@b", "node", "rabbit@b", "site", "dc1", "key", "rabbit@b"),
		alert("alertname", "IAPLoadBalancerDown", "severity", "warning", "balancer", "lb1", "site", "dc1", "key", "lb1"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "loadbalancer", "member", "lb1", "balancer", "lb1", "site", "dc1", "key", "lb1"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "component", "loadbalancer", "member", "lb2", "balancer", "lb2", "site", "dc2", "key", "lb2"),

		alert("alertname", "IAPSiteDown", "severity", "critical", "estate", "emea", "site", "dc2", "key", "emea:dc2"),
		alert("alertname", "IAPServerDown", "severity", "warning", "estate", "emea", "server", "iap-dc2-1", "site", "dc2", "key", "emea:iap-dc2-1"),
		alert("alertname", "IAPServerDown", "severity", "warning", "estate", "apac", "server", "iap-dc2-1", "site", "dc2", "key", "apac:iap-dc2-1"),
		alert("alertname", "IAPServerDown", "severity", "warning", "estate", "apac", "server", "iap-dc1-1", "site", "dc1", "key", "apac:iap-dc1-1"),
		alert("alertname", "IAPDependencyDown", "severity", "warning", "estate", "apac", "server", "iap-dc1-1", "site", "dc1", "service", "mongo", "key", "apac:iap-dc1-1"),
		alert("alertname", "IAPDependencyDown", "severity", "warning", "estate", "emea", "server", "iap-dc1-1", "site", "dc1", "service", "mongo", "key", "emea:iap-dc1-1"),
		alert("alertname", "IAPMongoMemberUnhealthy", "severity", "warning", "estate", "emea", "set", "rs0", "member", "m1", "site", "dc1", "key", "emea:m1"),
		alert("alertname", "IAPMongoReplicationLagHigh", "severity", "warning", "estate", "emea", "set", "rs0", "member", "m1", "site", "dc1", "key", "emea:m1"),
		alert("alertname", "IAPMongoReplicationLagHigh", "severity", "warning", "estate", "apac", "set", "rs0", "member", "m1", "site", "dc1", "key", "apac:m1"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "estate", "emea", "component", "mongodb", "member", "m1", "site", "dc1", "key", "emea:m1"),
		alert("alertname", "IAPSinglePointOfFailure", "severity", "warning", "estate", "apac", "component", "mongodb", "member", "m1", "site", "dc1", "key", "apac:m1"),
		// A critical alert silences the warning of the same name and
		// object (queues without quorum over queues one loss from it), in
		// its own estate only.
		alert("alertname", "IAPRabbitmqQuorumQueueAtRisk", "severity", "critical", "estate", "apac", "cluster", "rabbit", "vhost", "/", "key", "apac:critical"),
		alert("alertname", "IAPRabbitmqQuorumQueueAtRisk", "severity", "warning", "estate", "apac", "cluster", "rabbit", "vhost", "/", "key", "apac:warning"),
		alert("alertname", "IAPRabbitmqQuorumQueueAtRisk", "severity", "warning", "estate", "emea", "cluster", "rabbit", "vhost", "/", "key", "emea:warning"),
	}
	var posted []map[string]any
	for _, a := range alerts {
		posted = append(posted, map[string]any{"labels": a})
	}
	body, _ := json.Marshal(posted)
	res, err := http.Post(am.URL()+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("posting alerts: %s", res.Status)
	}

	// Alertmanager decides inhibition as the alerts arrive; wait until it
	// has taken them all in.
	var got map[string]bool
	err = lab.Retry(10*time.Second, 100*time.Millisecond, func() error {
		res, err := http.Get(am.URL() + "/api/v2/alerts")
		if err != nil {
			return err
		}
		defer res.Body.Close()
		var listed []struct {
			Labels map[string]string
			Status struct {
				State       string
				InhibitedBy []string
			}
		}
		if err := json.NewDecoder(res.Body).Decode(&listed); err != nil {
			return err
		}
		got = map[string]bool{}
		for _, a := range listed {
			got[a.Labels["alertname"]+"/"+a.Labels["key"]] = len(a.Status.InhibitedBy) > 0
		}
		if !maps.Equal(got, want) {
			return fmt.Errorf("suppressed: %v", got)
		}
		return nil
	})
	if err != nil {
		t.Errorf("Alertmanager with the example's inhibit rules: %v\nwant %v", err, want)
	}
}

// TestAlertmanagerNotifiesOneEstateAtATime runs a real Alertmanager with
// examples/alertmanager.yml, its receivers pointed at a local webhook, and
// posts the remediation alert for the same server name and job in two
// estates (the multi-target job gives every estate the same job and
// instance). Each notification the remediation receiver gets must carry one
// estate: the receiver routes a notification by its alerts' estate and
// refuses one that mixes them.
func TestAlertmanagerNotifiesOneEstateAtATime(t *testing.T) {
	b, err := os.ReadFile(alertmanagerConfig)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil {
		t.Fatal(err)
	}

	type notification struct {
		receiver string
		estates  map[string]bool
	}
	got := make(chan notification, 100)
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Alerts []struct{ Labels map[string]string }
		}
		if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
			t.Errorf("webhook %s: %v", r.URL.Path, err)
		}
		n := notification{receiver: strings.TrimPrefix(r.URL.Path, "/"), estates: map[string]bool{}}
		for _, a := range body.Alerts {
			n.estates[a.Labels["estate"]] = true
		}
		got <- n
	}))
	t.Cleanup(hook.Close)

	// Every receiver's webhooks go to the local one, at /<receiver>.
	dir := t.TempDir()
	token := filepath.Join(dir, "token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, r := range cfg["receivers"].([]any) {
		receiver := r.(map[string]any)
		for _, w := range receiver["webhook_configs"].([]any) {
			webhook := w.(map[string]any)
			webhook["url"] = hook.URL + "/" + receiver["name"].(string)
			if hc, ok := webhook["http_config"].(map[string]any); ok {
				hc["authorization"].(map[string]any)["credentials_file"] = token
			}
		}
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(file, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := lab.EnsurePackages(map[string]string{"prometheus-alertmanager": "prometheus-alertmanager"}); err != nil {
		t.Fatal(err)
	}
	ports, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	am, err := lab.StartProcess("alertmanager", addr, filepath.Join(dir, "alertmanager.log"), exec.Command("prometheus-alertmanager",
		"--config.file="+file,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+addr,
		"--cluster.listen-address=",
	))
	if err != nil {
		t.Fatalf("Alertmanager could not start with the example's configuration: %v", err)
	}
	t.Cleanup(func() { am.Stop() })

	var posted []map[string]any
	for _, estate := range []string{"emea", "apac"} {
		posted = append(posted, map[string]any{"labels": map[string]string{
			"alertname": "IAPActiveServerDownStandbyAvailable", "severity": "critical", "remediate": "promote-standby",
			"job": "iap-ha-estates", "instance": "exporter:9894", "estate": estate, "server": "iap-1", "site": "dc1",
		}})
	}
	body, _ := json.Marshal(posted)
	err = lab.Retry(30*time.Second, 200*time.Millisecond, func() error {
		res, err := http.Post(am.URL()+"/api/v2/alerts", "application/json", bytes.NewReader(body))
		if err != nil {
			return err
		}
		res.Body.Close()
		if res.StatusCode != http.StatusOK {
			return fmt.Errorf("posting alerts: %s", res.Status)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// The remediation route waits 0 s: both estates' notifications, to each
	// of its two webhooks, come at once.
	seen := map[string]int{}
	deadline := time.After(60 * time.Second)
	for seen["emea"] < 2 || seen["apac"] < 2 {
		select {
		case n := <-got:
			if n.receiver != "remediation" {
				continue
			}
			if len(n.estates) != 1 {
				t.Fatalf("one notification to the remediation receiver carries estates %v, want one", n.estates)
			}
			for e := range n.estates {
				seen[e]++
			}
		case <-deadline:
			t.Fatalf("notifications to the remediation receiver per estate: %v, want 2 each (dc1's and dc2's webhook)", seen)
		}
	}
}
