package remediation

import (
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

func TestExampleConfig(t *testing.T) {
	estate, err := config.Load("../examples/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := Load("../examples/remediation.yml", estate)
	if err != nil {
		t.Fatal(err)
	}
	if !*cfg.DryRun || cfg.Site != "dc2" || cfg.Auth.BearerToken == "" || time.Duration(cfg.Lease.TTL) != 5*time.Minute {
		t.Errorf("loaded %+v", cfg)
	}
	if time.Duration(cfg.JournalRetention) != 14*24*time.Hour {
		t.Errorf("journal_retention %v", cfg.JournalRetention)
	}
	defaults, err := Parse([]byte("site: dc2\njournal_file: j\nlease: {redis: dc2}\n"), "../examples", estate)
	if err != nil || time.Duration(defaults.JournalRetention) != DefaultJournalRetention {
		t.Errorf("journal_retention by default: %+v, %v", defaults, err)
	}
	if len(cfg.Peers) != 1 || cfg.Peers[0].Site != "dc1" || cfg.Peers[0].Auth.BearerToken == "" || time.Duration(cfg.Peers[0].Timeout) != DefaultPeerTimeout {
		t.Errorf("peers %+v", cfg.Peers)
	}
	if c, ok := cfg.cluster("dc1"); !ok || !c.AllowCrossSite {
		t.Errorf("cluster dc1: %+v %v", c, ok)
	}
}

func TestConfigProblems(t *testing.T) {
	estate, err := config.Load("../examples/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct{ name, yaml, want string }{
		{"unknown field", "site: dc2\njournal_file: j\nlease: {redis: dc2}\ncooldwn: 1m\n", `cooldwn (line 4): unknown field "cooldwn" (did you mean "cooldown"?)`},
		{"no journal", "site: dc2\nlease: {redis: dc2}\n", "journal_file: is required"},
		{"unknown site", "site: dc9\njournal_file: j\nlease: {redis: dc2}\n", `site (line 1): must name a site of the exporter's configuration, not "dc9"`},
		{"no lease", "site: dc2\njournal_file: j\n", "lease.redis: must name a Sentinel group"},
		{"unknown cluster", "site: dc2\njournal_file: j\nlease: {redis: dc2}\nclusters: [{name: dc7}]\n", `clusters[0].name (line 4): no IAP server of the exporter's configuration is in cluster "dc7"`},
		{"missing script", "site: dc2\njournal_file: j\nlease: {redis: dc2}\nscripts: {pre_check: [nope.sh]}\n", "scripts.pre_check[0]"},
		{"both auths", "site: dc2\njournal_file: j\nlease: {redis: dc2}\nauth: {bearer_token_env: PATH, basic_auth: {username: am, password_file: secrets/iap-password}}\n", "auth (line 4): set either a bearer token or basic_auth"},
		{"wrong type", "site: dc2\njournal_file: j\nlease: {redis: dc2}\ndry_run: maybe\n", "dry_run (line 4)"},
		{"journal on a device", "site: dc2\njournal_file: /dev/null\nlease: {redis: dc2}\n", "journal_file (line 2): /dev/null is not a regular file (a device)"},
		{"audit log on a device", "site: dc2\njournal_file: j\naudit_log_file: /dev/null\nlease: {redis: dc2}\n", "audit_log_file (line 3): /dev/null is not a regular file (a device)"},
		{"journal a directory", "site: dc2\njournal_file: .\nlease: {redis: dc2}\n", "is not a regular file (a directory)"},
		// The lease must outlive the longest action it guards: SET NX PX
		// expires it whether or not its holder is done.
		{"lease shorter than an action", "site: dc2\njournal_file: j\nlease: {redis: dc2, ttl: 1m}\nconfirm_timeout: 50s\n", "lease.ttl (line 3): must be longer than the longest action it guards"},
		{"a peer of its own site", "site: dc2\njournal_file: j\nlease: {redis: dc2}\npeers: [{site: dc2, url: \"http://x/remediation/peer\"}]\n", `peers[0].site (line 4): is this receiver's own site "dc2"`},
		{"a peer without a URL", "site: dc2\njournal_file: j\nlease: {redis: dc2}\npeers: [{site: dc1}]\n", "peers[0].url: must be the http(s) URL of the peer's /remediation/peer"},
		{"retention shorter than Alertmanager's", "site: dc2\njournal_file: j\nlease: {redis: dc2}\njournal_retention: 4d23h\n", "journal_retention (line 4): must be at least 5d, not 4d23h"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Parse([]byte(tt.yaml), "../examples", estate)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Errorf("got %v, want an error containing %q", err, tt.want)
			}
		})
	}
}
