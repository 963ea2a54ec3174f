package rabbitmq

import (
	"context"
	"net/http"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/internal/config"
)

// The account the README asks for: the monitoring tag, and on each vhost
// permissions that match nothing. The management API lists a vhost's queues
// and policies only to a user with some permission there, so without them
// it answers 200 with empty lists and the probe would see no queue at risk;
// with them the account reads what the administrator reads and still cannot
// create a policy or a queue.
func TestLabMonitoringTagWithEmptyPermissionsSeesWhatTheAdministratorSees(t *testing.T) {
	l := rabbitLab(t)
	node := l.Cluster[0].Name
	const user, password = "iap_ha_monitor", "monitor-pw"
	for _, args := range [][]string{{"add_user", user, password}, {"set_user_tags", user, "monitoring"}} {
		if _, err := l.Ctl(node, args...); err != nil {
			t.Fatal(err)
		}
	}
	t.Cleanup(func() { _, _ = l.Ctl(node, "delete_user", user) })
	monitor, err := NewClient(configtest.RabbitMQ(config.RabbitCluster{
		Name: "dc1", Site: "dc1", URLs: l.ManagementURLs(),
		Credentials: config.Credentials{Username: user, Password: password},
		Timeout:     model.Duration(20 * time.Second),
	}), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { monitor.Close() })

	admin := eventually(t, labClient(t, "dc1", l.ManagementURLs()...), "healthy cluster", healthy)
	if s := monitor.Probe(context.Background()); !s.Up || len(s.Queues) != 0 {
		t.Errorf("without vhost permissions: up %v (%s), queue groups %+v; want up and none listed", s.Up, s.Error, s.Queues)
	}

	if _, err := l.Ctl(node, "set_permissions", "-p", "/", user, "^$", "^$", "^$"); err != nil {
		t.Fatal(err)
	}
	seen := eventually(t, monitor, "the monitoring account's view", healthy)
	if !reflect.DeepEqual(seen.Queues, admin.Queues) || len(seen.Nodes) != len(admin.Nodes) || seen.Version != admin.Version {
		t.Errorf("the monitoring account sees\n%+v\nthe administrator\n%+v", seen, admin)
	}

	for _, write := range []struct{ path, body string }{
		{"/api/policies/%2F/iap_ha_test", `{"pattern":"^x","definition":{"ha-mode":"all"}}`},
		{"/api/queues/%2F/iap_ha_test", `{"durable":true}`},
	} {
		req, _ := http.NewRequest(http.MethodPut, l.Cluster[0].ManagementURL()+write.path, strings.NewReader(write.body))
		req.SetBasicAuth(user, password)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized {
			t.Errorf("PUT %s as the monitoring account answered %d, want 401", write.path, resp.StatusCode)
		}
	}
}
