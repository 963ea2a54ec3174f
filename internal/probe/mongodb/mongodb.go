// Package mongodb probes MongoDB replica sets: the set's own status and
// configuration through one pooled client per set and, when asked, every
// member's own hello over a direct connection, so that two primaries in two
// views (split brain) are seen and an unreachable member is told apart from
// one the set reports unhealthy.
//
// It knows nothing of Prometheus: the collector and the remediation
// receiver both use it.
package mongodb

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	promconfig "github.com/prometheus/common/config"
	"go.mongodb.org/mongo-driver/v2/bson"
	"go.mongodb.org/mongo-driver/v2/event"
	"go.mongodb.org/mongo-driver/v2/mongo"
	"go.mongodb.org/mongo-driver/v2/mongo/options"
	"go.mongodb.org/mongo-driver/v2/mongo/readpref"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Client reads the state of one replica set. Its clients are pooled and
// reused across calls; it is safe for concurrent use.
type Client struct {
	cfg     config.ReplicaSet
	timeout time.Duration
	siteTag string
	logger  *slog.Logger
	base    func() *options.ClientOptions
	set     *mongo.Client

	// warm is set once the set client has found the primary (or given up
	// waiting for it) on its first probe.
	warm atomic.Bool

	mu      sync.Mutex
	direct  map[string]*memberClient // by member host:port
	members []string                 // hosts of the last configuration read
	// unplacedWarned are the members already logged as without a site.
	unplacedWarned map[string]bool
}

// New builds one Client per configured replica set, probed together as a
// probe.Set.
func New(sets []config.ReplicaSet, logger *slog.Logger) (*probe.Set[topology.ReplicaSet], error) {
	return probe.NewSet(sets, func(rs config.ReplicaSet) (probe.Target[topology.ReplicaSet], error) {
		return NewClient(rs, logger)
	})
}

// NewClient builds the Client of one configured replica set. No connection
// is made until the first Probe.
func NewClient(cfg config.ReplicaSet, logger *slog.Logger) (*Client, error) {
	p := &Client{
		cfg:     cfg,
		timeout: time.Duration(cfg.Timeout),
		siteTag: cfg.SiteTag,
		logger:  logger,

		unplacedWarned: map[string]bool{},
		direct:         map[string]*memberClient{},
	}
	base, err := clientOptions(cfg, p.timeout)
	if err != nil {
		return nil, fmt.Errorf("mongodb %s: %w", cfg.Name, err)
	}
	p.base = base
	p.set, err = mongo.Connect(base())
	if err != nil {
		return nil, fmt.Errorf("mongodb %s: %w", cfg.Name, err)
	}
	return p, nil
}

// clientOptions returns a builder of fresh client options for cfg: options
// are mutable, so every client gets its own.
func clientOptions(cfg config.ReplicaSet, timeout time.Duration) (func() *options.ClientOptions, error) {
	var tlsConfig *tls.Config
	if cfg.TLS != nil {
		var err error
		if tlsConfig, err = promconfig.NewTLSConfig(cfg.TLS); err != nil {
			return nil, fmt.Errorf("tls_config: %w", err)
		}
	}
	build := func() *options.ClientOptions {
		o := options.Client().ApplyURI(cfg.URI).
			SetAppName("iap_ha_exporter").
			SetConnectTimeout(timeout).
			SetServerSelectionTimeout(timeout)
		if cfg.Username != "" {
			// The driver needs the source spelled out: it asks the server
			// for the user's mechanisms as "<authSource>.<user>".
			o.SetAuth(options.Credential{Username: cfg.Username, Password: string(cfg.Password), AuthSource: cfg.AuthSource})
		}
		if tlsConfig != nil {
			o.SetTLSConfig(tlsConfig.Clone())
		}
		return o
	}
	return build, build().Validate()
}

// Name is the replica set's name as configured.
func (p *Client) Name() string { return p.cfg.Name }

// Unfinished is the set unread with err, for a probe cut by the deadline.
func (p *Client) Unfinished(err error) topology.ReplicaSet {
	return topology.ReplicaSet{Name: p.cfg.Name, Error: err.Error()}
}

// Probe reads the set's state within ctx and the configured timeout. A set
// that cannot be read comes back with Up false and the reason in Error.
func (p *Client) Probe(ctx context.Context) topology.ReplicaSet {
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	if !p.warm.Load() {
		p.findPrimary(ctx)
	}
	// The status, the configuration and every member's own hello go at
	// once. hello goes to the members of the last configuration read, which
	// nearly always is this one; a member the new one adds is asked after.
	var (
		status             replSetStatus
		conf               replSetConfig
		statusErr, confErr error
		views              map[string]memberView
		wg                 sync.WaitGroup
	)
	wg.Go(func() {
		raw, err := p.command(ctx, p.set, "replSetGetStatus")
		if err == nil {
			status, err = decodeStatus(raw)
		}
		statusErr = err
	})
	wg.Go(func() {
		raw, err := p.command(ctx, p.set, "replSetGetConfig")
		if err == nil {
			conf, err = decodeConfig(raw)
		}
		confErr = err
	})
	// The members' hello get 90% of the time left. A member that accepts
	// connections but never answers would otherwise hold the probe until
	// ctx's deadline, the moment the scrape gives it up, and the set's status
	// and configuration, in long before, would be lost with it; the rest is
	// ample to return them. A hello still pending then is given up and its
	// member reported unreachable.
	deadline, _ := ctx.Deadline() // set above
	membersCtx, cancelMembers := context.WithDeadline(ctx, time.Now().Add(time.Until(deadline)*9/10))
	defer cancelMembers()
	if p.cfg.DirectMembers {
		wg.Go(func() { views = p.memberViews(membersCtx, p.lastMembers()) })
	}
	wg.Wait()
	for _, err := range []error{statusErr, confErr} {
		if err != nil {
			return topology.ReplicaSet{Name: p.cfg.Name, Error: err.Error()}
		}
	}

	if p.cfg.DirectMembers {
		p.askAdded(membersCtx, conf, views)
	}
	rs := replicaSet(p.cfg.Name, p.cfg.MemberSites, p.siteTag, status, conf, views)
	p.warnUnplaced(rs)
	return rs
}

// warnUnplaced logs, once per member, a member placed neither by
// member_sites nor by its site tag: the HA model leaves it out of every
// site, which an operator must hear of.
func (p *Client) warnUnplaced(rs topology.ReplicaSet) {
	unplaced := rs.Unplaced()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, m := range unplaced {
		if !p.unplacedWarned[m] {
			p.logger.Warn("member has no site: set member_sites or its replica-set tag", "set", p.cfg.Name, "member", m, "site_tag", p.siteTag)
			p.unplacedWarned[m] = true
		}
	}
}

// findPrimary gives a fresh client a moment to find the primary, so that
// the first probe reads the primary's view rather than that of whichever
// member answered first (commands may go to any member when there is no
// primary). Later probes use the driver's settled view of the set.
func (p *Client) findPrimary(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, p.timeout/4)
	defer cancel()
	if err := p.set.Ping(ctx, readpref.Primary()); err != nil {
		p.logger.Debug("no primary found yet", "set", p.cfg.Name, "err", err)
	}
	p.warm.Store(true)
}

// memberViews asks the members at hosts for their own hello, concurrently.
// A member that does not answer within ctx is reported unreachable: whether
// it refuses connections or hangs, the exporter cannot read it.
func (p *Client) memberViews(ctx context.Context, hosts []string) map[string]memberView {
	clients := p.directClients(hosts)

	views := make(map[string]memberView, len(hosts))
	var mu sync.Mutex
	var wg sync.WaitGroup
	for host, client := range clients {
		wg.Go(func() {
			v := memberView{}
			raw, err := p.hello(ctx, client)
			if err == nil {
				v.hello, err = decodeHello(raw)
			}
			if err != nil {
				p.logger.Debug("member did not answer hello", "set", p.cfg.Name, "member", host, "err", err)
			}
			v.reachable = err == nil
			mu.Lock()
			views[host] = v
			mu.Unlock()
		})
	}
	wg.Wait()
	return views
}

// askAdded records conf's members and adds to views the hello of those not
// asked yet: members the configuration has just added.
func (p *Client) askAdded(ctx context.Context, conf replSetConfig, views map[string]memberView) {
	hosts := make([]string, len(conf.Config.Members))
	for i, m := range conf.Config.Members {
		hosts[i] = m.Host
	}
	p.setMembers(hosts)
	var added []string
	for _, h := range hosts {
		if _, asked := views[h]; !asked {
			added = append(added, h)
		}
	}
	maps.Copy(views, p.memberViews(ctx, added))
}

// hello asks one member for its own hello, giving up at the next heartbeat
// its client's monitor fails. A direct client has only that member to
// select, so while the member is down server selection waits for it until
// the deadline; the monitor, which selection asks to check the member again
// every 500ms, knows sooner. A refused member is thus given up within about
// one heartbeat, and a member that comes back is selected at the first
// heartbeat that succeeds.
func (p *Client) hello(ctx context.Context, c *memberClient) (bson.Raw, error) {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	failed := c.nextFailure()
	go func() {
		select {
		case <-failed:
			cancel(c.heartbeatErr())
		case <-ctx.Done():
		}
	}()
	raw, err := p.command(ctx, c.Client, "hello")
	if err != nil && context.Cause(ctx) != ctx.Err() {
		return nil, fmt.Errorf("hello: heartbeat failed: %w", context.Cause(ctx))
	}
	return raw, err
}

// memberClient is the pooled direct client of one member, with what its
// monitor last said.
type memberClient struct {
	*mongo.Client

	mu      sync.Mutex
	lastErr error         // of the last failed heartbeat
	failed  chan struct{} // closed at the next failed heartbeat
}

// connectMember builds the direct client of the member at host.
func (p *Client) connectMember(host string) (*memberClient, error) {
	c := &memberClient{failed: make(chan struct{})}
	monitor := &event.ServerMonitor{
		ServerHeartbeatFailed: func(e *event.ServerHeartbeatFailedEvent) { c.heartbeatFailed(e.Failure) },
	}
	var err error
	c.Client, err = mongo.Connect(p.base().SetHosts([]string{host}).SetDirect(true).SetServerMonitor(monitor))
	return c, err
}

func (c *memberClient) heartbeatFailed(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.lastErr = err
	close(c.failed)
	c.failed = make(chan struct{})
}

// nextFailure is closed when a heartbeat fails after this call.
func (c *memberClient) nextFailure() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.failed
}

func (c *memberClient) heartbeatErr() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.lastErr
}

// directClients returns a pooled direct client per host, creating missing
// ones.
func (p *Client) directClients(hosts []string) map[string]*memberClient {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make(map[string]*memberClient, len(hosts))
	for _, h := range hosts {
		c, ok := p.direct[h]
		if !ok {
			var err error
			c, err = p.connectMember(h)
			if err != nil { // options were validated in New; a host string may still be bad
				p.logger.Warn("cannot build a direct client", "set", p.cfg.Name, "member", h, "err", err)
				continue
			}
			p.direct[h] = c
		}
		out[h] = c
	}
	return out
}

func (p *Client) lastMembers() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.members
}

// setMembers records the members of the configuration just read and closes
// the direct clients of members that left the set.
func (p *Client) setMembers(hosts []string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.members = hosts
	for h, c := range p.direct {
		if !slices.Contains(hosts, h) {
			go func() {
				ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
				defer cancel()
				c.Disconnect(ctx)
			}()
			delete(p.direct, h)
		}
	}
}

// anyMember lets commands run while the set has no primary (RunCommand
// ignores the client's read preference and defaults to the primary).
var anyMember = options.RunCmd().SetReadPreference(readpref.PrimaryPreferred())

// command runs an admin command. A pooled connection to a member that has
// just died fails once with a network error, and a command running beside
// it with the driver's "pool cleared" error; the driver then forgets that
// server, so one retry within the deadline reads the set's new state.
func (p *Client) command(ctx context.Context, c *mongo.Client, name string) (bson.Raw, error) {
	cmd := bson.D{{Key: name, Value: 1}}
	raw, err := c.Database("admin").RunCommand(ctx, cmd, anyMember).Raw()
	if err != nil && memberLost(err) && ctx.Err() == nil {
		raw, err = c.Database("admin").RunCommand(ctx, cmd, anyMember).Raw()
	}
	if err != nil {
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	return raw, nil
}

// memberLost reports an error that says the server the command went to is
// gone: a network error, or the pool cleared by another command's (the
// driver marks that error retryable).
func memberLost(err error) bool {
	var retryable interface{ Retryable() bool }
	return mongo.IsNetworkError(err) || (errors.As(err, &retryable) && retryable.Retryable())
}

// Close disconnects every client.
func (p *Client) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), p.timeout)
	defer cancel()
	p.mu.Lock()
	defer p.mu.Unlock()
	errs := []error{p.set.Disconnect(ctx)}
	for h, c := range p.direct {
		errs = append(errs, c.Disconnect(ctx))
		delete(p.direct, h)
	}
	return errors.Join(errs...)
}
