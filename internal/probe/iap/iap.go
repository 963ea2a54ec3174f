// Package iap probes Itential Automation Platform servers over their REST
// API: health, versions, applications, adapters and the task and job
// workers that tell an active server from a standby. It knows nothing of
// Prometheus; the IAP collector and the remediation receiver both use it.
package iap

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// pageSize is IAP's default list limit, asked for explicitly.
const pageSize = 25

// maxPages stops paging through a list that never ends.
const maxPages = 400

// maxPagesInFlight bounds the pages of one list asked for at once.
const maxPagesInFlight = 4

// Client probes the configured IAP servers. Unlike the other components'
// Clients it covers the whole iap section, not one target, and there is no
// probe.Set of it: the servers of one cluster share one login, and the
// remediation receiver addresses the servers by name. It keeps one
// connection pool per server and one login per cluster across calls; it is
// safe for concurrent use. Close releases the connections.
type Client struct {
	cfg           config.IAP
	logger        *slog.Logger
	healthTimeout time.Duration
	servers       []*server
}

// NewClient builds a Client for the iap section of the configuration, each
// server with its own Auth, TLS and Timeout (the configuration gives a server
// that names none the section's).
func NewClient(cfg config.IAP, logger *slog.Logger) (*Client, error) {
	p := &Client{cfg: cfg, logger: logger, healthTimeout: time.Duration(cfg.HealthTimeout)}
	sessions := map[string]*session{}
	for _, sc := range cfg.Servers {
		base, err := url.Parse(sc.URL)
		if err != nil {
			// url.Error quotes the URL, which may carry a password.
			return nil, fmt.Errorf("iap server %s: url %q is not a URL", sc.Name, config.RedactURL(sc.URL))
		}
		client, err := newHTTPClient(sc.TLS)
		if err != nil {
			return nil, fmt.Errorf("iap server %s: %w", sc.Name, err)
		}
		s := &server{
			cfg:     sc,
			base:    base,
			client:  client,
			timeout: time.Duration(sc.Timeout),
		}
		var auth config.IAPAuth
		if sc.Auth != nil {
			auth = *sc.Auth
		}
		if auth.Enabled() {
			// Servers of one cluster share a token; a different account
			// (a server's own auth) gets its own session.
			key := sc.Cluster + "\x00" + auth.Username + "\x00" + auth.ClientID
			if sessions[key] == nil {
				sessions[key] = newSession(auth)
			}
			s.session = sessions[key]
		}
		p.servers = append(p.servers, s)
	}
	return p, nil
}

// Close releases the pooled connections.
func (p *Client) Close() error {
	for _, s := range p.servers {
		s.client.CloseIdleConnections()
	}
	return nil
}

// Probe asks every server for its state, concurrently and within ctx. A
// server that fails is reported down (or with its API facts unknown), never
// as an error of the whole probe. The result follows the configured order.
func (p *Client) Probe(ctx context.Context) topology.IAPServers {
	out := make(topology.IAPServers, len(p.servers))
	var wg sync.WaitGroup
	for i, s := range p.servers {
		wg.Go(func() { out[i] = p.probe(ctx, s) })
	}
	wg.Wait()
	return out
}

func (p *Client) server(name string) (*server, error) {
	for _, s := range p.servers {
		if s.cfg.Name == name {
			return s, nil
		}
	}
	return nil, fmt.Errorf("no IAP server named %q is configured", name)
}

func (p *Client) probe(ctx context.Context, s *server) topology.IAPServer {
	out := topology.IAPServer{
		Name:         s.cfg.Name,
		URL:          s.cfg.URL,
		Site:         s.cfg.Site,
		DeclaredRole: s.cfg.Role,
		// Resolved by the config loader: named, else the site's own, else none.
		Redis:    s.cfg.Redis,
		RabbitMQ: s.cfg.RabbitMQ,
	}
	if out.DeclaredRole == "" {
		out.DeclaredRole = config.RoleActive
	}

	answered, d, dErr := p.ask(ctx, s, &out)
	// IAP lists every dependency it uses: a release without RabbitMQ
	// (2023.2 on) does not depend on a cluster even if its site has one.
	if out.Services != nil && !hasService(out.Services, "rabbitmq") {
		out.RabbitMQ = ""
	}
	if !answered || s.session == nil {
		return out
	}
	d.apply(&out)
	if dErr != nil {
		out.APIUp = topology.False
		if out.Error != "" {
			out.Error += "; "
		}
		out.Error += dErr.Error()
		p.logger.Debug("IAP API call failed", "server", s.cfg.Name, "err", dErr)
	} else {
		out.APIUp = topology.True
	}
	return out
}

// ask makes the server's calls: /health/status and, with credentials, the
// authenticated ones, whose answers count only if the health check answered.
func (p *Client) ask(ctx context.Context, s *server, out *topology.IAPServer) (answered bool, d details, err error) {
	switch {
	case s.session == nil:
		return p.health(ctx, s, out), d, nil
	case !s.session.loggedIn(ctx, s):
		// No token yet: log in through a server known to answer. A login
		// holds the cluster's session, and one sent to a hung server would
		// keep the cluster's other servers waiting until it timed out.
		if answered = p.health(ctx, s, out); answered {
			d, err = p.details(ctx, s)
		}
		return answered, d, err
	}
	// The authenticated calls need nothing from /health/status, so they go
	// at the same time: a scrape costs one round trip, not two. A server
	// whose health check does not answer is down whatever the others say;
	// its calls are cut short.
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		d, err = p.details(ctx, s)
	}()
	if answered = p.health(ctx, s, out); !answered {
		cancel()
	}
	<-done
	return answered, d, err
}

func hasService(svcs []topology.IAPService, name string) bool {
	for _, s := range svcs {
		if s.Name == name {
			return true
		}
	}
	return false
}

// health asks /health/status (no auth, short timeout) and reports whether
// the server answered at all: a server that answers 503 is not up, but its
// workers may still run and are worth asking about.
func (p *Client) health(ctx context.Context, s *server, out *topology.IAPServer) (answered bool) {
	ctx, cancel := context.WithTimeout(ctx, p.healthTimeout)
	defer cancel()
	b, resp, err := s.do(ctx, http.MethodGet, "/health/status", nil, nil)
	if resp == nil {
		out.Error = err.Error()
		return false
	}
	h, decodeErr := decodeHealthStatus(b)
	if decodeErr == nil {
		out.ServerID = h.ServerID
		out.Services = h.services()
		out.AppsHealthy = summary(h.Apps)
		out.AdaptersHealthy = summary(h.Adapters)
	}
	switch {
	case err != nil:
		out.Error = err.Error()
	case decodeErr != nil:
		out.Error = decodeErr.Error()
	default:
		out.Up = true
	}
	return true
}

// details is what the authenticated calls say about a server.
type details struct {
	info              serverInfo
	apps, adapters    []topology.IAPModule
	work              workers
	profileConfigured topology.Tristate
	serverConfig      serverConfig
}

// details makes the authenticated calls concurrently under the server's
// timeout, so that a hung server costs the timeout once. Each call fills its
// own fields; a failed call leaves them unknown.
func (p *Client) details(ctx context.Context, s *server) (details, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()

	var (
		d    details
		errs = make([]error, 5)
		wg   sync.WaitGroup
	)
	wg.Go(func() {
		var b []byte
		if b, errs[0] = s.call(ctx, http.MethodGet, "/health/server"); errs[0] == nil {
			d.info, errs[0] = decodeServerInfo(b)
		}
	})
	wg.Go(func() { d.apps, errs[1] = s.modules(ctx, "/health/applications", false) })
	wg.Go(func() { d.adapters, errs[2] = s.modules(ctx, "/health/adapters", true) })
	wg.Go(func() { d.work, errs[3] = s.workers(ctx) })
	wg.Go(func() {
		b, err := s.call(ctx, http.MethodGet, "/profiles")
		switch {
		case hasStatus(err, http.StatusNotFound): // Platform 6 has no profiles, but its configuration
			b, err = s.call(ctx, http.MethodGet, "/server/config")
			switch {
			case hasStatus(err, http.StatusNotFound):
			case err != nil:
				errs[4] = err
			default:
				d.serverConfig, errs[4] = decodeServerConfig(b)
			}
		case err != nil:
			errs[4] = err
		default:
			d.profileConfigured, errs[4] = decodeProfiles(b)
		}
	})
	wg.Wait()

	var msgs []string
	for _, err := range errs {
		if err != nil {
			msgs = append(msgs, err.Error())
		}
	}
	if len(msgs) > 0 {
		return d, errors.New(strings.Join(msgs, "; "))
	}
	return d, nil
}

func (d details) apply(out *topology.IAPServer) {
	out.Release = d.info.Release
	if out.Release == "" { // Platform 6 reports its version only
		out.Release = d.info.Version
	}
	out.Version = d.info.Version
	out.Applications, out.Adapters = d.apps, d.adapters
	out.TaskWorker, out.JobWorker = d.work.Task, d.work.Job
	// The profile is the configured setting up to 2023.2; Platform 6 has
	// task_worker_enabled and job_worker_enabled in /server/config, and
	// says the first again as the task worker's startupValue.
	out.ConfiguredActive = d.profileConfigured
	if out.ConfiguredActive == topology.Unknown {
		out.ConfiguredActive = d.serverConfig.Task
	}
	if out.ConfiguredActive == topology.Unknown {
		out.ConfiguredActive = d.work.TaskAtStartup
	}
	out.ConfiguredJobWorker = d.serverConfig.Job
}

// workers reads the worker state: workers/status on 2023.1 and later, the
// old /workflow_engine/active (task worker only) before.
func (s *server) workers(ctx context.Context) (workers, error) {
	b, err := s.call(ctx, http.MethodGet, "/workflow_engine/workers/status")
	if err == nil {
		return decodeWorkers(b)
	}
	if !hasStatus(err, http.StatusNotFound) {
		return workers{}, err
	}
	if b, err = s.call(ctx, http.MethodGet, "/workflow_engine/active"); err != nil {
		return workers{}, err
	}
	active, err := decodeActive(b)
	return workers{Task: topology.TristateOf(active)}, err
}

// modules reads an application or adapter list, pageSize modules a page.
// When the first page says how many there are, the other pages are asked for
// at once, maxPagesInFlight at a time; without a total (it is assumed, not
// documented) they are asked for one after another until a short page.
func (s *server) modules(ctx context.Context, path string, adapters bool) ([]topology.IAPModule, error) {
	first, err := s.modulePage(ctx, path, 0, adapters)
	if err != nil {
		return nil, err
	}
	if first.Total < 0 {
		return s.modulesInSeries(ctx, path, adapters, first.Modules)
	}
	if len(first.Modules) < pageSize || len(first.Modules) >= first.Total {
		return first.Modules, nil
	}
	n := (first.Total + pageSize - 1) / pageSize
	if n > maxPages {
		return nil, fmt.Errorf("%s: more than %d pages", path, maxPages)
	}
	pages := make([][]topology.IAPModule, n)
	pages[0] = first.Modules
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(maxPagesInFlight)
	for i := 1; i < n; i++ {
		g.Go(func() error {
			page, err := s.modulePage(gctx, path, i*pageSize, adapters)
			pages[i] = page.Modules
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return slices.Concat(pages...), nil
}

// modulesInSeries asks for the pages after the first one by one: without a
// total only a short page ends the list.
func (s *server) modulesInSeries(ctx context.Context, path string, adapters bool, all []topology.IAPModule) ([]topology.IAPModule, error) {
	for pages, last := 1, len(all); last >= pageSize; pages++ {
		if pages == maxPages {
			return nil, fmt.Errorf("%s: more than %d pages", path, maxPages)
		}
		page, err := s.modulePage(ctx, path, len(all), adapters)
		if err != nil {
			return nil, err
		}
		all = append(all, page.Modules...)
		last = len(page.Modules)
	}
	return all, nil
}

func (s *server) modulePage(ctx context.Context, path string, skip int, adapters bool) (modulePage, error) {
	b, err := s.call(ctx, http.MethodGet, fmt.Sprintf("%s?skip=%d&limit=%d", path, skip, pageSize))
	if err != nil {
		return modulePage{}, err
	}
	page, err := decodeModulePage(b, adapters)
	if err != nil {
		return modulePage{}, fmt.Errorf("%s: %w", path, err)
	}
	return page, nil
}

// Activate starts the named server's task and job workers (promotion of a
// standby). Releases before 2023.1 have no job worker route.
func (p *Client) Activate(ctx context.Context, name string) error {
	return p.setWorkers(ctx, name, "activate")
}

// Deactivate stops the named server's task and job workers (fencing).
func (p *Client) Deactivate(ctx context.Context, name string) error {
	return p.setWorkers(ctx, name, "deactivate")
}

func (p *Client) setWorkers(ctx context.Context, name, verb string) error {
	s, err := p.server(name)
	if err != nil {
		return err
	}
	if s.session == nil {
		return fmt.Errorf("iap server %s: worker routes need credentials, none configured", name)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	if _, err := s.call(ctx, http.MethodPost, "/workflow_engine/"+verb); err != nil {
		return fmt.Errorf("iap server %s: %w", name, err)
	}
	if _, err := s.call(ctx, http.MethodPost, "/workflow_engine/jobWorker/"+verb); err != nil && !hasStatus(err, http.StatusNotFound) {
		return fmt.Errorf("iap server %s: %w", name, err)
	}
	return nil
}
