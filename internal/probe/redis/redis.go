// Package redis probes a Redis Sentinel group: what every configured Sentinel
// says about the master, and the replication state of every data node the
// Sentinels know. It only reads: it never sends a command that changes state
// (no SENTINEL FAILOVER, no CONFIG SET).
//
// A Client keeps one pooled client per Sentinel and per data node across
// probes, so that a scrape costs one pipelined round trip per Sentinel and
// one per node, all concurrent.
package redis

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"slices"
	"strings"
	"sync"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/redis/go-redis/v9"
	"github.com/redis/go-redis/v9/maintnotifications"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// go-redis logs every failed dial to stderr on its own; a dead Sentinel would
// flood the exporter's output. The failures reach the snapshot (and the
// exporter's log) through the probe's results instead.
func init() { redis.SetLogger(silent{}) }

type silent struct{}

func (silent) Printf(context.Context, string, ...any) {}

// Client probes one Sentinel group. It is safe for concurrent use; probes
// of one group run one at a time, each bounded by the group's timeout.
type Client struct {
	cfg     config.SentinelGroup
	logger  *slog.Logger
	timeout time.Duration
	tls     *tls.Config
	// sentinels[i] talks to cfg.Sentinels[i].
	sentinels []*redis.Client

	// mu serialises probes, so that a client is never closed while
	// another probe uses it, and guards nodes.
	mu    sync.Mutex
	nodes map[string]*redis.Client // by address, as the Sentinels name them
}

// New builds one Client per configured Sentinel group, probed together as a
// probe.Set.
func New(groups []config.SentinelGroup, logger *slog.Logger) (*probe.Set[topology.SentinelGroup], error) {
	return probe.NewSet(groups, func(g config.SentinelGroup) (probe.Target[topology.SentinelGroup], error) {
		return NewClient(g, logger)
	})
}

// NewClient builds the Client of one group. It does not connect: the first
// Probe does.
func NewClient(cfg config.SentinelGroup, logger *slog.Logger) (*Client, error) {
	p := &Client{
		cfg:     cfg,
		logger:  logger,
		timeout: time.Duration(cfg.Timeout),
		nodes:   map[string]*redis.Client{},
	}
	if cfg.TLS != nil {
		t, err := promconfig.NewTLSConfig(cfg.TLS)
		if err != nil {
			return nil, fmt.Errorf("redis group %s: %w", cfg.Name, err)
		}
		p.tls = t
	}
	for _, s := range cfg.Sentinels {
		p.sentinels = append(p.sentinels, p.client(s.Address, cfg.SentinelAuth))
	}
	return p, nil
}

// client returns a client for one server: a small pool, no retries (a dead
// server costs its timeout once) and deadlines taken from the context.
func (p *Client) client(addr string, cred config.Credentials) *redis.Client {
	opts := &redis.Options{
		Addr:                     addr,
		Username:                 cred.Username,
		Password:                 string(cred.Password),
		TLSConfig:                p.tls,
		Protocol:                 2, // what every Redis and Sentinel since 2.8 speaks
		DialTimeout:              p.timeout,
		ReadTimeout:              p.timeout,
		WriteTimeout:             p.timeout,
		ContextTimeoutEnabled:    true,
		MaxRetries:               -1,
		DialerRetries:            1,
		PoolSize:                 2,
		MaxIdleConns:             2,
		PipelinePoolSize:         -1, // pipelines share the one small pool
		DisableIdentity:          true,
		MaintNotificationsConfig: &maintnotifications.Config{Mode: maintnotifications.ModeDisabled},
	}
	opts.Dialer = limitReplies(redis.NewDialer(opts))
	return redis.NewClient(opts)
}

// Close releases every pooled connection, after a probe in flight ends.
func (p *Client) Close() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range p.sentinels {
		errs = append(errs, c.Close())
	}
	for addr, c := range p.nodes {
		errs = append(errs, c.Close())
		delete(p.nodes, addr)
	}
	return errors.Join(errs...)
}

// Unfinished is the group with no Sentinel answering, each with err, for a
// probe cut by the deadline.
func (p *Client) Unfinished(err error) topology.SentinelGroup {
	g := topology.SentinelGroup{Name: p.cfg.Name, MasterName: p.cfg.MasterName, Site: p.cfg.Site}
	for _, s := range p.cfg.Sentinels {
		g.Sentinels = append(g.Sentinels, topology.SentinelView{Address: s.Address, Site: s.Site, Error: err.Error()})
	}
	return g
}

// Probe asks every Sentinel about the master and every data node they name
// about its replication, each under the group's timeout and ctx. The nodes
// the last probe knew are asked at the same time as the Sentinels, so that
// a probe costs one round trip to the slowest of them; a node the Sentinels
// newly name is asked once they have answered. A Sentinel or node that
// fails is recorded as down; Probe itself never fails.
func (p *Client) Probe(ctx context.Context) topology.SentinelGroup {
	p.mu.Lock()
	defer p.mu.Unlock()
	ctx, cancel := finishBefore(ctx)
	defer cancel()
	g := topology.SentinelGroup{
		Name:       p.cfg.Name,
		MasterName: p.cfg.MasterName,
		Site:       p.cfg.Site,
		Sentinels:  make([]topology.SentinelView, len(p.sentinels)),
	}
	asked := &questions{byAddr: make(map[string]*question, len(p.nodes))}
	for addr, c := range p.nodes {
		p.ask(ctx, asked, addr, c)
	}
	known := make([][]knownNode, len(p.sentinels))
	var wg sync.WaitGroup
	for i, c := range p.sentinels {
		wg.Go(func() {
			g.Sentinels[i], known[i] = p.askSentinel(ctx, c, p.cfg.Sentinels[i])
		})
	}
	wg.Wait()

	for _, v := range g.Sentinels {
		if v.Up {
			g.Quorum = max(g.Quorum, v.Quorum)
		}
	}
	g.Nodes = p.probeNodes(ctx, asked, mergeKnown(known))
	return g
}

// finishBefore cuts the probe's questions a little before ctx's deadline:
// the probe.Set takes a group unfinished at that deadline as entirely
// unread, so a hung Sentinel whose question ran to the very deadline would
// otherwise now and then hide the Sentinels that did answer.
func finishBefore(ctx context.Context) (context.Context, context.CancelFunc) {
	d, ok := ctx.Deadline()
	if !ok {
		return ctx, func() {}
	}
	return context.WithDeadline(ctx, d.Add(-min(time.Until(d)/10, 100*time.Millisecond)))
}

// askSentinel sends the five read-only questions in one pipeline.
func (p *Client) askSentinel(ctx context.Context, c *redis.Client, s config.Sentinel) (topology.SentinelView, []knownNode) {
	v := topology.SentinelView{Address: s.Address, Site: s.Site}
	scrape := ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	defer cancel()

	name := p.cfg.MasterName
	master := redis.NewMapStringStringCmd(ctx, "sentinel", "master", name)
	replicas := redis.NewMapStringStringSliceCmd(ctx, "sentinel", "replicas", name)
	sentinels := redis.NewMapStringStringSliceCmd(ctx, "sentinel", "sentinels", name)
	ckquorum := redis.NewStringCmd(ctx, "sentinel", "ckquorum", name)
	info := redis.NewStringCmd(ctx, "info", "sentinel")
	cmds := []redis.Cmder{master, replicas, sentinels, ckquorum, info}
	_, err := c.Pipelined(ctx, func(pipe redis.Pipeliner) error {
		for _, cmd := range cmds {
			_ = pipe.Process(ctx, cmd)
		}
		return nil
	})
	// An error no command carries failed the connection itself (dial, AUTH).
	if err != nil && !slices.ContainsFunc(cmds, func(cmd redis.Cmder) bool { return cmd.Err() == err }) {
		v.Error = describe(scrape, err, p.timeout)
		return v, nil
	}

	// Any error but CKQUORUM's NOQUORUM verdict means this Sentinel cannot
	// tell us about the master: unreachable, not monitoring that name, or
	// not allowing us a command (NOPERM).
	for _, cmd := range cmds {
		if err := cmd.Err(); err != nil && !(cmd == ckquorum && isNoQuorum(err)) {
			v.Error = describe(scrape, err, p.timeout)
			return v, nil
		}
	}

	v.Up = true
	decodeMaster(master.Val(), &v)
	v.KnownSentinels = len(sentinels.Val()) + 1 // the others, and itself
	v.CKQuorumOK, v.CKQuorum = decodeCKQuorum(ckquorum.Val(), ckquorum.Err())
	v.TILT = parseInfo(info.Val())["sentinel_tilt"] == "1"

	nodes := []knownNode{{addr: v.MasterAddress, role: topology.RedisMaster}}
	for _, r := range replicas.Val() {
		if n, ok := decodeReplica(r); ok {
			nodes = append(nodes, n)
		}
	}
	return v, nodes
}

// isNoQuorum reports whether err is CKQUORUM's error reply saying the
// Sentinels cannot reach the quorum or the majority.
func isNoQuorum(err error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && strings.HasPrefix(reply.Error(), "NOQUORUM")
}

// describe words an error for the snapshot; a timeout says which limit was
// hit, the target's own timeout or the scrape's deadline (scrape).
func describe(scrape context.Context, err error, timeout time.Duration) string {
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		// The socket deadline can fire a moment before the context's own
		// timer, so compare deadlines rather than ask scrape.Err.
		if d, ok := scrape.Deadline(); ok && !time.Now().Before(d) {
			return "no answer before the scrape deadline"
		}
		return fmt.Sprintf("no answer within %s", timeout)
	}
	return err.Error()
}

// questions are one probe's INFO replication requests, by node address;
// every answer is in once wg is done.
type questions struct {
	wg     sync.WaitGroup
	byAddr map[string]*question
}

// question is one data node's answer to INFO replication, or why none came.
type question struct {
	cancel context.CancelFunc
	info   map[string]string // the answer's fields; nil when there was none
	err    string
}

// ask sends INFO replication to the node at addr through c, in the
// background, under the group's timeout and ctx.
func (p *Client) ask(ctx context.Context, qs *questions, addr string, c *redis.Client) {
	scrape := ctx
	ctx, cancel := context.WithTimeout(ctx, p.timeout)
	q := &question{cancel: cancel}
	qs.byAddr[addr] = q
	qs.wg.Go(func() {
		defer cancel()
		info, err := c.Info(ctx, "replication").Result()
		if err != nil {
			q.err = describe(scrape, err, p.timeout)
			return
		}
		q.info = parseInfo(info)
	})
}

// probeNodes completes asked, the questions sent before the Sentinels
// answered, for the nodes they name: it asks every node not yet asked,
// waits for the answers, and works out each replica's lag from its
// master's offset. When the Sentinels named any node, the clients of nodes
// they no longer name are closed, which also ends a question still waiting
// on one, so that the pool follows the group. When they named none (all
// down, say), every client is kept for the next probe and its answer
// waited for, within the timeout, but not used. Called with p.mu held.
func (p *Client) probeNodes(ctx context.Context, asked *questions, known []knownNode) []topology.RedisNode {
	for _, k := range known {
		if _, ok := asked.byAddr[k.addr]; !ok {
			c := p.client(k.addr, p.cfg.Auth)
			p.nodes[k.addr] = c
			p.ask(ctx, asked, k.addr, c)
		}
	}
	if len(known) > 0 {
		for addr, c := range p.nodes {
			if !slices.ContainsFunc(known, func(k knownNode) bool { return k.addr == addr }) {
				asked.byAddr[addr].cancel()
				_ = c.Close()
				delete(p.nodes, addr)
			}
		}
	}
	asked.wg.Wait()

	nodes := make([]topology.RedisNode, len(known))
	for i, k := range known {
		nodes[i] = p.nodeView(k, asked.byAddr[k.addr])
	}
	offsets := map[string]int64{}
	for _, n := range nodes {
		if n.Up && n.Role == topology.RedisMaster {
			offsets[n.Address] = n.ReplOffset
		}
	}
	for i := range nodes {
		n := &nodes[i]
		if master, ok := offsets[n.MasterAddress]; ok && n.Up && n.Role == topology.RedisReplica {
			n.LagBytes, n.HasLag = max(master-n.ReplOffset, 0), true
		}
	}
	return nodes
}

// nodeView is a node as the Sentinels describe it (k), corrected by its
// own answer to INFO replication where it gave one.
func (p *Client) nodeView(k knownNode, q *question) topology.RedisNode {
	n := topology.RedisNode{
		Address:         k.addr,
		Site:            p.cfg.Site,
		Role:            k.role,
		MasterLinkUp:    k.linkUp,
		ReplicaPriority: k.priority,
		MasterAddress:   k.master,
	}
	if site, ok := p.cfg.NodeSites[k.addr]; ok {
		n.Site = site
	}
	if q.info == nil {
		n.Error = q.err
		n.MasterLinkUp = false // not known to be up, and unusable either way
		return n
	}
	n.Up = true
	decodeReplication(q.info, &n)
	return n
}
