package config

import (
	"net/url"
	"sort"
	"time"

	"github.com/prometheus/common/model"
)

// Defaults. Load and Default apply them, once, before the configuration is
// checked; the probes, the collectors and the receiver take them as set and
// apply none of their own. A configuration built in code gets them from
// SetDefaults.
const (
	DefaultIAPTimeout    = 5 * time.Second
	DefaultHealthTimeout = time.Second // Itential recommends 1 s for /health/status
	DefaultMongoTimeout  = 5 * time.Second
	DefaultRedisTimeout  = 2 * time.Second
	// Under the usual scrape deadline (10 s less the 500 ms offset), so
	// that a hung cluster is reported down rather than cut with the rest.
	DefaultRabbitMQTimeout = 8 * time.Second
	DefaultGatewayTimeout  = 5 * time.Second
	DefaultGatewayCapacity = 5000
	// DefaultBalancerTimeout bounds one balancer's probe: the stats socket
	// answers at once, a VIP's /health/status is what Itential asks in 1 s.
	DefaultBalancerTimeout = 2 * time.Second
	// DefaultVIPRequests is how many times a scrape asks /health/status
	// through a virtual IP: enough to meet two servers under round robin.
	DefaultVIPRequests     = 4
	MaxVIPRequests         = 32
	DefaultSentinelMaster  = "itentialmaster"
	DefaultMongoSiteTag    = "dc"
	DefaultLocalSite       = "local"
	DefaultIAPCookieName   = "token"
	DefaultRabbitMQUser    = "guest"
	DefaultMongoAuthSource = "admin"
	// DefaultPartitionHandling is RabbitMQ's own default.
	DefaultPartitionHandling = "ignore"
)

// Default is the configuration used without a file: an all-in-one (HA-0)
// node on localhost at the standard ports.
func Default() *Config {
	cfg := &Config{
		Architecture: ArchHA0,
		Sites:        []Site{{Name: DefaultLocalSite, Role: SiteActive}},
		IAP:          IAP{Servers: []IAPServer{{Name: "localhost", URL: "http://localhost:3000"}}},
		MongoDB:      []ReplicaSet{{Name: "rs0", URI: "mongodb://localhost:27017/?directConnection=true"}},
		Redis:        []SentinelGroup{{Sentinels: []Sentinel{{Address: "localhost:26379"}}}},
		RabbitMQ:     []RabbitCluster{{Name: "local", URLs: []string{"http://localhost:15672"}, Credentials: Credentials{Username: DefaultRabbitMQUser, Password: "guest"}}},
	}
	cfg.setDefaults()
	v := validator{lines: map[string]int{}}
	v.check(cfg)
	if len(v.problems) > 0 {
		panic("default configuration is invalid: " + v.problems.Error())
	}
	return cfg
}

// SetDefaults fills in every field left empty of a configuration built in
// code rather than loaded (the lab's, the tests'), exactly as Load does, so
// that what the probes are given does not depend on who wrote it. It
// checks nothing.
func (c *Config) SetDefaults() { c.setDefaults() }

// setDefaults fills in every field left empty. It reports nothing: the
// validator checks the result, so a value that is wrong is reported whether
// it was written or defaulted.
func (c *Config) setDefaults() {
	// Without declared sites the estate is one implicit site.
	if len(c.Sites) == 0 {
		c.Sites = []Site{{Name: DefaultLocalSite, Role: SiteActive}}
	}
	for i := range c.Sites {
		if c.Sites[i].Role == "" {
			c.Sites[i].Role = SiteActive
		}
	}
	site := c.defaultSite()
	for i := range c.Redis {
		c.Redis[i].setDefaults(site)
	}
	for i := range c.RabbitMQ {
		c.RabbitMQ[i].setDefaults(site)
	}
	c.IAP.setDefaults(site, c.redisNames(), c.rabbitNames())
	for i := range c.MongoDB {
		c.MongoDB[i].setDefaults()
	}
	for i := range c.Gateways {
		c.Gateways[i].setDefaults(site)
	}
	for i := range c.LoadBalancers {
		c.LoadBalancers[i].setDefaults(site)
	}
}

func (b *LoadBalancer) setDefaults(site string) {
	setString(&b.Site, site)
	setDuration(&b.Timeout, DefaultBalancerTimeout)
	if b.Kind == BalancerVIP && b.Requests == 0 {
		b.Requests = DefaultVIPRequests
	}
}

// defaultSite is the site of anything that names none: the only one
// declared, else none (then every part must name its own).
func (c *Config) defaultSite() string {
	if len(c.Sites) == 1 {
		return c.Sites[0].Name
	}
	return ""
}

func (c *IAP) setDefaults(site string, redisNames, rabbitNames map[string][]string) {
	setDuration(&c.Timeout, DefaultIAPTimeout)
	setDuration(&c.HealthTimeout, DefaultHealthTimeout)
	c.Auth.setDefaults()
	for i := range c.Servers {
		s := &c.Servers[i]
		if s.Name == "" {
			s.Name = hostOf(s.URL)
		}
		setString(&s.Site, site)
		setString(&s.Role, RoleActive)
		if s.Redis == "" {
			s.Redis, _ = dependency(s.Site, redisNames, true)
		}
		if s.RabbitMQ == "" {
			// RabbitMQ is not used from 2023.2 on: a server in a site
			// without a cluster may use none, so no other site's cluster
			// is assumed.
			s.RabbitMQ, _ = dependency(s.Site, rabbitNames, false)
		}
		setString(&s.Cluster, s.Redis)
		setString(&s.Cluster, s.Site)
		if s.Auth != nil {
			s.Auth.setDefaults()
		} else {
			s.Auth = &c.Auth
		}
		if s.TLS == nil {
			s.TLS = &c.TLS
		}
		setDuration(&s.Timeout, time.Duration(c.Timeout))
	}
}

func (a *IAPAuth) setDefaults() { setString(&a.CookieName, DefaultIAPCookieName) }

// dependency resolves the Redis group or RabbitMQ cluster of a server that
// names none: the only one of its own site; else (elsewhere) the estate's
// only one. Where that is ambiguous it returns no name and the candidates,
// which the server must choose from (a server left without one would have
// its site losses judged without it).
func dependency(site string, bySite map[string][]string, elsewhere bool) (string, []string) {
	if here := bySite[site]; len(here) == 1 {
		return here[0], nil
	} else if len(here) > 1 {
		return "", here
	}
	if !elsewhere {
		return "", nil
	}
	var all []string
	for _, names := range bySite {
		all = append(all, names...)
	}
	if len(all) == 1 {
		return all[0], nil
	}
	sort.Strings(all)
	return "", all
}

func (c *Config) redisNames() map[string][]string {
	out := map[string][]string{}
	for _, g := range c.Redis {
		out[g.Site] = append(out[g.Site], g.Name)
	}
	return out
}

func (c *Config) rabbitNames() map[string][]string {
	out := map[string][]string{}
	for _, r := range c.RabbitMQ {
		out[r.Site] = append(out[r.Site], r.Name)
	}
	return out
}

func (r *ReplicaSet) setDefaults() {
	setString(&r.AuthSource, DefaultMongoAuthSource)
	setString(&r.SiteTag, DefaultMongoSiteTag)
	setDuration(&r.Timeout, DefaultMongoTimeout)
}

func (g *SentinelGroup) setDefaults(site string) {
	setString(&g.MasterName, DefaultSentinelMaster)
	setString(&g.Name, g.MasterName)
	setString(&g.Site, site)
	for i := range g.Sentinels {
		setString(&g.Sentinels[i].Site, g.Site)
	}
	setDuration(&g.Timeout, DefaultRedisTimeout)
}

func (r *RabbitCluster) setDefaults(site string) {
	setString(&r.Site, site)
	setString(&r.Username, DefaultRabbitMQUser)
	setString(&r.PartitionHandling, DefaultPartitionHandling)
	for i := range r.FederationLinks {
		setString(&r.FederationLinks[i].VHost, "/")
	}
	setDuration(&r.Timeout, DefaultRabbitMQTimeout)
}

func (g *Gateway) setDefaults(site string) {
	if g.Name == "" {
		g.Name = hostOf(g.URL)
	}
	setString(&g.Site, site)
	if g.Capacity == 0 {
		g.Capacity = DefaultGatewayCapacity
	}
	setDuration(&g.Timeout, DefaultGatewayTimeout)
}

// hostOf is the host of a URL the validator accepts (an absolute http or
// https URL with a host and no credentials), the default name of what it
// points at; empty for any other.
func hostOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil {
		return ""
	}
	return u.Host
}

func setString(s *string, def string) {
	if *s == "" {
		*s = def
	}
}

func setDuration(d *model.Duration, def time.Duration) {
	if *d == 0 {
		*d = model.Duration(def)
	}
}
