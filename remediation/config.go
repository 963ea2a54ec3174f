package remediation

import (
	"fmt"
	"net/url"
	"os"
	"slices"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// Defaults.
const (
	DefaultMaxBodyBytes   = 1 << 20
	DefaultCooldown       = 30 * time.Minute
	DefaultLeaseTTL       = 5 * time.Minute
	DefaultLeaseKeyPrefix = "iap_ha_exporter:remediation:"
	DefaultVerifyTimeout  = 15 * time.Second
	DefaultConfirmTimeout = 30 * time.Second
	DefaultScriptTimeout  = 60 * time.Second
	DefaultPeerTimeout    = 5 * time.Second
	// DefaultJournalRetention is how long the journal keeps an incident
	// after its last record.
	DefaultJournalRetention = 14 * 24 * time.Hour
	// MinJournalRetention is longer than Alertmanager's notification log
	// keeps a notification (--data.retention, 120h by default): an incident
	// forgotten while Alertmanager may still resend it could be acted on
	// twice.
	MinJournalRetention = 5 * 24 * time.Hour
)

// Config is the remediation file (--remediation.config.file). It names the
// estate's parts by the names the exporter's configuration gives them.
type Config struct {
	// Site is the site this receiver runs in (run one per site).
	Site string `yaml:"site"`
	// DryRun, true unless set false, logs the full plan and stops.
	DryRun *bool `yaml:"dry_run"`
	// Auth is what a webhook must present, on top of the web config's.
	Auth WebhookAuth `yaml:"auth"`
	// MaxBodyBytes bounds a notification.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// JournalFile records every notification and action, appended as they come
	// and compacted now and then (see Journal.compact).
	JournalFile string `yaml:"journal_file"`
	// JournalRetention is how long after its last record an incident is
	// remembered (and deduplicated) once the journal is compacted.
	JournalRetention model.Duration `yaml:"journal_retention"`
	// PauseFile: while it exists, the receiver decides nothing (maintenance).
	PauseFile string `yaml:"pause_file"`
	// AuditLogFile receives one JSON line per decision; the process log
	// gets them too.
	AuditLogFile string `yaml:"audit_log_file"`
	// Cooldown is how long after an action involving a server (failed or
	// promoted) no other action involving it starts.
	Cooldown model.Duration `yaml:"cooldown"`
	// VerifyTimeout bounds the fresh probes before acting, ConfirmTimeout
	// the wait for workers/status to show the standby working.
	VerifyTimeout  model.Duration `yaml:"verify_timeout"`
	ConfirmTimeout model.Duration `yaml:"confirm_timeout"`
	Lease          LeaseConfig    `yaml:"lease"`
	// Clusters opt IAP clusters in (by the cluster of the failed server).
	Clusters []ClusterConfig `yaml:"clusters"`
	Scripts  ScriptsConfig   `yaml:"scripts"`
	// AllowSingleVantage accepts a promotion whose fence cannot reach the
	// failed server although only this receiver's host saw it down: from
	// one vantage point a failed server and a partition between the two
	// look the same. Without it such a promotion is refused.
	AllowSingleVantage bool `yaml:"allow_single_vantage"`
	// Peers are the other sites' receivers: before a promotion whose fence
	// cannot reach the failed server, each is asked what it sees of it.
	Peers []PeerConfig `yaml:"peers"`
	// IAPAuth is the account the receiver logs in with; IAP's uniqueSession
	// ends other sessions of one account, so not the exporter's.
	IAPAuth *config.IAPAuth `yaml:"iap_auth"`
}

// WebhookAuth is a bearer token or basic credentials, from files or the
// environment.
type WebhookAuth struct {
	BearerTokenFile string             `yaml:"bearer_token_file"`
	BearerTokenEnv  string             `yaml:"bearer_token_env"`
	BasicAuth       config.Credentials `yaml:"basic_auth"`

	BearerToken promconfig.Secret `yaml:"-"`
}

// Enabled reports whether the receiver checks credentials itself.
func (a WebhookAuth) Enabled() bool { return a.BearerToken != "" || a.BasicAuth.Username != "" }

// LeaseConfig names the Sentinel group (of the exporter's configuration)
// that holds the lease. Every receiver of the estate must name the same one:
// the group that survives the failure being remediated (the standby site's,
// or one whose Sentinels span three sites).
type LeaseConfig struct {
	Redis     string         `yaml:"redis"`
	TTL       model.Duration `yaml:"ttl"`
	KeyPrefix string         `yaml:"key_prefix"`
}

// PeerConfig is another site's receiver, a second vantage point.
type PeerConfig struct {
	// Site is the peer's site.
	Site string `yaml:"site"`
	// URL is the peer's endpoint: its exporter's PeerPath.
	URL string `yaml:"url"`
	// Auth is what the peer's webhook requires: the same credentials
	// authenticate its peer endpoint.
	Auth    WebhookAuth    `yaml:"auth"`
	Timeout model.Duration `yaml:"timeout"`
}

// ClusterConfig opts one IAP cluster in.
type ClusterConfig struct {
	Name string `yaml:"name"`
	// AllowCrossSite approves promoting a standby of another site (DR).
	AllowCrossSite bool `yaml:"allow_cross_site"`
}

// ScriptsConfig lists the site hooks.
type ScriptsConfig struct {
	Timeout model.Duration `yaml:"timeout"`
	// PreCheck scripts run before acting; a non-zero exit vetoes.
	PreCheck []string `yaml:"pre_check"`
	// PostPromotion maps a site to the scripts run after a standby of that
	// site was promoted (load balancer, DNS).
	PostPromotion map[string][]string `yaml:"post_promotion"`
}

// Load reads the remediation file at path and checks it against the
// exporter's configuration.
func Load(path string, exporterCfg *config.Config) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return Parse(data, dirOf(path), exporterCfg)
}

// Parse is Load for a file already read; relative paths resolve against dir.
func Parse(data []byte, dir string, exporterCfg *config.Config) (*Config, error) {
	cfg := &Config{}
	c, err := config.Decode(data, dir, cfg)
	if err != nil {
		return nil, err
	}
	cfg.complete(c, exporterCfg)
	if err := c.Err(); err != nil {
		return nil, err
	}
	return cfg, nil
}

func (cfg *Config) complete(c *config.Checker, exporterCfg *config.Config) {
	sites := map[string]bool{}
	for _, s := range exporterCfg.Sites {
		sites[s.Name] = true
	}
	if cfg.Site == "" && len(exporterCfg.Sites) == 1 {
		cfg.Site = exporterCfg.Sites[0].Name
	}
	if !sites[cfg.Site] {
		c.Addf("site", "must name a site of the exporter's configuration, not %q", cfg.Site)
	}
	if cfg.DryRun == nil {
		dry := true
		cfg.DryRun = &dry
	}

	a := &cfg.Auth
	a.BearerToken = c.Secret("auth", "bearer_token_file", a.BearerTokenFile, "bearer_token_env", a.BearerTokenEnv, false)
	c.Credentials("auth.basic_auth", &a.BasicAuth, true)
	if a.BearerToken != "" && a.BasicAuth.Username != "" {
		c.Addf("auth", "set either a bearer token or basic_auth, not both")
	}

	if cfg.MaxBodyBytes < 0 {
		c.Addf("max_body_bytes", "must not be negative")
	}
	if cfg.MaxBodyBytes == 0 {
		cfg.MaxBodyBytes = DefaultMaxBodyBytes
	}
	if cfg.JournalFile == "" {
		c.Addf("journal_file", "is required: the receiver records every notification there before answering")
	}
	cfg.JournalFile = c.Path(cfg.JournalFile)
	cfg.PauseFile = c.Path(cfg.PauseFile)
	cfg.AuditLogFile = c.Path(cfg.AuditLogFile)
	regularIfThere(c, "journal_file", cfg.JournalFile)
	regularIfThere(c, "audit_log_file", cfg.AuditLogFile)
	c.Duration("journal_retention", &cfg.JournalRetention, DefaultJournalRetention)
	if r := time.Duration(cfg.JournalRetention); r > 0 && r < MinJournalRetention {
		c.Addf("journal_retention", "must be at least %s, not %s: Alertmanager keeps its notification log 120h by default, and an incident forgotten while Alertmanager may still resend it could be acted on twice", model.Duration(MinJournalRetention), cfg.JournalRetention)
	}
	c.Duration("cooldown", &cfg.Cooldown, DefaultCooldown)
	c.Duration("verify_timeout", &cfg.VerifyTimeout, DefaultVerifyTimeout)
	c.Duration("confirm_timeout", &cfg.ConfirmTimeout, DefaultConfirmTimeout)

	c.Duration("lease.ttl", &cfg.Lease.TTL, DefaultLeaseTTL)
	if cfg.Lease.KeyPrefix == "" {
		cfg.Lease.KeyPrefix = DefaultLeaseKeyPrefix
	}
	if !slices.ContainsFunc(exporterCfg.Redis, func(g config.SentinelGroup) bool { return g.Name == cfg.Lease.Redis }) {
		c.Addf("lease.redis", "must name a Sentinel group of the exporter's configuration, not %q: the lease is what keeps two receivers from promoting twice", cfg.Lease.Redis)
	}

	seen := map[string]bool{}
	for i, cl := range cfg.Clusters {
		p := fmt.Sprintf("clusters[%d].name", i)
		switch {
		case seen[cl.Name]:
			c.Addf(p, "%q is listed twice", cl.Name)
		case !slices.ContainsFunc(exporterCfg.IAP.Servers, func(s config.IAPServer) bool { return s.Cluster == cl.Name }):
			c.Addf(p, "no IAP server of the exporter's configuration is in cluster %q", cl.Name)
		}
		seen[cl.Name] = true
	}

	c.Duration("scripts.timeout", &cfg.Scripts.Timeout, DefaultScriptTimeout)
	for i := range cfg.Scripts.PreCheck {
		cfg.Scripts.PreCheck[i] = executable(c, fmt.Sprintf("scripts.pre_check[%d]", i), cfg.Scripts.PreCheck[i])
	}
	for site, scripts := range cfg.Scripts.PostPromotion {
		if !sites[site] {
			c.Addf(fmt.Sprintf("scripts.post_promotion[%q]", site), "site %q is not a site of the exporter's configuration", site)
		}
		for i := range scripts {
			scripts[i] = executable(c, fmt.Sprintf("scripts.post_promotion[%q][%d]", site, i), scripts[i])
		}
	}

	if action := cfg.longestAction(exporterCfg); time.Duration(cfg.Lease.TTL) <= action {
		c.Addf("lease.ttl", "must be longer than the longest action it guards, %s (the check under the lease, the fence and activation calls, confirm_timeout and every script at scripts.timeout), not %s: the lease expires whether or not its holder is done", model.Duration(action), cfg.Lease.TTL)
	}

	for i := range cfg.Peers {
		p := &cfg.Peers[i]
		at := fmt.Sprintf("peers[%d]", i)
		switch {
		case !sites[p.Site]:
			c.Addf(at+".site", "must name a site of the exporter's configuration, not %q", p.Site)
		case p.Site == cfg.Site:
			c.Addf(at+".site", "is this receiver's own site %q: a peer is another site's receiver", p.Site)
		}
		if u, err := url.Parse(p.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			c.Addf(at+".url", "must be the http(s) URL of the peer's %s, not %q", PeerPath, p.URL)
		}
		p.Auth.BearerToken = c.Secret(at+".auth", "bearer_token_file", p.Auth.BearerTokenFile, "bearer_token_env", p.Auth.BearerTokenEnv, false)
		c.Credentials(at+".auth.basic_auth", &p.Auth.BasicAuth, true)
		c.Duration(at+".timeout", &p.Timeout, DefaultPeerTimeout)
	}

	if cfg.IAPAuth != nil {
		c.IAPAuth("iap_auth", cfg.IAPAuth)
		if !cfg.IAPAuth.Enabled() {
			c.Addf("iap_auth", "names no username or client_id")
		}
	}
}

// longestAction bounds what a receiver does while it holds the lease: the
// check under it, the claim's pre-check scripts, the fence (a health check
// and a deactivation), the activation, the confirmation and the most
// post-promotion scripts of any site, each at its timeout.
func (cfg *Config) longestAction(exporterCfg *config.Config) time.Duration {
	call := time.Duration(exporterCfg.IAP.Timeout)
	for _, s := range exporterCfg.IAP.Servers {
		call = max(call, time.Duration(s.Timeout))
	}
	post := 0
	for _, scripts := range cfg.Scripts.PostPromotion {
		post = max(post, len(scripts))
	}
	script := time.Duration(cfg.Scripts.Timeout)
	// The peers and the load balancers are asked at once, under the lease
	// and again at the fence.
	var peers time.Duration
	for _, p := range cfg.Peers {
		peers = max(peers, time.Duration(p.Timeout))
	}
	confirm := time.Duration(cfg.ConfirmTimeout)
	for _, lb := range exporterCfg.LoadBalancers {
		peers = max(peers, time.Duration(lb.Timeout))
	}
	if len(exporterCfg.LoadBalancers) > 0 {
		confirm *= 2 // verify_routing waits up to confirm_timeout too
	}
	return 2*peers + time.Duration(cfg.VerifyTimeout) + time.Duration(len(cfg.Scripts.PreCheck))*script +
		time.Duration(exporterCfg.IAP.HealthTimeout) + 2*call +
		confirm + time.Duration(post)*script
}

// regularIfThere refuses a file the receiver appends to that exists and is
// not a regular file: a FIFO would hang the start, a device swallow the
// records. A file not there yet is created at the start.
func regularIfThere(c *config.Checker, p, name string) {
	if name == "" {
		return
	}
	if fi, err := os.Stat(name); err == nil {
		if err := config.CheckRegular(name, fi); err != nil {
			c.Addf(p, "%v", err)
		}
	}
}

// executable resolves a script path and checks that it can be run.
func executable(c *config.Checker, p, name string) string {
	name = c.Path(name)
	fi, err := os.Stat(name)
	switch {
	case err != nil:
		c.Addf(p, "%v", err)
	case fi.IsDir() || fi.Mode().Perm()&0o111 == 0:
		c.Addf(p, "%s is not an executable file", name)
	}
	return name
}

// cluster returns the opt-in of a cluster, if any.
func (cfg *Config) cluster(name string) (ClusterConfig, bool) {
	i := slices.IndexFunc(cfg.Clusters, func(c ClusterConfig) bool { return c.Name == name })
	if i < 0 {
		return ClusterConfig{}, false
	}
	return cfg.Clusters[i], true
}
