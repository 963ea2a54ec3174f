// Package gateway probes Itential Automation Gateways (IAG 4): whether each
// answers its liveness route, which versions it runs and how many devices
// each of its inventories holds.
//
// A Client holds one gateway's pooled connections and its session token,
// reused until the gateway answers 401. It knows nothing of Prometheus: the
// exporter's collector and the remediation receiver both use it.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

const (
	apiBase = "/api/v2.0"
	// TopLevel is the inventory name of /api/v2.0/devices (IAG's Ansible devices).
	TopLevel = "devices"
	// pageSize is the page asked for when a device list gives no total.
	pageSize = 1000
	// maxPages bounds paging, against a gateway that ignores offset.
	maxPages = 1000
	// maxBody bounds what is read of one answer (a page of devices with
	// their variables can be large); a larger one is an error, never read
	// whole.
	maxBody = 32 << 20
)

// Inventories are IAG 4's inventory kinds besides the top-level one; each is
// read from /api/v2.0/inventories/<kind>/default/devices.
var Inventories = []string{"netmiko", "nornir", "netconf", "http_requests", "grpc"}

// errUnauthorized marks a 401: the session expired or the token is unknown.
var errUnauthorized = errors.New("401 Unauthorized")

// Client probes one gateway.
type Client struct {
	cfg      config.Gateway
	base     string
	timeout  time.Duration
	capacity int
	http     *http.Client
	logger   *slog.Logger

	// loginSlot lets one request log in at a time; token is the session
	// shared by all requests until a 401.
	loginSlot chan struct{}
	mu        sync.Mutex
	token     string
}

// NewClient builds the client of one configured gateway.
func NewClient(cfg config.Gateway, logger *slog.Logger) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("gateway %q: url %q is not an http(s) URL", cfg.Name, config.RedactURL(cfg.URL))
	}
	// poll, status and every inventory run at once.
	transport, err := probe.NewTransport(probe.HTTPOptions{
		TLS:                  cfg.TLS,
		MaxIdleConnsPerHost:  2 + len(Inventories),
		ProxyFromEnvironment: true,
	})
	if err != nil {
		return nil, fmt.Errorf("gateway %q: %w", cfg.Name, err)
	}
	c := &Client{
		cfg:       cfg,
		base:      strings.TrimRight(cfg.URL, "/") + apiBase,
		timeout:   time.Duration(cfg.Timeout),
		capacity:  cfg.Capacity,
		http:      transport.Client(),
		logger:    logger.With("gateway", cfg.Name),
		loginSlot: make(chan struct{}, 1),
	}
	return c, nil
}

// Close releases the pooled connections.
func (c *Client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// Probe asks the gateway, all at once and within its timeout, for /poll,
// /status and the device count of every inventory. A failure is recorded in
// the result (Up false, Error), never returned: a gateway that is down is a
// fact, not a failure of the probe. Status and devices need credentials and
// are skipped without them.
func (c *Client) Probe(ctx context.Context) topology.Gateway {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	g := c.state()
	var (
		wg               sync.WaitGroup
		pollErr, authErr error
	)
	wg.Go(func() {
		p, err := c.poll(ctx)
		if err != nil {
			pollErr = fmt.Errorf("poll: %w", err)
			return
		}
		g.Up, g.Hostname = true, p.Hostname
	})
	if c.cfg.Username != "" {
		wg.Go(func() { authErr = c.probeAuthenticated(ctx, &g) })
	}
	wg.Wait()

	// When the gateway is down, the other failures only repeat why.
	err := pollErr
	if err == nil {
		err = authErr
	}
	if err != nil {
		g.Error = err.Error()
		c.logger.Debug("gateway probe failed", "up", g.Up, "err", err)
	}
	return g
}

// Unfinished is the gateway down with err, for a probe cut by the deadline.
func (c *Client) Unfinished(err error) topology.Gateway {
	g := c.state()
	g.Error = err.Error()
	return g
}

// state is the gateway as configured, before a probe learns anything.
func (c *Client) state() topology.Gateway {
	return topology.Gateway{
		Name:     c.cfg.Name,
		URL:      c.cfg.URL,
		Site:     c.cfg.Site,
		Capacity: c.capacity,
		Adapter:  c.cfg.Adapter,
	}
}

// probeAuthenticated fills in the versions and device counts of g. It logs
// in first, once, so that a wrong password costs one refused login per
// probe, not one per request.
func (c *Client) probeAuthenticated(ctx context.Context, g *topology.Gateway) error {
	if _, err := c.session(ctx); err != nil {
		return err
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		errs    []error
		devices = map[string]int{}
	)
	wg.Go(func() {
		s, err := c.status(ctx)
		if err != nil {
			mu.Lock()
			errs = append(errs, fmt.Errorf("status: %w", err))
			mu.Unlock()
			return
		}
		g.Version, g.AnsibleVersion = s.Version, s.AnsibleVersion
	})
	for _, inv := range append([]string{TopLevel}, Inventories...) {
		wg.Go(func() {
			n, found, err := c.countDevices(ctx, inventoryPath(inv))
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err != nil:
				errs = append(errs, fmt.Errorf("inventory %s: %w", inv, err))
			case found:
				devices[inv] = n
			}
		})
	}
	wg.Wait()
	if len(devices) > 0 {
		g.Devices = devices
	}
	// Sorted, so that the same failures read the same in every scrape.
	slices.SortFunc(errs, func(a, b error) int { return strings.Compare(a.Error(), b.Error()) })
	return errors.Join(errs...)
}

func inventoryPath(inv string) string {
	if inv == TopLevel {
		return "/devices"
	}
	return "/inventories/" + inv + "/default/devices"
}

func (c *Client) poll(ctx context.Context) (pollAnswer, error) {
	b, err := c.do(ctx, http.MethodGet, "/poll", nil, "")
	if err != nil {
		return pollAnswer{}, err
	}
	return decodePoll(b)
}

func (c *Client) status(ctx context.Context) (statusAnswer, error) {
	b, err := c.authed(ctx, "/status")
	if err != nil {
		return statusAnswer{}, err
	}
	return decodeStatus(b)
}

// countDevices counts the devices of one inventory with the cheapest
// request that yields the total: a page of one device, whose
// meta.total_count is the answer. Without total_count, an empty first page
// means none; otherwise it pages through the list. found is false when the
// gateway has no such inventory (404).
func (c *Client) countDevices(ctx context.Context, path string) (n int, found bool, err error) {
	page := func(offset, limit int) (devicePage, error) {
		b, err := c.authed(ctx, path+"?offset="+strconv.Itoa(offset)+"&limit="+strconv.Itoa(limit))
		if err != nil {
			return devicePage{}, err
		}
		return decodeDevicePage(b)
	}
	first, err := page(0, 1)
	var status statusError
	if errors.As(err, &status) && status.code == http.StatusNotFound {
		return 0, false, nil
	}
	if err != nil {
		return 0, true, err
	}
	if first.Meta.TotalCount != nil {
		return *first.Meta.TotalCount, true, nil
	}
	n = first.size()
	if n == 0 {
		return 0, true, nil
	}
	// Page on until an empty page: a page shorter than asked proves
	// nothing, as a gateway may cap the page size.
	for range maxPages {
		p, err := page(n, pageSize)
		if err != nil {
			return 0, true, err
		}
		if p.size() == 0 {
			return n, true, nil
		}
		n += p.size()
	}
	return 0, true, fmt.Errorf("device list goes on beyond %d pages", maxPages)
}

// authed GETs path with the session token, logging in first when there is
// none and once more when the token has expired.
func (c *Client) authed(ctx context.Context, path string) ([]byte, error) {
	token, err := c.session(ctx)
	if err != nil {
		return nil, err
	}
	b, err := c.do(ctx, http.MethodGet, path, nil, token)
	if !errors.Is(err, errUnauthorized) {
		return b, err
	}
	c.forget(token)
	if token, err = c.session(ctx); err != nil {
		return nil, err
	}
	b, err = c.do(ctx, http.MethodGet, path, nil, token)
	return b, err
}

// session returns the current token, logging in when there is none. One
// request logs in while the others wait for its token.
func (c *Client) session(ctx context.Context) (string, error) {
	select {
	case c.loginSlot <- struct{}{}:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	defer func() { <-c.loginSlot }()

	c.mu.Lock()
	token := c.token
	c.mu.Unlock()
	if token != "" {
		return token, nil
	}
	body, err := json.Marshal(map[string]string{"username": c.cfg.Username, "password": string(c.cfg.Password)})
	if err != nil {
		return "", err
	}
	b, err := c.do(ctx, http.MethodPost, "/login", body, "")
	if err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	if token, err = decodeLogin(b); err != nil {
		return "", fmt.Errorf("login: %w", err)
	}
	c.mu.Lock()
	c.token = token
	c.mu.Unlock()
	return token, nil
}

// KeepLogin gives c the token old holds, where c was built from the same
// settings (a reload that changed nothing of this gateway's): a token lives
// until the gateway refuses it, and a reload is no reason to log in again.
func (c *Client) KeepLogin(old *Client) {
	if !reflect.DeepEqual(c.cfg, old.cfg) {
		return
	}
	old.mu.Lock()
	token := old.token
	old.mu.Unlock()
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == "" {
		c.token = token
	}
}

// forget drops token if it is still the current one, so that of many
// requests refused at once only the first logs in again.
func (c *Client) forget(token string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token == token {
		c.token = ""
	}
}

// statusError is an answer other than 200.
type statusError struct {
	code    int
	message string
}

func (e statusError) Error() string {
	if e.message == "" {
		return "HTTP " + strconv.Itoa(e.code)
	}
	return "HTTP " + strconv.Itoa(e.code) + ": " + e.message
}

func (e statusError) Is(target error) bool {
	return target == errUnauthorized && e.code == http.StatusUnauthorized
}

// do sends one request and returns the body of a 200 answer.
func (c *Client) do(ctx context.Context, method, path string, body []byte, token string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/json")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", token) // raw, no "Bearer"
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxBody {
		return nil, fmt.Errorf("%s %s: answer larger than the %d MiB limit", method, path, maxBody>>20)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, statusError{code: resp.StatusCode, message: truncate(errorMessage(b), 200)}
	}
	return b, nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}
