package collector

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/recorded"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

var rabbitMQMetrics = []string{
	"up", "info", "mirroring_supported",
	"node_running", "node_partitions", "node_alarm", "node_peers",
	"queues", "queues_unsynchronised", "queues_without_quorum", "queues_quorum_critical", "queues_mirror_sync_critical",
	"federation_link_up",
	"queue_mirrors", "queue_mirrors_synchronised", "queue_members", "queue_members_online",
}

// rabbitRecorded serves, over real TCP, management API answers the probe
// package recorded from the lab (or, for 4.0, derived from them).
func rabbitRecorded(t *testing.T, dir string) string {
	t.Helper()
	srv := httptest.NewServer(recorded.RabbitMQ(filepath.Join("..", "internal", "probe", "rabbitmq", "testdata", dir)))
	t.Cleanup(srv.Close)
	return srv.URL
}

func TestRabbitMQCollector(t *testing.T) {
	cfg := configtest.Config(&config.Config{RabbitMQ: []config.RabbitCluster{
		{Name: "dc1", Site: "dc1", URLs: []string{"http://127.0.0.1:1", rabbitRecorded(t, "3.10/two-stopped")}, PerQueueMetrics: true},
		{Name: "dr", Site: "dc2", URLs: []string{rabbitRecorded(t, "3.10/dr-upstream-down")}},
		{Name: "dc3", Site: "dc3", URLs: []string{rabbitRecorded(t, "4.0/healthy")}},
		{Name: "gone", Site: "dc3", URLs: []string{"http://127.0.0.1:1"}},
	}})
	c, err := newRabbitMQCollector(cfg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newScraperWith(cfg, promslog.NewNopLogger(), map[string]Collector{"rabbitmq": c})
	defer s.Close()

	scrape := s.Probe(context.Background())

	if err := scrape.Results["rabbitmq"].Err; err != nil {
		t.Fatalf("a cluster that is down failed the collector: %v", err)
	}
	want, err := os.ReadFile("testdata/rabbitmq.prom")
	if err != nil {
		t.Fatal(err)
	}
	names := []string{"iap_ha_scrape_collector_success"}
	for _, n := range rabbitMQMetrics {
		names = append(names, "iap_ha_rabbitmq_"+n)
	}
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(string(want)), names...); err != nil {
		t.Error(err)
	}
	if problems, err := testutil.CollectAndLint(s.Metrics(scrape)); err != nil || len(problems) > 0 {
		t.Errorf("lint: %v %v", problems, err)
	}
}

func TestRabbitMQCollectorWithoutClusters(t *testing.T) {
	if _, err := newRabbitMQCollector(&config.Config{}, promslog.NewNopLogger()); !errors.Is(err, ErrNoData) {
		t.Errorf("no cluster configured: err %v, want ErrNoData", err)
	}
	if _, err := newRabbitMQCollector(&config.Config{RabbitMQ: []config.RabbitCluster{{Name: "dc1"}}}, promslog.NewNopLogger()); err == nil {
		t.Error("a cluster without management URL was accepted")
	}
}

// TestRabbitMQClusterHungPastTheDeadline: one cluster hangs (accepts and
// never answers) with a timeout longer than the scrape's deadline. The
// scrape still serves iap_ha_rabbitmq_up for every cluster: 1 for the one
// that answered, 0 for the hung one, so that a node-down alert can fire.
func TestRabbitMQClusterHungPastTheDeadline(t *testing.T) {
	mute, err := hostile.StartMute()
	if err != nil {
		t.Fatal(err)
	}
	defer mute.Close()
	cfg := configtest.Config(&config.Config{RabbitMQ: []config.RabbitCluster{
		{Name: "good", Site: "dc1", URLs: []string{rabbitRecorded(t, "3.10/healthy")}, Timeout: model.Duration(time.Minute)},
		{Name: "hung", Site: "dc1", URLs: []string{"http://" + mute.Addr()}, Timeout: model.Duration(time.Minute)},
	}})
	c, err := newRabbitMQCollector(cfg, promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	s := newScraperWith(cfg, promslog.NewNopLogger(), map[string]Collector{"rabbitmq": c})
	defer s.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	scrape := s.Probe(ctx)
	want := `# HELP iap_ha_rabbitmq_up Whether a management API of the cluster answered (1) or none did (0).
# TYPE iap_ha_rabbitmq_up gauge
iap_ha_rabbitmq_up{cluster="good"} 1
iap_ha_rabbitmq_up{cluster="hung"} 0
`
	if err := testutil.CollectAndCompare(s.Metrics(scrape), strings.NewReader(want), "iap_ha_rabbitmq_up"); err != nil {
		t.Error(err)
	}
}
