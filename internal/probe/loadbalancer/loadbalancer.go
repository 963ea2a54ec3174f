// Package loadbalancer probes the load balancers in front of the IAP
// servers, in one round trip each: HAProxy through its stats socket (`show
// stat`), any other balancer through its virtual IP (which server answers
// /health/status). It knows nothing of Prometheus: the exporter's collector
// and the remediation receiver both use it.
package loadbalancer

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Client probes one balancer.
type Client struct {
	cfg     config.LoadBalancer
	timeout time.Duration
	logger  *slog.Logger
	// servers are the configured IAP servers the balancer's servers are
	// matched to: by the configured map, by name, then by host:port.
	servers []config.IAPServer
	vip     *vipClient
}

// NewClient builds the client of one configured balancer.
func NewClient(cfg config.LoadBalancer, servers []config.IAPServer, logger *slog.Logger) (*Client, error) {
	// A zero timeout would fail every probe at once with "i/o timeout":
	// config.Load sets the default, a caller that bypasses it hears why.
	if cfg.Timeout <= 0 {
		return nil, fmt.Errorf("load balancer %q: timeout must be positive, got %v", cfg.Name, time.Duration(cfg.Timeout))
	}
	c := &Client{cfg: cfg, timeout: time.Duration(cfg.Timeout), servers: servers, logger: logger.With("balancer", cfg.Name)}
	switch cfg.Kind {
	case config.BalancerHAProxy:
		if cfg.StatsSocket == "" || cfg.Backend == "" {
			return nil, fmt.Errorf("load balancer %q: stats_socket and backend are required", cfg.Name)
		}
	case config.BalancerVIP:
		v, err := newVIPClient(cfg)
		if err != nil {
			return nil, fmt.Errorf("load balancer %q: %w", cfg.Name, err)
		}
		c.vip = v
	default:
		return nil, fmt.Errorf("load balancer %q: unknown kind %q", cfg.Name, cfg.Kind)
	}
	return c, nil
}

// New builds the clients of the configured balancers.
func New(balancers []config.LoadBalancer, servers []config.IAPServer, logger *slog.Logger) (*probe.Set[topology.LoadBalancer], error) {
	return probe.NewSet(balancers, func(b config.LoadBalancer) (probe.Target[topology.LoadBalancer], error) {
		return NewClient(b, servers, logger)
	})
}

// Probe asks the balancer once, within its timeout. A failure is recorded
// in the result (Up false, Error), never returned.
func (c *Client) Probe(ctx context.Context) topology.LoadBalancer {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	lb := c.state()
	var err error
	switch c.cfg.Kind {
	case config.BalancerHAProxy:
		err = c.probeHAProxy(ctx, &lb)
	case config.BalancerVIP:
		err = c.vip.probe(ctx, &lb)
	}
	if err != nil {
		lb.Up, lb.Error = false, err.Error()
		c.logger.Debug("load balancer probe failed", "err", err)
	}
	return lb
}

// Unfinished is the balancer unknown with err, for a probe cut by the deadline.
func (c *Client) Unfinished(err error) topology.LoadBalancer {
	lb := c.state()
	lb.Error = err.Error()
	return lb
}

// Close releases the pooled connections.
func (c *Client) Close() error {
	if c.vip != nil {
		c.vip.http.CloseIdleConnections()
	}
	return nil
}

func (c *Client) state() topology.LoadBalancer {
	return topology.LoadBalancer{Name: c.cfg.Name, Site: c.cfg.Site, Kind: c.cfg.Kind}
}

// match names the configured IAP server a balancer's server is: the
// configured map first, then the same name, then the same host:port as the
// server's URL.
func (c *Client) match(name, addr string) string {
	if s, ok := c.cfg.Servers[name]; ok {
		return s
	}
	for _, s := range c.servers {
		if s.Name == name {
			return s.Name
		}
	}
	if addr == "" {
		return ""
	}
	for _, s := range c.servers {
		if u, err := url.Parse(s.URL); err == nil && hostPort(u) == addr {
			return s.Name
		}
	}
	return ""
}

// hostPort is the URL's host:port with the scheme's default port filled in.
func hostPort(u *url.URL) string {
	if u.Port() != "" {
		return u.Host
	}
	port := "80"
	if u.Scheme == "https" {
		port = "443"
	}
	return net.JoinHostPort(u.Hostname(), port)
}

// dialSocket connects to a stats socket: a Unix socket path, or host:port.
func dialSocket(ctx context.Context, addr string) (net.Conn, error) {
	var d net.Dialer
	if strings.HasPrefix(addr, "/") {
		return d.DialContext(ctx, "unix", addr)
	}
	return d.DialContext(ctx, "tcp", addr)
}
