package config

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
	"go.mongodb.org/mongo-driver/v2/x/mongo/driver/connstring"
)

// validator applies defaults, checks every field and reads the secrets,
// collecting every problem instead of stopping at the first.
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

func (v *validator) complete(c *Config) {
	switch c.Architecture {
	case "", ArchHA0, ArchHA3, ArchHA6:
	default:
		v.addf("architecture", "must be one of %s, %s or %s, not %q", ArchHA0, ArchHA3, ArchHA6, c.Architecture)
	}

	// Without declared sites the estate is one implicit site.
	if len(c.Sites) == 0 {
		c.Sites = []Site{{Name: DefaultLocalSite, Role: SiteActive}}
	}
	v.sites = map[string]bool{}
	for i := range c.Sites {
		s := &c.Sites[i]
		p := fmt.Sprintf("sites[%d]", i)
		v.name(p+".name", s.Name, v.sites)
		if s.Role == "" {
			s.Role = SiteActive
		}
		if s.Role != SiteActive && s.Role != SiteStandby && s.Role != SiteWitness {
			v.addf(p+".role", "must be active, standby or witness, not %q", s.Role)
		}
	}
	defaultSite := ""
	if len(c.Sites) == 1 {
		defaultSite = c.Sites[0].Name
	}

	redisNames, rabbitNames := map[string]bool{}, map[string]bool{}
	for i := range c.Redis {
		v.redis(&c.Redis[i], fmt.Sprintf("redis[%d]", i), defaultSite, redisNames)
	}
	for i := range c.RabbitMQ {
		v.rabbit(&c.RabbitMQ[i], fmt.Sprintf("rabbitmq[%d]", i), defaultSite, rabbitNames)
	}
	v.iap(&c.IAP, defaultSite, c, redisNames, rabbitNames)
	setNames := map[string]bool{}
	for i := range c.MongoDB {
		v.mongo(&c.MongoDB[i], fmt.Sprintf("mongodb[%d]", i), setNames, len(c.Sites) > 1)
	}
	gwNames := map[string]bool{}
	for i := range c.Gateways {
		v.gateway(&c.Gateways[i], fmt.Sprintf("gateways[%d]", i), defaultSite, gwNames)
	}
	lbNames := map[string]bool{}
	for i := range c.LoadBalancers {
		v.balancer(&c.LoadBalancers[i], fmt.Sprintf("load_balancers[%d]", i), defaultSite, lbNames, c.IAP.Servers)
	}
}

func (v *validator) iap(c *IAP, defaultSite string, cfg *Config, redisNames, rabbitNames map[string]bool) {
	v.duration("iap.timeout", &c.Timeout, DefaultIAPTimeout)
	v.duration("iap.health_timeout", &c.HealthTimeout, DefaultHealthTimeout)
	v.iapAuth("iap.auth", &c.Auth)
	v.tls("iap.tls_config", &c.TLS)
	names := map[string]bool{}
	for i := range c.Servers {
		s := &c.Servers[i]
		p := fmt.Sprintf("iap.servers[%d]", i)
		u := v.url(p+".url", s.URL, "http", "https")
		if s.Name == "" && u != nil {
			s.Name = u.Host
		}
		if s.Name != "" || u != nil { // a bad URL is reported once, not again as a missing name
			v.name(p+".name", s.Name, names)
		}
		v.site(p+".site", &s.Site, defaultSite)
		if s.Role == "" {
			s.Role = RoleActive
		}
		if s.Role != RoleActive && s.Role != RoleStandby {
			v.addf(p+".role", "must be active or standby, not %q", s.Role)
		}
		s.Redis = v.dependency(p+".redis", "Sentinel group", s.Redis, s.Site, cfg.redisNames(), redisNames, true)
		// RabbitMQ is not used from 2023.2 on: a server in a site without a
		// cluster may use none, so no other site's cluster is assumed.
		s.RabbitMQ = v.dependency(p+".rabbitmq", "RabbitMQ cluster", s.RabbitMQ, s.Site, cfg.rabbitNames(), rabbitNames, false)
		if s.Cluster == "" {
			s.Cluster = s.Redis
		}
		if s.Cluster == "" {
			s.Cluster = s.Site
		}
		if s.Auth != nil {
			v.iapAuth(p+".auth", s.Auth)
		} else {
			s.Auth = &c.Auth
		}
		if s.TLS != nil {
			v.tls(p+".tls_config", s.TLS)
		} else {
			s.TLS = &c.TLS
		}
		v.duration(p+".timeout", &s.Timeout, time.Duration(c.Timeout))
	}
}

// dependency resolves the Redis group or RabbitMQ cluster a server uses: the
// one named; else the only one of its own site; else (elsewhere) the
// estate's only one; else, with several and none or more than one in its
// site, the server must name it (a server left without one would have its
// site losses judged without it).
func (v *validator) dependency(path, kind, name, site string, bySite map[string][]string, known map[string]bool, elsewhere bool) string {
	if name != "" {
		if !known[name] {
			v.addf(path, "names %q, which is not configured", name)
		}
		return name
	}
	if here := bySite[site]; len(here) == 1 {
		return here[0]
	} else if len(here) > 1 {
		v.addf(path, "is required: site %q has %d of them (%s)", site, len(here), strings.Join(here, ", "))
		return ""
	}
	if !elsewhere {
		return ""
	}
	var all []string
	for _, names := range bySite {
		all = append(all, names...)
	}
	switch len(all) {
	case 0:
		return ""
	case 1:
		return all[0]
	}
	sort.Strings(all)
	v.addf(path, "is required: site %q has no %s and the estate has %d (%s)", site, kind, len(all), strings.Join(all, ", "))
	return ""
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

func (v *validator) iapAuth(p string, a *IAPAuth) {
	if a.CookieName == "" {
		a.CookieName = DefaultIAPCookieName
	}
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

// secret reads a secret from a file (relative to the config file) or an
// environment variable. Error messages name the file or variable, never the value.
func (v *validator) secret(p, fileKey, file, envKey, env string, required bool) promconfig.Secret {
	switch {
	case file != "" && env != "":
		v.addf(join(p, fileKey), "set either %s or %s, not both", fileKey, envKey)
	case file != "":
		if !filepath.IsAbs(file) && v.dir != "" {
			file = filepath.Join(v.dir, file)
		}
		b, err := readSecret(file)
		if err != nil {
			v.addf(join(p, fileKey), "cannot read the secret: %v", err)
			return ""
		}
		return promconfig.Secret(strings.TrimRight(string(b), "\r\n"))
	case env != "":
		s, ok := os.LookupEnv(env)
		if !ok {
			v.addf(join(p, envKey), "environment variable %s is not set", env)
		}
		return promconfig.Secret(s)
	case required:
		v.addf(p, "a username needs %s or %s", fileKey, envKey)
	}
	return ""
}

// maxSecretSize bounds a secret file: a password, token or client secret is
// far smaller, and a file named by mistake (a log, /dev/zero) must not be
// read into memory.
const maxSecretSize = 64 << 10

func readSecret(file string) ([]byte, error) {
	f, err := openRegular(file, maxSecretSize)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretSize {
		return nil, tooLarge(file, maxSecretSize)
	}
	return b, nil
}

// maxTLSFileSize bounds a CA bundle, certificate or key file; the system's
// whole CA bundle is about 200 KiB.
const maxTLSFileSize = 4 << 20

// openRegular opens a file the configuration names, refusing anything but
// a regular file of at most limit bytes: a FIFO would block the load (and
// a reload) until something writes to it, and a device such as /dev/zero
// never ends. O_NONBLOCK keeps the open itself from waiting on a FIFO.
func openRegular(file string, limit int64) (*os.File, error) {
	f, err := os.OpenFile(file, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, err
	}
	fi, err := f.Stat()
	switch {
	case err != nil:
	case !fi.Mode().IsRegular():
		err = CheckRegular(file, fi)
	case fi.Size() > limit:
		err = tooLarge(file, limit)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// CheckRegular refuses a file that is not a regular file (a FIFO, a
// device, a directory, a socket), saying what it is: files the exporter and
// the receiver read or append to must not block them or swallow what they
// write.
func CheckRegular(file string, fi os.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return fmt.Errorf("%s is not a regular file (%s)", file, fileKind(fi.Mode()))
}

func tooLarge(file string, limit int64) error {
	if limit >= 1<<20 {
		return fmt.Errorf("%s is larger than %d MiB", file, limit>>20)
	}
	return fmt.Errorf("%s is larger than %d KiB", file, limit>>10)
}

func fileKind(m os.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&os.ModeNamedPipe != 0:
		return "a named pipe"
	case m&os.ModeSocket != 0:
		return "a socket"
	case m&os.ModeDevice != 0:
		return "a device"
	}
	return m.Type().String()
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
			v.warnf(p+".member_sites", "no entry for %s: unless a member's replica-set tag %q names its site, the HA model treats it as unplaced (never a survivor of a site loss, no site of its own)", strings.Join(unlisted, ", "), orDefault(r.SiteTag, DefaultMongoSiteTag))
		}
	}
	v.credentials(p, &r.Credentials, true)
	if r.AuthSource == "" {
		r.AuthSource = DefaultMongoAuthSource
	}
	if r.SiteTag == "" {
		r.SiteTag = DefaultMongoSiteTag
	}
	for member, site := range r.MemberSites {
		if _, _, err := net.SplitHostPort(member); err != nil {
			v.addf(keyPath(p+".member_sites", member), "must be host:port")
		}
		if !v.sites[site] {
			v.addf(keyPath(p+".member_sites", member), "site %q is not declared under sites", site)
		}
	}
	v.optionalTLS(p+".tls_config", r.TLS)
	v.duration(p+".timeout", &r.Timeout, DefaultMongoTimeout)
}

func (v *validator) redis(g *SentinelGroup, p, defaultSite string, names map[string]bool) {
	if g.MasterName == "" {
		g.MasterName = DefaultSentinelMaster
	}
	if g.Name == "" {
		g.Name = g.MasterName
	}
	v.name(p+".name", g.Name, names)
	v.site(p+".site", &g.Site, defaultSite)
	if len(g.Sentinels) == 0 {
		v.addf(p+".sentinels", "at least one Sentinel is required")
	}
	for i := range g.Sentinels {
		s := &g.Sentinels[i]
		sp := fmt.Sprintf("%s.sentinels[%d]", p, i)
		v.hostPort(sp+".address", s.Address)
		if s.Site == "" {
			s.Site = g.Site
		} else if !v.sites[s.Site] {
			v.addf(sp+".site", "site %q is not declared under sites", s.Site)
		}
	}
	v.credentials(p+".sentinel_auth", &g.SentinelAuth, false)
	v.credentials(p+".auth", &g.Auth, false)
	for node, site := range g.NodeSites {
		if !v.sites[site] {
			v.addf(keyPath(p+".node_sites", node), "site %q is not declared under sites", site)
		}
	}
	v.optionalTLS(p+".tls_config", g.TLS)
	v.duration(p+".timeout", &g.Timeout, DefaultRedisTimeout)
}

func (v *validator) rabbit(r *RabbitCluster, p, defaultSite string, names map[string]bool) {
	v.name(p+".name", r.Name, names)
	v.site(p+".site", &r.Site, defaultSite)
	if len(r.URLs) == 0 {
		v.addf(p+".urls", "at least one management API URL is required")
	}
	for i, u := range r.URLs {
		v.url(fmt.Sprintf("%s.urls[%d]", p, i), u, "http", "https")
	}
	if r.Username == "" {
		r.Username = DefaultRabbitMQUser
	}
	v.credentials(p, &r.Credentials, false)
	for node, site := range r.NodeSites {
		if !v.sites[site] {
			v.addf(keyPath(p+".node_sites", node), "site %q is not declared under sites", site)
		}
	}
	switch r.PartitionHandling {
	case "":
		r.PartitionHandling = DefaultPartitionHandling
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
		if l.VHost == "" {
			r.FederationLinks[i].VHost = "/"
		}
	}
	v.optionalTLS(p+".tls_config", r.TLS)
	v.duration(p+".timeout", &r.Timeout, DefaultRabbitMQTimeout)
}

func (v *validator) gateway(g *Gateway, p, defaultSite string, names map[string]bool) {
	u := v.url(p+".url", g.URL, "http", "https")
	if g.Name == "" && u != nil {
		g.Name = u.Host
	}
	if g.Name != "" || u != nil {
		v.name(p+".name", g.Name, names)
	}
	v.site(p+".site", &g.Site, defaultSite)
	v.credentials(p, &g.Credentials, true)
	if g.Capacity < 0 {
		v.addf(p+".capacity", "must not be negative")
	}
	if g.Capacity == 0 {
		g.Capacity = DefaultGatewayCapacity
	}
	v.optionalTLS(p+".tls_config", g.TLS)
	v.duration(p+".timeout", &g.Timeout, DefaultGatewayTimeout)
}

func (v *validator) balancer(b *LoadBalancer, p, defaultSite string, names map[string]bool, servers []IAPServer) {
	v.name(p+".name", b.Name, names)
	v.site(p+".site", &b.Site, defaultSite)
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
		if b.Requests == 0 {
			b.Requests = DefaultVIPRequests
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
	v.duration(p+".timeout", &b.Timeout, DefaultBalancerTimeout)
}

func orDefault(s, def string) string {
	if s == "" {
		return def
	}
	return s
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

// site defaults an empty site to the only declared one and checks it exists.
func (v *validator) site(p string, site *string, defaultSite string) {
	if *site == "" {
		if defaultSite == "" {
			v.addf(p, "is required when more than one site is declared")
			return
		}
		*site = defaultSite
	}
	if !v.sites[*site] {
		v.addf(p, "site %q is not declared under sites", *site)
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

func (v *validator) duration(p string, d *model.Duration, def time.Duration) {
	if *d < 0 {
		v.addf(p, "must not be negative")
	}
	if *d == 0 {
		*d = model.Duration(def)
	}
}

func (v *validator) optionalTLS(p string, t *promconfig.TLSConfig) {
	if t != nil {
		v.tls(p, t)
	}
}

// tls resolves relative file names and builds the TLS configuration once, so
// a missing or bad certificate is refused at load time, not at the first scrape.
func (v *validator) tls(p string, t *promconfig.TLSConfig) {
	if v.dir != "" {
		t.SetDirectory(v.dir)
	}
	if err := t.Validate(); err != nil {
		v.addf(p, "%v", err)
		return
	}
	// prometheus/common reads these files whole, and again for every new
	// connection: check them first, as secrets are.
	bad := false
	for _, f := range []struct{ key, file string }{{"ca_file", t.CAFile}, {"cert_file", t.CertFile}, {"key_file", t.KeyFile}} {
		if f.file == "" {
			continue
		}
		file, err := openRegular(f.file, maxTLSFileSize)
		if err != nil {
			v.addf(join(p, f.key), "%v", err)
			bad = true
			continue
		}
		file.Close()
	}
	if bad {
		return
	}
	if _, err := promconfig.NewTLSConfig(t); err != nil {
		v.addf(p, "%v", err)
	}
}

// keyPath is the path of a map entry whose key is an address, which may
// carry credentials by mistake.
func keyPath(p, key string) string {
	return fmt.Sprintf("%s[%q]", p, RedactURL(key))
}
