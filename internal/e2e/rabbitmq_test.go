package e2e

import (
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// RabbitMQ's classic queue mirroring (RabbitMQ documentation, "Classic
// Queue Mirroring"): with ha-mode all a queue is mirrored to every node of
// the cluster that runs; a node that stops leaves the policy asking nothing
// of it, and the mirrors on the running nodes stay synchronised. A member
// stopped with rabbitmqctl stop_app (maintenance) is then a node down, not
// queues at risk: the built binary reports no unsynchronised queue,
// IAPRabbitmqUnsynchronisedMirrors stays silent while IAPRabbitmqNodeDown
// fires, and under partition handling ignore (the lab's, RabbitMQ's default)
// one running node keeps the cluster serving, so two running nodes tolerate
// one more failure. The lab's quorum queue is deleted first: a quorum queue
// of three members with two online tolerates none, which would hide whether
// the mirrors were counted (its own rule is tested in the probe's lab tests).
func TestBinaryRabbitmqHaModeAllNeedsMirrorsOnlyOnRunningNodes(t *testing.T) {
	l, err := lab.StartRabbitCluster(lab.RabbitOptions{})
	if err != nil {
		t.Fatalf("the RabbitMQ lab did not start: %v", err)
	}
	t.Cleanup(func() {
		if err := l.Stop(); err != nil {
			t.Error(err)
		}
	})
	first, stopped := l.Cluster[0], l.Cluster[2]
	c, err := l.Client(first.Name)
	if err != nil {
		t.Fatal(err)
	}
	if res, err := c.DeleteQueue("/", lab.RabbitQuorumQueue); err != nil {
		t.Fatal(err)
	} else if res.Body.Close(); res.StatusCode/100 != 2 {
		t.Fatalf("deleting %s: %s", lab.RabbitQuorumQueue, res.Status)
	}
	// Messages for the mirrors to hold: synchronised means holding them.
	for i := range 20 {
		publish(t, first.ManagementURL(), lab.RabbitMirroredAllQueue, fmt.Sprintf("order %d", i))
	}

	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "pw"), lab.RabbitGuest)
	file := filepath.Join(dir, "exporter.yml")
	writeFile(t, file, fmt.Sprintf("rabbitmq:\n  - name: dc1\n    urls: [%s]\n    username: %s\n    password_file: pw\n",
		strings.Join(l.ManagementURLs(), ", "), lab.RabbitGuest))
	e := startExporter(t, "--config.file", file, "--no-collector.iap", "--no-collector.mongodb", "--no-collector.redis")
	prom := startPrometheus(t, e.addr)
	// Before: three running nodes, every mirror synchronised.
	scrapeUntil(t, e, []string{
		`iap_ha_rabbitmq_node_running{cluster="dc1",node="` + stopped.Name + `"} 1`,
		`iap_ha_rabbitmq_queues_unsynchronised{cluster="dc1",vhost="/"} 0`,
		`iap_ha_component_failures_tolerated{component="rabbitmq",name="dc1"} 2`,
	}, nil)

	if err := l.StopApp(stopped.Name); err != nil {
		t.Fatal(err)
	}
	scrapeUntil(t, e, []string{
		`iap_ha_rabbitmq_node_running{cluster="dc1",node="` + stopped.Name + `"} 0`,
		`iap_ha_rabbitmq_queues_unsynchronised{cluster="dc1",vhost="/"} 0`,
		`iap_ha_rabbitmq_queues_mirror_sync_critical{cluster="dc1",vhost="/"} 0`,
		`iap_ha_component_failures_tolerated{component="rabbitmq",name="dc1"} 1`,
	}, nil)

	// The node's alert fires on the same series, 12 s (the lab's 2 m) after
	// the node read stopped; in those seconds no scrape read an
	// unsynchronised queue, and the mirrors' alert was not even pending.
	// (For the second or two that stop_app takes, RabbitMQ still lists the
	// node as running while its mirror has already left the synchronised
	// ones: a reading of 1 that the rule's 10 m `for:` absorbs.)
	prom.waitSample(t, 60*time.Second, firingWhile("IAPRabbitmqNodeDown", `node="`+stopped.Name+`"`,
		`count(iap_ha_rabbitmq_queues_unsynchronised{cluster="dc1"} == 0) == 1`), 1)
	prom.waitSample(t, 5*time.Second, `max_over_time(iap_ha_rabbitmq_queues_unsynchronised{cluster="dc1"}[10s])
		and on () (count_over_time(iap_ha_rabbitmq_queues_unsynchronised{cluster="dc1"}[10s]) >= 5)`, 0)
	prom.neverAlerted(t, 10*time.Second, "IAPRabbitmqUnsynchronisedMirrors", `cluster="dc1"`)
	prom.neverAlerted(t, 5*time.Minute, "IAPRabbitmqUnsynchronisedMirrors", `cluster="dc1",alertstate="firing"`)
}

// publish puts one message on queue through the management API's default
// exchange.
func publish(t *testing.T, managementURL, queue, payload string) {
	t.Helper()
	body := fmt.Sprintf(`{"properties":{"delivery_mode":2},"routing_key":%q,"payload":%q,"payload_encoding":"string"}`, queue, payload)
	req, err := http.NewRequest(http.MethodPost, managementURL+"/api/exchanges/%2F/amq.default/publish", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.SetBasicAuth(lab.RabbitGuest, lab.RabbitGuest)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("publishing to %s: %s", queue, res.Status)
	}
}
