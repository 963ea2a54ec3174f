package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"

	"github.com/prometheus/common/model"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// validator checks every field of a configuration whose defaults are set and
// reads the secrets, collecting every problem instead of stopping at the
// first.
type validator struct {
	lines    map[string]int
	dir      string
	problems Problems
	warnings []string
	sites    map[string]bool
}

func (v *validator) warnf(path, format string, args ...any) {
	at := path
	if l, ok := v.lines[path]; ok {
		at = fmt.Sprintf("%s (line %d)", path, l)
	}
	v.warnings = append(v.warnings, at+": "+fmt.Sprintf(format, args...))
}

func (v *validator) addf(path, format string, args ...any) {
	at := path
	if l, ok := v.lines[path]; ok {
		at = fmt.Sprintf("%s (line %d)", path, l)
	}
	v.problems = append(v.problems, at+": "+fmt.Sprintf(format, args...))
}

func (v *validator) check(c *Config) {
	switch c.Architecture {
	case "", ArchHA0, ArchHA3, ArchHA6:
	default:
		v.addf("architecture", "must be one of %s, %s or %s, not %q", ArchHA0, ArchHA3, ArchHA6, c.Architecture)
	}

	v.sites = map[string]bool{}
	for i := range c.Sites {
		s := &c.Sites[i]
		p := fmt.Sprintf("sites[%d]", i)
		v.name(p+".name", s.Name, v.sites)
		if s.Role != SiteActive && s.Role != SiteStandby && s.Role != SiteWitness {
			v.addf(p+".role", "must be active, standby or witness, not %q", s.Role)
		}
	}
	redisNames, rabbitNames := map[string]bool{}, map[string]bool{}
	for i := range c.Redis {
		v.redis(&c.Redis[i], fmt.Sprintf("redis[%d]", i), redisNames)
	}
	for i := range c.RabbitMQ {
		v.rabbit(&c.RabbitMQ[i], fmt.Sprintf("rabbitmq[%d]", i), rabbitNames)
	}
	v.iap(&c.IAP, c, redisNames, rabbitNames)
	setNames := map[string]bool{}
	for i := range c.MongoDB {
		v.mongo(&c.MongoDB[i], fmt.Sprintf("mongodb[%d]", i), setNames, len(c.Sites) > 1)
	}
	gwNames := map[string]bool{}
	for i := range c.Gateways {
		v.gateway(&c.Gateways[i], fmt.Sprintf("gateways[%d]", i), gwNames)
	}
	lbNames := map[string]bool{}
	for i := range c.LoadBalancers {
		v.balancer(&c.LoadBalancers[i], fmt.Sprintf("load_balancers[%d]", i), lbNames, c.IAP.Servers)
	}
}

func (v *validator) iap(c *IAP, cfg *Config, redisNames, rabbitNames map[string]bool) {
	v.duration("iap.timeout", c.Timeout)
	v.duration("iap.health_timeout", c.HealthTimeout)
	v.iapAuth("iap.auth", &c.Auth)
	v.tls("iap.tls_config", &c.TLS)
	names := map[string]bool{}
	for i := range c.Servers {
		s := &c.Servers[i]
		p := fmt.Sprintf("iap.servers[%d]", i)
		u := v.url(p+".url", s.URL, "http", "https")
		if s.Name != "" || u != nil { // a bad URL is reported once, not again as a missing name
			v.name(p+".name", s.Name, names)
		}
		v.site(p+".site", s.Site)
		if s.Role != RoleActive && s.Role != RoleStandby {
			v.addf(p+".role", "must be active or standby, not %q", s.Role)
		}
		v.dependency(p+".redis", "Sentinel group", s.Redis, s.Site, cfg.redisNames(), redisNames, true)
		v.dependency(p+".rabbitmq", "RabbitMQ cluster", s.RabbitMQ, s.Site, cfg.rabbitNames(), rabbitNames, false)
		if s.Auth != &c.Auth {
			v.iapAuth(p+".auth", s.Auth)
		}
		if s.TLS != &c.TLS {
			v.tls(p+".tls_config", s.TLS)
		}
		v.duration(p+".timeout", s.Timeout)
	}
}

// dependency checks the Redis group or RabbitMQ cluster a server uses: the
// one it names must be configured, and where it names none the defaults
// must have found one (see dependency in defaults.go).
func (v *validator) dependency(path, kind, name, site string, bySite map[string][]string, known map[string]bool, elsewhere bool) {
	if name != "" {
		if !known[name] {
			v.addf(path, "names %q, which is not configured", name)
		}
		return
	}
	_, candidates := dependency(site, bySite, elsewhere)
	switch {
	case len(candidates) == 0:
	case len(bySite[site]) > 1:
		v.addf(path, "is required: site %q has %d of them (%s)", site, len(candidates), strings.Join(candidates, ", "))
	default:
		v.addf(path, "is required: site %q has no %s and the estate has %d (%s)", site, kind, len(candidates), strings.Join(candidates, ", "))
	}
}

func (v *validator) iapAuth(p string, a *IAPAuth) {
	if a.Username != "" && a.ClientID != "" {
		v.addf(p, "set either username (login) or client_id (OAuth client credentials), not both")
	}
	if a.Username != "" || a.PasswordFile != "" || a.PasswordEnv != "" {
		v.credentials(p, &a.Credentials, true)
	}
	if a.ClientID != "" || a.ClientSecretFile != "" || a.ClientSecretEnv != "" {
		if a.ClientID == "" {
			v.addf(p+".client_id", "is required with client_secret_file or client_secret_env")
		}
		a.ClientSecret = v.secret(p, "client_secret_file", a.ClientSecretFile, "client_secret_env", a.ClientSecretEnv, true)
	}
}

// credentials reads the password of c; a username without any secret is an
// error only where the target cannot work without one.
func (v *validator) credentials(p string, c *Credentials, required bool) {
	if c.Username == "" && (c.PasswordFile != "" || c.PasswordEnv != "") && required {
		v.addf(join(p, "username"), "is required with password_file or password_env")
	}
	c.Password = v.secret(p, "password_file", c.PasswordFile, "password_env", c.PasswordEnv, required && c.Username != "")
}

func (v *validator) mongo(r *ReplicaSet, p string, names map[string]bool, multiSite bool) {
	v.name(p+".name", r.Name, names)
	if r.URI == "" {
		v.addf(p+".uri", "is required")
	} else if cs, err := connstring.Parse(r.URI); err != nil {
		// The driver's message may quote the URI, which may carry a password.
		v.addf(p+".uri", "is not a MongoDB connection string (mongodb://host:port,…/?replicaSet=…)")
	} else if cs.Username != "" && cs.Password != "" {
		v.addf(p+".uri", "must not carry a password: use username and password_file")
	} else if multiSite {
		// Their tags cannot be read at load: say what rests on them.
		var unlisted []string
		for _, host := range cs.Hosts {
			if _, placed := r.MemberSites[host]; !placed {
				unlisted = append(unlisted, host)
			}
		}
		if len(unlisted) > 0 {
			v.warnf(p+".member_sites", "no entry for %s: unless a member's replica-set tag %q names its site, the HA model treats it as unplaced (never a survivor of a site loss, no site of its own)", strings.Join(unlisted, ", "), r.SiteTag)
		}
	}
	v.credentials(p, &r.Credentials, true)
	for member := range r.MemberSites {
		if _, _, err := net.SplitHostPort(member); err != nil {
			v.addf(keyPath(p+".member_sites", member), "must be host:port")
		}
	}
	v.placed(p+".member_sites", r.MemberSites)
	v.optionalTLS(p+".tls_config", r.TLS)
	v.duration(p+".timeout", r.Timeout)
}

func (v *validator) redis(g *SentinelGroup, p string, names map[string]bool) {
	v.name(p+".name", g.Name, names)
	v.site(p+".site", g.Site)
	if len(g.Sentinels) == 0 {
		v.addf(p+".sentinels", "at least one Sentinel is required")
	}
	for i := range g.Sentinels {
		s := &g.Sentinels[i]
		sp := fmt.Sprintf("%s.sentinels[%d]", p, i)
		v.hostPort(sp+".address", s.Address)
		// One that took its group's site was reported with the group.
		if s.Site != g.Site && !v.sites[s.Site] {
			v.addf(sp+".site", "site %q is not declared under sites", s.Site)
		}
	}
	v.credentials(p+".sentinel_auth", &g.SentinelAuth, false)
	v.credentials(p+".auth", &g.Auth, false)
	v.placed(p+".node_sites", g.NodeSites)
	v.optionalTLS(p+".tls_config", g.TLS)
	v.duration(p+".timeout", g.Timeout)
}

func (v *validator) rabbit(r *RabbitCluster, p string, names map[string]bool) {
	v.name(p+".name", r.Name, names)
	v.site(p+".site", r.Site)
	if len(r.URLs) == 0 {
		v.addf(p+".urls", "at least one management API URL is required")
	}
	for i, u := range r.URLs {
		v.url(fmt.Sprintf("%s.urls[%d]", p, i), u, "http", "https")
	}
	v.credentials(p, &r.Credentials, false)
	v.placed(p+".node_sites", r.NodeSites)
	switch r.PartitionHandling {
	case "ignore", "pause_minority", "autoheal", "pause_if_all_down":
	default:
		v.addf(p+".partition_handling", "must be ignore, pause_minority, autoheal or pause_if_all_down, not %q", r.PartitionHandling)
	}
	for i, l := range r.FederationLinks {
		lp := fmt.Sprintf("%s.federation_links[%d]", p, i)
		if l.Upstream == "" {
			v.addf(lp+".upstream", "is required")
		}
		if (l.Exchange == "") == (l.Queue == "") {
			v.addf(lp, "set exactly one of exchange or queue")
		}
	}
	v.optionalTLS(p+".tls_config", r.TLS)
	v.duration(p+".timeout", r.Timeout)
}

func (v *validator) gateway(g *Gateway, p string, names map[string]bool) {
	u := v.url(p+".url", g.URL, "http", "https")
	if g.Name != "" || u != nil {
		v.name(p+".name", g.Name, names)
	}
	v.site(p+".site", g.Site)
	v.credentials(p, &g.Credentials, true)
	if g.Capacity < 0 {
		v.addf(p+".capacity", "must not be negative")
	}
	v.optionalTLS(p+".tls_config", g.TLS)
	v.duration(p+".timeout", g.Timeout)
}

func (v *validator) balancer(b *LoadBalancer, p string, names map[string]bool, servers []IAPServer) {
	v.name(p+".name", b.Name, names)
	v.site(p+".site", b.Site)
	only := func(key string, set bool) {
		if set {
			v.addf(p+"."+key, "applies to kind %s only", map[string]string{
				"stats_socket": BalancerHAProxy, "backend": BalancerHAProxy, "all_backups": BalancerHAProxy,
				"url": BalancerVIP, "requests": BalancerVIP, "tls_config": BalancerVIP}[key])
		}
	}
	switch b.Kind {
	case BalancerHAProxy:
		switch {
		case b.StatsSocket == "":
			v.addf(p+".stats_socket", "is required for kind haproxy")
		case !strings.HasPrefix(b.StatsSocket, "/"):
			v.hostPort(p+".stats_socket", b.StatsSocket)
		}
		if b.Backend == "" {
			v.addf(p+".backend", "is required for kind haproxy: the backend that holds the IAP servers")
		}
		only("url", b.URL != "")
		only("requests", b.Requests != 0)
		only("tls_config", b.TLS != nil)
	case BalancerVIP:
		v.url(p+".url", b.URL, "http", "https")
		if b.Requests < 0 || b.Requests > MaxVIPRequests {
			v.addf(p+".requests", "must be between 1 and %d, not %d", MaxVIPRequests, b.Requests)
		}
		v.optionalTLS(p+".tls_config", b.TLS)
		only("stats_socket", b.StatsSocket != "")
		only("backend", b.Backend != "")
		only("all_backups", b.AllBackups)
	case "":
		v.addf(p+".kind", "is required: %s or %s", BalancerHAProxy, BalancerVIP)
	default:
		v.addf(p+".kind", "must be %s or %s, not %q", BalancerHAProxy, BalancerVIP, b.Kind)
	}
	known := map[string]bool{}
	for _, s := range servers {
		known[s.Name] = true
	}
	for lbName, server := range b.Servers {
		if !known[server] {
			v.addf(keyPath(p+".servers", lbName), "IAP server %q is not configured under iap.servers", server)
		}
	}
	v.duration(p+".timeout", b.Timeout)
}

// name checks that a name is set and unique among its peers.
func (v *validator) name(p, name string, seen map[string]bool) {
	switch {
	case name == "":
		v.addf(p, "is required")
	case seen[name]:
		v.addf(p, "%q is used twice", name)
	}
	seen[name] = true
}

// site checks that a site is set (it is by default where only one is
// declared) and exists.
func (v *validator) site(p, site string) {
	if site == "" {
		v.addf(p, "is required when more than one site is declared")
		return
	}
	if !v.sites[site] {
		v.addf(p, "site %q is not declared under sites", site)
	}
}

// placed checks that every site a node_sites or member_sites map names is
// declared.
func (v *validator) placed(p string, sites map[string]string) {
	for node, site := range sites {
		if !v.sites[site] {
			v.addf(keyPath(p, node), "site %q is not declared under sites", site)
		}
	}
}

func (v *validator) url(p, raw string, schemes ...string) *url.URL {
	if raw == "" {
		v.addf(p, "is required")
		return nil
	}
	u, err := url.Parse(raw)
	if err != nil {
		// url.Error quotes the whole URL, and an escape error the bad
		// escape, which may be in the password: quote neither as is.
		var ue *url.Error
		if errors.As(err, &ue) && !strings.Contains(raw, "@") {
			v.addf(p, "is not a URL: %q: %v", raw, ue.Err)
		} else {
			v.addf(p, "is not a URL: %q", RedactURL(raw))
		}
		return nil
	}
	ok := false
	for _, s := range schemes {
		ok = ok || u.Scheme == s
	}
	if !ok || u.Host == "" {
		v.addf(p, "must be an absolute %s URL with a host, not %q", strings.Join(schemes, " or "), RedactURL(raw))
		return nil
	}
	if u.User != nil {
		v.addf(p, "must not carry credentials: use username and password_file")
		return nil
	}
	return u
}

func (v *validator) hostPort(p, addr string) {
	if addr == "" {
		v.addf(p, "is required")
		return
	}
	host, port, err := net.SplitHostPort(addr)
	if err != nil || host == "" {
		v.addf(p, "must be host:port, not %q", RedactURL(addr))
		return
	}
	if n, err := net.LookupPort("tcp", port); err != nil || n == 0 {
		v.addf(p, "has no valid port: %q", RedactURL(addr))
	}
}

func (v *validator) duration(p string, d model.Duration) {
	if d < 0 {
		v.addf(p, "must not be negative")
	}
}

// keyPath is the path of a map entry whose key is an address, which may
// carry credentials by mistake.
func keyPath(p, key string) string {
	return fmt.Sprintf("%s[%q]", p, RedactURL(key))
}
