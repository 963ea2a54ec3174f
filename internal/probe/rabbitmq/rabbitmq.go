// Package rabbitmq probes RabbitMQ clusters (IAP 2022.1–2023.1) through the
// management API: nodes, partitions, resource alarms, mirrored and quorum
// queue health, and federation links toward a standby data center.
package rabbitmq

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	rabbithole "github.com/michaelklishin/rabbit-hole/v3"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// New builds one Client per configured cluster, probed together as a
// probe.Set.
func New(clusters []config.RabbitCluster, logger *slog.Logger) (*probe.Set[topology.RabbitCluster], error) {
	return probe.NewSet(clusters, func(c config.RabbitCluster) (probe.Target[topology.RabbitCluster], error) {
		return NewClient(c, logger)
	})
}

// maxRequestsAtOnce is how many requests a probe has out at once (overview,
// policies, nodes, federation links, queues): as many connections are kept,
// so that a probe dials none, where a dial costs a round trip or three with
// TLS.
const maxRequestsAtOnce = 5

// Client probes one cluster. Its connections are pooled across probes.
type Client struct {
	cfg       config.RabbitCluster
	logger    *slog.Logger
	timeout   time.Duration
	transport *probe.Transport

	mu    sync.Mutex
	first int // index of the URL to try first: the last one that answered
	// mirroring is what the last probe's version said of classic queue
	// mirroring, nil before the first answer: the policies matter only
	// where it is supported, and are asked for alongside the overview
	// once a version said so.
	mirroring *bool
	// seenLinks are the federation links seen since start: one that
	// vanishes is reported missing, as are the configured ones absent.
	seenLinks map[topology.FederationLink]bool
}

// NewClient builds the client of one cluster.
func NewClient(cfg config.RabbitCluster, logger *slog.Logger) (*Client, error) {
	if len(cfg.URLs) == 0 {
		return nil, fmt.Errorf("rabbitmq cluster %q: no management URL", cfg.Name)
	}
	c := &Client{cfg: cfg, logger: logger, timeout: time.Duration(cfg.Timeout)}
	var err error
	c.transport, err = probe.NewTransport(probe.HTTPOptions{
		TLS:                  cfg.TLS,
		MaxIdleConnsPerHost:  maxRequestsAtOnce,
		ProxyFromEnvironment: true,
	})
	if err != nil {
		return nil, fmt.Errorf("rabbitmq cluster %q: %w", cfg.Name, err)
	}
	return c, nil
}

// Close releases the pooled connections.
func (c *Client) Close() error {
	c.transport.CloseIdleConnections()
	return nil
}

// Probe reads the cluster's state within its timeout and ctx. Any management
// URL serves the whole cluster's view, so the URLs are tried in turn; the
// cluster is down only when none answers.
func (c *Client) Probe(ctx context.Context) topology.RabbitCluster {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	c.mu.Lock()
	first := c.first
	c.mu.Unlock()
	var errs []string
	for i := range c.cfg.URLs {
		at := (first + i) % len(c.cfg.URLs)
		endpoint := strings.TrimSuffix(c.cfg.URLs[at], "/")
		state, err := c.probeEndpoint(ctx, endpoint)
		if err == nil {
			c.setFirst(at)
			return state
		}
		errs = append(errs, fmt.Sprintf("%s: %v", endpoint, err))
		if ctx.Err() != nil {
			break
		}
	}
	// A URL that hangs must not cost every scrape its whole timeout.
	c.setFirst(first + 1)
	return topology.RabbitCluster{Name: c.cfg.Name, Site: c.cfg.Site, Error: strings.Join(errs, "; ")}
}

// Unfinished is the cluster down with err, for a probe cut by the deadline.
func (c *Client) Unfinished(err error) topology.RabbitCluster {
	return topology.RabbitCluster{Name: c.cfg.Name, Site: c.cfg.Site, Error: err.Error()}
}

func (c *Client) setFirst(i int) {
	c.mu.Lock()
	c.first = i % len(c.cfg.URLs)
	c.mu.Unlock()
}

// overviewQuery and nodesQuery ask only for what the probe reads; nodes keeps
// its statistics, which carry partitions, alarms and cluster links
// (measured in PERFORMANCE.md).
var (
	overviewQuery = url.Values{"columns": {"rabbitmq_version,cluster_name"}, "disable_stats": {"true"}}.Encode()
	nodesQuery    = url.Values{"columns": {"name,running,partitions,mem_alarm,disk_free_alarm,cluster_links"}}.Encode()
)

// overview is the part of /api/overview the probe asks for.
type overview struct {
	Version     string `json:"rabbitmq_version"`
	ClusterName string `json:"cluster_name"`
}

func (c *Client) probeEndpoint(ctx context.Context, endpoint string) (topology.RabbitCluster, error) {
	api, err := c.api(ctx, endpoint)
	if err != nil {
		return topology.RabbitCluster{}, err
	}

	// Every request goes at once, so that a probe costs its slowest request
	// rather than three in a row. The queue listing is judged against the
	// cluster's size, version and policies: it is read once those are in,
	// and waits in the connection meanwhile. The probe fails with the first
	// failure in the order of errs; the listing, the costly request, is
	// given up as soon as another fails.
	listCtx, cancelList := context.WithCancel(ctx)
	defer cancelList()
	var (
		ov          overview
		nodes       []rabbithole.NodeInfo
		policies    []rabbithole.Policy
		links       rabbithole.FederationLinkMap
		queues      *queueCounter
		errs        [4]error // overview and policies, nodes, federation links, queues
		judge, rest sync.WaitGroup
	)
	run := func(wg *sync.WaitGroup, i int, f func() error) {
		wg.Go(func() {
			if errs[i] = f(); errs[i] != nil {
				cancelList()
			}
		})
	}
	// The policies go with the overview when the last version seen was a
	// 3.x; before the first answer they wait for it, so that a 4.x broker,
	// which has no mirroring, is never asked.
	c.mu.Lock()
	early := c.mirroring != nil && *c.mirroring
	c.mu.Unlock()
	var earlyPolicies sync.WaitGroup
	var policiesErr error
	if early {
		earlyPolicies.Go(func() {
			policies, policiesErr = api.ListPolicies()
		})
	}
	run(&judge, 0, func() error {
		defer earlyPolicies.Wait() // never outlives the probe, even failed
		if err := c.getJSON(ctx, endpoint, "overview", overviewQuery, &ov); err != nil {
			return err
		}
		mirroring := mirroringSupported(ov.Version)
		c.mu.Lock()
		c.mirroring = &mirroring
		c.mu.Unlock()
		if early {
			earlyPolicies.Wait()
		} else if mirroring {
			policies, policiesErr = api.ListPolicies()
		}
		if !mirroring {
			policies, policiesErr = nil, nil // they matter only to mirrored classic queues
		}
		return wrap("policies", policiesErr)
	})
	run(&judge, 1, func() error {
		return c.getJSON(ctx, endpoint, "nodes", nodesQuery, &nodes)
	})
	run(&rest, 2, func() (err error) {
		links, err = api.ListFederationLinks()
		var apiErr rabbithole.ErrorResponse
		if errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusNotFound {
			return nil // the federation management plugin is not enabled
		}
		return wrap("federation links", err)
	})
	rest.Go(func() {
		errs[3] = c.get(listCtx, endpoint, "queues", queuesQuery, func(body io.Reader) error {
			judge.Wait()
			if err := listCtx.Err(); err != nil {
				return err
			}
			running := make(map[string]bool, len(nodes))
			for _, n := range nodes {
				running[n.Name] = n.IsRunning
			}
			queues = newQueueCounter(running, mirroringSupported(ov.Version), policies, c.cfg.PerQueueMetrics)
			return decodeQueues(body, queues.add)
		})
	})
	judge.Wait()
	rest.Wait()
	for _, err := range errs {
		if err != nil {
			return topology.RabbitCluster{}, err
		}
	}

	return topology.RabbitCluster{
		Name: c.cfg.Name, Site: c.cfg.Site, Up: true,
		Version: ov.Version, ClusterName: ov.ClusterName,
		PartitionHandling:  c.cfg.PartitionHandling,
		MirroringSupported: mirroringSupported(ov.Version),
		Nodes:              c.nodes(nodes),
		FederationLinks:    c.missingLinks(federationLinks(links)),
		Queues:             queues.groups(),
		PerQueue:           queues.perQueue,
	}, nil
}

func wrap(what string, err error) error {
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// mirroringSupported: RabbitMQ 4.0 removed classic queue mirroring.
func mirroringSupported(version string) bool {
	major, _, _ := strings.Cut(version, ".")
	n, err := strconv.Atoi(major)
	return err == nil && n < 4
}

func (c *Client) nodes(infos []rabbithole.NodeInfo) []topology.RabbitNode {
	out := make([]topology.RabbitNode, 0, len(infos))
	for _, n := range infos {
		site := c.cfg.NodeSites[n.Name]
		if site == "" {
			site = c.cfg.Site
		}
		node := topology.RabbitNode{
			Name: n.Name, Site: site, Running: n.IsRunning, Partitions: n.Partitions,
			MemAlarm: n.MemAlarm, DiskAlarm: n.DiskFreeAlarm,
		}
		for _, l := range n.ClusterLinks {
			// CLI tools (rabbitmqctl, rabbitmq-diagnostics) connect for a
			// moment as rabbitmqcli-<id>-<node>; they are not peers.
			if !strings.HasPrefix(l.Name, "rabbitmqcli-") {
				node.Peers = append(node.Peers, l.Name)
			}
		}
		out = append(out, node)
	}
	slices.SortFunc(out, func(a, b topology.RabbitNode) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// LinkMissing is the status of an expected federation link the cluster
// does not run: configured, or seen before.
const LinkMissing = "missing"

// missingLinks adds to the links the cluster runs every expected one it does
// not: configured (federation_links), or seen by an earlier probe. A link
// that vanished reads down rather than disappearing with its series.
func (c *Client) missingLinks(links []topology.FederationLink) []topology.FederationLink {
	key := func(l topology.FederationLink) topology.FederationLink {
		return topology.FederationLink{VHost: l.VHost, Upstream: l.Upstream, Type: l.Type, Name: l.Name}
	}
	present := map[topology.FederationLink]bool{}
	for _, l := range links {
		present[key(l)] = true
	}
	expected := map[topology.FederationLink]bool{}
	for _, l := range c.cfg.FederationLinks {
		k := topology.FederationLink{VHost: l.VHost, Upstream: l.Upstream, Type: "exchange", Name: l.Exchange}
		if l.Queue != "" {
			k.Type, k.Name = "queue", l.Queue
		}
		expected[k] = true
	}
	c.mu.Lock()
	if c.seenLinks == nil {
		c.seenLinks = map[topology.FederationLink]bool{}
	}
	for k := range present {
		c.seenLinks[k] = true
	}
	for k := range c.seenLinks {
		expected[k] = true
	}
	c.mu.Unlock()
	added := false
	for k := range expected {
		if !present[k] {
			k.Status, k.Error = LinkMissing, "expected link not running"
			links = append(links, k)
			added = true
		}
	}
	if added {
		sortLinks(links)
	}
	return links
}

func sortLinks(links []topology.FederationLink) {
	slices.SortFunc(links, func(a, b topology.FederationLink) int {
		return strings.Compare(a.VHost+"\x00"+a.Upstream+"\x00"+a.Type+"\x00"+a.Name,
			b.VHost+"\x00"+b.Upstream+"\x00"+b.Type+"\x00"+b.Name)
	})
}

// federationLinks keeps one link per vhost, upstream and federated exchange
// or queue; where a clustered downstream runs several, the worst status wins.
func federationLinks(raw rabbithole.FederationLinkMap) []topology.FederationLink {
	var out []topology.FederationLink
	index := map[topology.FederationLink]int{}
	for _, m := range raw {
		l := topology.FederationLink{
			VHost: str(m["vhost"]), Upstream: str(m["upstream"]), Type: str(m["type"]),
		}
		l.Name = str(m[l.Type]) // the "exchange" or "queue" key
		key := l
		l.Status, l.Error = str(m["status"]), str(m["error"])
		if i, dup := index[key]; dup {
			if out[i].Status == "running" {
				out[i] = l
			}
			continue
		}
		index[key] = len(out)
		out = append(out, l)
	}
	sortLinks(out)
	return out
}

func str(v any) string {
	switch v := v.(type) {
	case nil:
		return ""
	case string:
		return v
	default:
		return fmt.Sprint(v)
	}
}

// api returns a rabbit-hole client whose requests are bound to ctx.
func (c *Client) api(ctx context.Context, endpoint string) (*rabbithole.Client, error) {
	api, err := rabbithole.NewTLSClient(endpoint, c.cfg.Username, string(c.cfg.Password), boundTransport{ctx, c.transport})
	if err != nil {
		return nil, err
	}
	api.SetTimeout(c.timeout)
	return api, nil
}

// boundTransport ties rabbit-hole's requests, which carry no context, to the
// probe's ctx, and lets them reuse pooled connections: rabbit-hole asks for
// every connection to be closed after one request.
type boundTransport struct {
	ctx  context.Context
	base http.RoundTripper
}

func (t boundTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	r := req.Clone(t.ctx)
	r.Close = false
	res, err := t.base.RoundTrip(r)
	if err == nil {
		res.Body = limitBody(res.Body, maxAnswer)
	}
	return res, err
}

// get sends a GET request to the management API through the pooled
// transport and hands a 200 answer's body to read.
func (c *Client) get(ctx context.Context, endpoint, path, query string, read func(io.Reader) error) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, endpoint+"/api/"+path+"?"+query, nil)
	if err != nil {
		return err
	}
	req.SetBasicAuth(c.cfg.Username, string(c.cfg.Password))
	res, err := c.transport.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return fmt.Errorf("%s: %s", path, res.Status)
	}
	limit := int64(maxAnswer)
	if path == "queues" {
		limit = maxQueuesAnswer
	}
	body := limitBody(res.Body, limit)
	if err := read(body); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	// Drain what is left, so the connection goes back to the pool.
	_, _ = io.Copy(io.Discard, body)
	return nil
}

func (c *Client) getJSON(ctx context.Context, endpoint, path, query string, v any) error {
	return c.get(ctx, endpoint, path, query, func(body io.Reader) error {
		return json.NewDecoder(body).Decode(v)
	})
}
