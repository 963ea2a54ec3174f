package gateway

import (
	"context"
	"crypto/tls"
	"log/slog"
	"maps"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"reflect"
	"strings"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/iagsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// startSim starts a simulated gateway that the test closes.
func startSim(t *testing.T, opts iagsim.Options) *iagsim.Server {
	t.Helper()
	sim, err := iagsim.Start(opts)
	if err != nil {
		t.Fatalf("starting the gateway simulator: %v", err)
	}
	t.Cleanup(func() { sim.Close() })
	return sim
}

func gatewayConfig(sim *iagsim.Server, timeout time.Duration) config.Gateway {
	return config.Gateway{
		Name:        "iag-dc1",
		URL:         sim.URL(),
		Site:        "dc1",
		Credentials: config.Credentials{Username: iagsim.DefaultUsername, Password: iagsim.DefaultPassword},
		Timeout:     model.Duration(timeout),
		Adapter:     "IAG-iag1",
	}
}

func newClient(t *testing.T, cfg config.Gateway) *Client {
	t.Helper()
	c, err := NewClient(configtest.Gateway(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

var simDevices = map[string]int{iagsim.TopLevel: 120, "netmiko": 4380, "netconf": 0}

func TestProbeCountsDevices(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts iagsim.Options
		// inventoryRequests is how many device requests one probe makes.
		inventoryRequests int
	}{
		// One request per inventory: total_count answers at once.
		{name: "total_count", opts: iagsim.Options{}, inventoryRequests: 3},
		// netmiko: 1 + 5 pages of 1000 + 1 empty page; devices: 1 + 1 + 1
		// empty; netconf: its first page is empty.
		{name: "no total_count", opts: iagsim.Options{OmitTotalCount: true}, inventoryRequests: 7 + 3 + 1},
		// Pages capped at 100: a short page must not stop the count.
		// netmiko: 1 + 44 pages + 1 empty; devices: 1 + 2 pages + 1 empty.
		{name: "no total_count, capped pages", opts: iagsim.Options{OmitTotalCount: true, MaxLimit: 100}, inventoryRequests: 46 + 4 + 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.opts.Devices = simDevices
			sim := startSim(t, tc.opts)
			c := newClient(t, gatewayConfig(sim, 10*time.Second))

			got := c.Probe(context.Background())

			want := topology.Gateway{
				Name: "iag-dc1", URL: sim.URL(), Site: "dc1", Up: true, Hostname: "iag1",
				Version: iagsim.DefaultVersion, AnsibleVersion: iagsim.DefaultAnsibleVersion,
				Devices: simDevices, Capacity: config.DefaultGatewayCapacity, Adapter: "IAG-iag1",
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("probe\n got %+v\nwant %+v", got, want)
			}
			st := sim.Stats()
			if n := st.Requests[iagsim.RouteDevices] + st.Requests[iagsim.RouteInventories]; n != tc.inventoryRequests+len(Inventories)-2 {
				// The inventories the gateway does not have cost one 404 each.
				t.Errorf("%d device requests, want %d", n, tc.inventoryRequests+len(Inventories)-2)
			}
		})
	}
}

func TestProbeReusesTokenUntilExpiry(t *testing.T) {
	sim := startSim(t, iagsim.Options{Devices: simDevices})
	c := newClient(t, gatewayConfig(sim, 10*time.Second))

	for _, step := range []struct {
		name    string
		idle    time.Duration
		expire  bool
		logins  int
		devices int
	}{
		{name: "first probe logs in", logins: 1},
		{name: "second probe reuses the token", logins: 1},
		{name: "just under the idle timeout", idle: iagsim.DefaultIdleTimeout - time.Second, logins: 1},
		{name: "idle timeout passed: 401, log in again", idle: iagsim.DefaultIdleTimeout + time.Second, logins: 2},
		{name: "gateway restarted: 401, log in again", expire: true, logins: 3},
	} {
		sim.Advance(step.idle)
		if step.expire {
			sim.ExpireSessions()
		}
		g := c.Probe(context.Background())
		if !g.Up || g.Error != "" || g.Version != iagsim.DefaultVersion || g.Devices["netmiko"] != 4380 {
			t.Errorf("%s: probe %+v", step.name, g)
		}
		if n := sim.Stats().Logins; n != step.logins {
			t.Errorf("%s: %d logins, want %d", step.name, n, step.logins)
		}
	}
}

func TestProbeFaults(t *testing.T) {
	// The requests that answer must do so within it on a busy machine.
	const timeout = 2 * time.Second
	for _, tc := range []struct {
		name      string
		fault     iagsim.Fault
		routes    []string
		password  string
		up        bool
		version   string
		devices   map[string]int
		wantError string
		// loginRequests, when set, is how many logins the probe may try.
		loginRequests int
	}{
		{name: "down", fault: iagsim.Down, wantError: "connection refused"},
		{name: "hung", fault: iagsim.Hung, wantError: "context deadline exceeded"},
		{name: "500", fault: iagsim.Broken, wantError: "poll: HTTP 500: Internal server error: simulated fault"},
		{
			name: "status 500", fault: iagsim.Broken, routes: []string{iagsim.RouteStatus},
			up: true, devices: simDevices, wantError: "status: HTTP 500: Internal server error",
		},
		{
			name: "inventories hung", fault: iagsim.Hung, routes: []string{iagsim.RouteInventories},
			up: true, version: iagsim.DefaultVersion, devices: map[string]int{iagsim.TopLevel: 120},
			wantError: "inventory netmiko: Get",
		},
		{
			name: "login hung", fault: iagsim.Hung, routes: []string{iagsim.RouteLogin},
			up: true, wantError: "login: Post",
		},
		{
			name: "wrong password", password: "not-the-password",
			up: true, wantError: "login: HTTP 401: Invalid username or password", loginRequests: 1,
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the hung cases each wait out the timeout
			sim := startSim(t, iagsim.Options{Devices: simDevices})
			if err := sim.SetFault(tc.fault, tc.routes...); err != nil {
				t.Fatal(err)
			}
			cfg := gatewayConfig(sim, timeout)
			if tc.password != "" {
				cfg.Password = promconfig.Secret(tc.password)
			}
			c := newClient(t, cfg)

			start := time.Now()
			g := c.Probe(context.Background())
			// Generous: a hung gateway costs its timeout once, not once per request.
			if took := time.Since(start); took > 10*timeout {
				t.Errorf("probe took %s with a timeout of %s", took, timeout)
			}
			if g.Up != tc.up || g.Version != tc.version || !maps.Equal(g.Devices, tc.devices) {
				t.Errorf("up %v version %q devices %v, want up %v version %q devices %v",
					g.Up, g.Version, g.Devices, tc.up, tc.version, tc.devices)
			}
			if !strings.Contains(g.Error, tc.wantError) {
				t.Errorf("error %q does not say %q", g.Error, tc.wantError)
			}
			if strings.Contains(g.Error, string(cfg.Password)) {
				t.Errorf("error %q shows the password", g.Error)
			}
			if n := sim.Stats().Requests[iagsim.RouteLogin]; tc.loginRequests > 0 && n != tc.loginRequests {
				t.Errorf("%d login requests, want %d", n, tc.loginRequests)
			}
			if g.Capacity != config.DefaultGatewayCapacity || g.Name != "iag-dc1" || g.Site != "dc1" {
				t.Errorf("identity lost on failure: %+v", g)
			}
		})
	}
}

func TestProbeRecoversAfterDown(t *testing.T) {
	sim := startSim(t, iagsim.Options{Devices: simDevices})
	c := newClient(t, gatewayConfig(sim, 2*time.Second))
	for _, step := range []struct {
		fault iagsim.Fault
		up    bool
	}{{iagsim.Healthy, true}, {iagsim.Down, false}, {iagsim.Healthy, true}} {
		if err := sim.SetFault(step.fault); err != nil {
			t.Fatal(err)
		}
		if g := c.Probe(context.Background()); g.Up != step.up || step.up && g.Error != "" {
			t.Errorf("after fault %q: up %v error %q, want up %v", step.fault, g.Up, g.Error, step.up)
		}
	}
}

func TestProbeWithoutCredentialsOnlyPolls(t *testing.T) {
	sim := startSim(t, iagsim.Options{Devices: simDevices})
	cfg := gatewayConfig(sim, 2*time.Second)
	cfg.Credentials = config.Credentials{}
	g := newClient(t, cfg).Probe(context.Background())
	if !g.Up || g.Error != "" || g.Devices != nil || g.Version != "" {
		t.Errorf("probe %+v, want up with nothing else", g)
	}
	if st := sim.Stats(); len(st.Requests) != 1 || st.Requests[iagsim.RoutePoll] != 1 {
		t.Errorf("requests %v, want one poll", st.Requests)
	}
}

func TestProbeHonoursContext(t *testing.T) {
	sim := startSim(t, iagsim.Options{})
	if err := sim.SetFault(iagsim.Hung); err != nil {
		t.Fatal(err)
	}
	c := newClient(t, gatewayConfig(sim, time.Minute))
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	g := c.Probe(ctx)
	if took := time.Since(start); took > 20*time.Second {
		t.Errorf("probe took %s past a scrape deadline of 200ms", took)
	}
	if g.Up || !strings.Contains(g.Error, "context deadline exceeded") {
		t.Errorf("probe %+v, want down by the deadline", g)
	}
}

func TestSetKeepsOrderAndIsolatesFailures(t *testing.T) {
	healthy := startSim(t, iagsim.Options{Devices: simDevices})
	down := startSim(t, iagsim.Options{})
	if err := down.SetFault(iagsim.Down); err != nil {
		t.Fatal(err)
	}
	a, b := gatewayConfig(down, 2*time.Second), gatewayConfig(healthy, 2*time.Second)
	a.Name, b.Name = "iag-a", "iag-b"
	b.Capacity = 2000
	p, err := New([]config.Gateway{configtest.Gateway(a), configtest.Gateway(b)}, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	gs := p.Probe(context.Background())
	if len(gs) != 2 || gs[0].Name != "iag-a" || gs[0].Up || gs[1].Name != "iag-b" || !gs[1].Up || gs[1].Capacity != 2000 {
		t.Errorf("probe %+v", gs)
	}
}

func TestNewClientRejectsBadURL(t *testing.T) {
	for _, u := range []string{"", "iag1:8083", "ftp://iag1", "http://"} {
		if _, err := NewClient(config.Gateway{Name: "g", URL: u}, slog.New(slog.DiscardHandler)); err == nil {
			t.Errorf("url %q accepted", u)
		}
	}
}

// TestProbeOverTLS checks that tls_config reaches the client: the gateway's
// certificate is trusted only through the configured CA file.
func TestProbeOverTLS(t *testing.T) {
	files, err := lab.WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	sim := startSim(t, iagsim.Options{Devices: simDevices, TLS: &tls.Config{Certificates: []tls.Certificate{cert}}})
	caFile := files.CAFile

	cfg := gatewayConfig(sim, 5*time.Second)
	if g := newClient(t, cfg).Probe(context.Background()); g.Up || !strings.Contains(g.Error, "certificate") {
		t.Errorf("without the CA: up %v error %q, want a certificate error", g.Up, g.Error)
	}
	cfg.TLS = &promconfig.TLSConfig{CAFile: caFile}
	if g := newClient(t, cfg).Probe(context.Background()); !g.Up || g.Error != "" || g.Devices["netmiko"] != 4380 {
		t.Errorf("with the CA: %+v", g)
	}
}

// TestLoginRedirectSendsNothingElsewhere: a gateway that answers its login
// with a 307 to another host asks for the same POST, body and password
// included, to be sent there (RFC 9110 §15.4.8). The client follows no
// redirect: the other host receives nothing and the probe says why.
func TestLoginRedirectSendsNothingElsewhere(t *testing.T) {
	sim := startSim(t, iagsim.Options{})
	thief := hostile.StartThief()
	defer thief.Close()
	simURL, err := url.Parse(sim.URL())
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(simURL)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == apiBase+"/login" {
			hostile.RedirectTo(thief.URL, http.StatusTemporaryRedirect).ServeHTTP(w, r)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer front.Close()
	cfg := gatewayConfig(sim, 5*time.Second)
	cfg.URL = front.URL
	c := newClient(t, cfg)
	for range 2 {
		g := c.Probe(context.Background())
		if !g.Up || !strings.Contains(g.Error, "redirects are not followed") {
			t.Errorf("up %v, error %q: want up (poll answers) and the redirect of the login refused", g.Up, g.Error)
		}
	}
	if got := thief.Requests(); len(got) > 0 {
		t.Errorf("the other host received the login:\n%s", strings.Join(got, "\n"))
	}
}
