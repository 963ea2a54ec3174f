package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"
)

// Every file in testdata/bad starts with "# want:" lines, each a piece of
// text the error must contain: the field path, the line and the reason.
func TestBadConfigsNameTheField(t *testing.T) {
	files, err := filepath.Glob("testdata/bad/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no bad configs found: %v", err)
	}
	for _, f := range files {
		t.Run(filepath.Base(f), func(t *testing.T) {
			data, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			var wants []string
			for _, line := range strings.Split(string(data), "\n") {
				if w, ok := strings.CutPrefix(line, "# want: "); ok {
					wants = append(wants, w)
				}
			}
			if len(wants) == 0 {
				t.Fatal("no # want: line")
			}
			_, err = Load(f)
			if err == nil {
				t.Fatal("loaded without error")
			}
			for _, w := range wants {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error does not contain %q:\n%v", w, err)
				}
			}
		})
	}
}

func TestExamplesLoad(t *testing.T) {
	// The exporter's configurations; the other examples are other programs'.
	files, _ := filepath.Glob("../../examples/ha*.yml")
	var checked int
	for _, f := range files {
		checked++
		if _, err := Load(f); err != nil {
			t.Errorf("%s: %v", f, err)
		}
	}
	if checked < 3 {
		t.Fatalf("checked %d example configs, want at least HA-0, HA-3 and HA-6", checked)
	}
}

func TestDefaultsAndDependencies(t *testing.T) {
	cfg, err := Parse([]byte(`
architecture: HA-6
sites: [{name: dc1}, {name: dc2, role: standby}, {name: dc3, role: witness}]
iap:
  servers:
    - {name: a, url: "http://127.0.0.1:3000", site: dc1}
    - {name: b, url: "http://127.0.0.1:3001", site: dc2, role: standby, redis: shared}
redis:
  - {name: dc1, site: dc1, sentinels: [{address: "127.0.0.1:26379"}]}
  - {name: shared, site: dc2, sentinels: [{address: "127.0.0.1:26380", site: dc3}]}
rabbitmq:
  - {name: r1, site: dc1, urls: ["http://127.0.0.1:15672"]}
gateways:
  - {url: "http://127.0.0.1:8083", site: dc1}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	a, b := cfg.IAP.Servers[0], cfg.IAP.Servers[1]
	for _, c := range []struct{ name, got, want string }{
		{"a.role", a.Role, RoleActive},
		{"a.redis (its site's group)", a.Redis, "dc1"},
		{"a.rabbitmq (its site's cluster)", a.RabbitMQ, "r1"},
		{"a.cluster (token domain = its Redis)", a.Cluster, "dc1"},
		{"b.redis (named)", b.Redis, "shared"},
		{"b.rabbitmq (none in its site; RabbitMQ may be unused)", b.RabbitMQ, ""},
		{"rabbitmq[0].partition_handling (RabbitMQ's default)", cfg.RabbitMQ[0].PartitionHandling, "ignore"},
		{"sites[0].role", cfg.Sites[0].Role, SiteActive},
		{"redis[0].master_name", cfg.Redis[0].MasterName, DefaultSentinelMaster},
		{"redis[1].sentinels[0].site", cfg.Redis[1].Sentinels[0].Site, "dc3"},
		{"rabbitmq[0].username", cfg.RabbitMQ[0].Username, DefaultRabbitMQUser},
		{"gateways[0].name (from the URL)", cfg.Gateways[0].Name, "127.0.0.1:8083"},
	} {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if got := time.Duration(a.Timeout); got != DefaultIAPTimeout {
		t.Errorf("server timeout = %s, want the iap default %s", got, DefaultIAPTimeout)
	}
	if cfg.Gateways[0].Capacity != DefaultGatewayCapacity {
		t.Errorf("gateway capacity = %d, want %d", cfg.Gateways[0].Capacity, DefaultGatewayCapacity)
	}
}

func TestSecretsAreReadButNeverDumped(t *testing.T) {
	t.Setenv("IAP_HA_TEST_SECRET", "s3cr3t-from-env-Kp2")
	cfg, err := Parse([]byte(`
iap:
  auth: {username: u, password_file: password}
  servers: [{url: "http://127.0.0.1:3000"}]
rabbitmq:
  - {name: r, urls: ["http://127.0.0.1:15672"], username: u, password_env: IAP_HA_TEST_SECRET}
`), "testdata")
	if err != nil {
		t.Fatal(err)
	}
	if got := string(cfg.IAP.Auth.Password); got != "s3cr3t-from-file-Zq9" {
		t.Errorf("password from file = %q", got)
	}
	if got := string(cfg.RabbitMQ[0].Password); got != "s3cr3t-from-env-Kp2" {
		t.Errorf("password from env = %q", got)
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"s3cr3t-from-file-Zq9", "s3cr3t-from-env-Kp2"} {
		if strings.Contains(string(out), s) {
			t.Errorf("a dump of the configuration shows the secret %q", s)
		}
	}
}

func TestDefaultIsHA0OnLocalhost(t *testing.T) {
	cfg := Default()
	if cfg.Architecture != ArchHA0 || len(cfg.IAP.Servers) != 1 || cfg.IAP.Servers[0].URL != "http://localhost:3000" ||
		cfg.Redis[0].Sentinels[0].Address != "localhost:26379" || cfg.RabbitMQ[0].URLs[0] != "http://localhost:15672" ||
		!strings.Contains(cfg.MongoDB[0].URI, "localhost:27017") {
		t.Fatalf("default is not the HA-0 localhost layout: %+v", cfg)
	}
}

// Issue 19, item 6: a server whose site has no Sentinel group of its own
// depends on the estate's only group; with several, the configuration must
// say which, or its site losses would be judged without Redis.
func TestRedisGroupOfAServerWithoutOne(t *testing.T) {
	const head = `
sites: [{name: dc1}, {name: dc2, role: standby}, {name: dc3, role: witness}]
iap:
  servers:
    - {name: a, url: "http://127.0.0.1:3000", site: dc1}
    - {name: b, url: "http://127.0.0.1:3001", site: dc2, role: standby}
redis:
  - {name: shared, site: dc1, sentinels: [{address: "127.0.0.1:26379"}, {address: "127.0.0.1:26380", site: dc2}, {address: "127.0.0.1:26381", site: dc3}]}
`
	cfg, err := Parse([]byte(head), "")
	if err != nil {
		t.Fatal(err)
	}
	if got := cfg.IAP.Servers[1].Redis; got != "shared" {
		t.Errorf("b.redis = %q, want the estate's only group %q", got, "shared")
	}
	_, err = Parse([]byte(head+`  - {name: other, site: dc3, sentinels: [{address: "127.0.0.1:26390"}]}
`), "")
	if err == nil || !strings.Contains(err.Error(), `iap.servers[1].redis: is required: site "dc2" has no Sentinel group and the estate has 2 (other, shared)`) {
		t.Errorf("two groups, none in dc2: err = %v, want iap.servers[1].redis refused as ambiguous", err)
	}
}

// Issue 19, item 2: a MongoDB member the configuration does not place is a
// warning at load, as --config.check prints it.
func TestUnplacedMongoMemberWarns(t *testing.T) {
	cfg, err := Parse([]byte(`
sites: [{name: dc1}, {name: dc2, role: standby}, {name: dc3, role: witness}]
mongodb:
  - name: rs0
    uri: "mongodb://m1:27017,m2:27017,arb:27017/?replicaSet=rs0"
    member_sites: {"m1:27017": dc1, "m2:27017": dc2}
`), "")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Warnings) != 1 || !strings.Contains(cfg.Warnings[0], "mongodb[0].member_sites (line 6): no entry for arb:27017: unless") {
		t.Errorf("warnings = %q, want one for arb:27017", cfg.Warnings)
	}
}
