package iap

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

const (
	testUser     = "admin"
	testPassword = "s3cret-pw"
	testClient   = "exporter"
	testSecret   = "client-s3cret"
)

// startSim serves topo in-process; every server gets the test accounts.
func startSim(t *testing.T, topo iapsim.Topology) *iapsim.Sim {
	t.Helper()
	topo.Users = map[string]string{testUser: testPassword}
	topo.Clients = map[string]string{testClient: testSecret}
	sim, err := iapsim.Start(topo)
	if err != nil {
		t.Fatalf("starting the IAP simulator: %v", err)
	}
	t.Cleanup(sim.Close)
	return sim
}

// configFor addresses every simulated server, its cluster as its site.
func configFor(sim *iapsim.Sim, auth config.IAPAuth) config.IAP {
	cfg := config.IAP{
		Timeout:       model.Duration(3 * time.Second),
		HealthTimeout: model.Duration(time.Second),
		Auth:          auth,
	}
	for _, s := range sim.Servers() {
		st := s.State()
		// Redis and RabbitMQ as the loader resolves them where each site has
		// its own group and cluster.
		cfg.Servers = append(cfg.Servers, config.IAPServer{Name: st.Name, URL: st.URL, Site: st.Cluster, Cluster: st.Cluster,
			Redis: st.Cluster, RabbitMQ: st.Cluster})
	}
	return cfg
}

func userAuth() config.IAPAuth {
	return config.IAPAuth{Credentials: config.Credentials{Username: testUser, Password: testPassword}}
}

func newClient(t *testing.T, cfg config.IAP) *Client {
	t.Helper()
	p, err := NewClient(configtest.IAP(cfg), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { p.Close() })
	return p
}

func probeOne(t *testing.T, p *Client, name string) topology.IAPServer {
	t.Helper()
	s, err := p.server(name)
	if err != nil {
		t.Fatal(err)
	}
	return p.probe(context.Background(), s)
}

func serviceNames(s topology.IAPServer) []string {
	var names []string
	for _, svc := range s.Services {
		names = append(names, svc.Name)
	}
	return names
}

func TestProbeReleases(t *testing.T) {
	for _, tc := range []struct {
		release, role  string
		wantRelease    string
		wantVersion    string
		wantServices   []string
		wantTask       topology.Tristate
		wantJob        topology.Tristate
		wantConfigured topology.Tristate
		wantRabbitMQ   string
	}{
		{iapsim.Release2022_1, "active", "2022.1.68", "14.5.3-2022.1.68", []string{"redis", "mongo", "rabbitmq"},
			topology.True, topology.Unknown, topology.True, "dc1"},
		{iapsim.Release2022_1, "standby", "2022.1.68", "14.5.3-2022.1.68", []string{"redis", "mongo", "rabbitmq"},
			topology.False, topology.Unknown, topology.False, "dc1"},
		{iapsim.Release2023_1, "active", "2023.1.40", "15.1.27-2023.1.40", []string{"redis", "mongo", "rabbitmq"},
			topology.True, topology.True, topology.True, "dc1"},
		{iapsim.Release2023_2, "standby", "2023.2.9", "15.8.10-2023.2.44", []string{"redis", "mongo"},
			topology.False, topology.False, topology.False, ""},
		{iapsim.Release6, "active", "6.1.3", "6.1.3", []string{"redis", "mongo"},
			topology.True, topology.True, topology.True, ""},
		{iapsim.Release6, "standby", "6.1.3", "6.1.3", []string{"redis", "mongo"},
			topology.False, topology.False, topology.False, ""},
	} {
		t.Run(tc.release+"/"+tc.role, func(t *testing.T) {
			sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{
				{Name: "iap-1", Cluster: "dc1", Release: tc.release, Role: tc.role},
			}})
			cfg := configFor(sim, userAuth())
			cfg.Servers[0].Role = tc.role
			got := probeOne(t, newClient(t, cfg), "iap-1")

			if !got.Up || got.APIUp != topology.True || got.Error != "" {
				t.Fatalf("up=%v api_up=%v error=%q, want up and no error", got.Up, got.APIUp, got.Error)
			}
			if got.Release != tc.wantRelease || got.Version != tc.wantVersion {
				t.Errorf("release %q version %q, want %q %q", got.Release, got.Version, tc.wantRelease, tc.wantVersion)
			}
			if got.ServerID == "" {
				t.Error("no server id")
			}
			if names := serviceNames(got); !slices.Equal(names, tc.wantServices) {
				t.Errorf("services %v, want %v", names, tc.wantServices)
			}
			if got.TaskWorker != tc.wantTask || got.JobWorker != tc.wantJob || got.ConfiguredActive != tc.wantConfigured {
				t.Errorf("task %v job %v configured %v, want %v %v %v", got.TaskWorker, got.JobWorker, got.ConfiguredActive,
					tc.wantTask, tc.wantJob, tc.wantConfigured)
			}
			if got.RabbitMQ != tc.wantRabbitMQ || got.Redis != "dc1" {
				t.Errorf("depends on rabbitmq %q redis %q, want %q and dc1", got.RabbitMQ, got.Redis, tc.wantRabbitMQ)
			}
			if got.DeclaredRole != tc.role {
				t.Errorf("declared role %q, want %q", got.DeclaredRole, tc.role)
			}
			if len(got.Applications) != 9 || len(got.Adapters) != 3 || got.AppsHealthy != topology.True || got.AdaptersHealthy != topology.True {
				t.Errorf("%d applications, %d adapters, healthy %v/%v; want 9, 3, all healthy",
					len(got.Applications), len(got.Adapters), got.AppsHealthy, got.AdaptersHealthy)
			}
			if got.Adapters[0].PackageID == "" || !got.Adapters[0].Healthy || got.Adapters[0].Connection != "ONLINE" {
				t.Errorf("adapter %+v, want a package id, ONLINE and healthy", got.Adapters[0])
			}
		})
	}
}

// The facts Itential does not document are simulator options; the probe must
// read both readings the same way.
func TestProbeAssumedFacts(t *testing.T) {
	for _, tc := range []struct {
		name string
		spec iapsim.ServerSpec
	}{
		{"profile key activate", iapsim.ServerSpec{ProfileWorkerKey: "activate", ConfiguredRole: "active", Role: "standby"}},
		{"profile key active", iapsim.ServerSpec{ProfileWorkerKey: "active", ConfiguredRole: "active", Role: "standby"}},
		{"lists without total", iapsim.ServerSpec{OmitTotal: true, ConfiguredRole: "active", Role: "standby"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.spec.Name, tc.spec.Release = "iap-1", iapsim.Release2023_2
			sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{tc.spec}})
			got := probeOne(t, newClient(t, configFor(sim, userAuth())), "iap-1")
			if got.APIUp != topology.True || len(got.Adapters) != 3 {
				t.Fatalf("api_up %v, %d adapters (%s); want up and 3", got.APIUp, len(got.Adapters), got.Error)
			}
			// A standby configured active: the mismatch an operator must see.
			if got.ConfiguredActive != topology.True || got.TaskWorker != topology.False {
				t.Errorf("configured %v task %v, want configured active and not running", got.ConfiguredActive, got.TaskWorker)
			}
		})
	}

	t.Run("unhealthy status 500", func(t *testing.T) {
		sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1", UnhealthyStatus: 500}}})
		sim.Server("iap-1").SetService("mongo", false)
		got := probeOne(t, newClient(t, configFor(sim, userAuth())), "iap-1")
		if got.Up || !strings.Contains(got.Error, "500") || got.DependenciesRunning() {
			t.Errorf("up %v error %q dependencies running %v; want down by the 500 with mongo failed", got.Up, got.Error, got.DependenciesRunning())
		}
	})
}

func TestProbeFaults(t *testing.T) {
	for _, tc := range []struct {
		name  string
		apply func(*iapsim.Sim, *iapsim.Server)
		check func(*testing.T, topology.IAPServer)
	}{
		{"down", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetFault(iapsim.Fault{Mode: iapsim.FaultDown}) },
			func(t *testing.T, got topology.IAPServer) {
				wantDown(t, got, "connection refused")
				if got.ObservedState() != topology.StateDown {
					t.Errorf("observed %s, want down", got.ObservedState())
				}
			}},
		{"hung", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetFault(iapsim.Fault{Mode: iapsim.FaultHung}) },
			func(t *testing.T, got topology.IAPServer) { wantDown(t, got, "deadline exceeded") }},
		{"slow beyond the health timeout", func(_ *iapsim.Sim, s *iapsim.Server) {
			s.SetFault(iapsim.Fault{Mode: iapsim.FaultSlow, Delay: time.Minute, Path: "/health/status"})
		}, func(t *testing.T, got topology.IAPServer) { wantDown(t, got, "deadline exceeded") }},
		{"slow within the timeouts", func(_ *iapsim.Sim, s *iapsim.Server) {
			s.SetFault(iapsim.Fault{Mode: iapsim.FaultSlow, Delay: 50 * time.Millisecond})
		}, func(t *testing.T, got topology.IAPServer) { wantHealthy(t, got) }},
		{"500s", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetFault(iapsim.Fault{Mode: iapsim.FaultError}) },
			func(t *testing.T, got topology.IAPServer) {
				if got.Up || !strings.Contains(got.Error, "500") {
					t.Errorf("up %v error %q, want down by the 500", got.Up, got.Error)
				}
				// It answered, so the authenticated calls were tried, and failed.
				if got.APIUp != topology.False || got.TaskWorker != topology.Unknown {
					t.Errorf("api_up %v task %v, want failed calls and an unknown worker", got.APIUp, got.TaskWorker)
				}
			}},
		{"malformed JSON", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetFault(iapsim.Fault{Mode: iapsim.FaultMalformed}) },
			func(t *testing.T, got topology.IAPServer) {
				if got.Up || !strings.Contains(got.Error, "decoding /health/status") {
					t.Errorf("up %v error %q, want down by an undecodable answer", got.Up, got.Error)
				}
				if got.APIUp != topology.False || got.Adapters != nil {
					t.Errorf("api_up %v adapters %v, want the garbage refused", got.APIUp, got.Adapters)
				}
			}},
		{"adapters hung, health fine", func(_ *iapsim.Sim, s *iapsim.Server) {
			s.SetFault(iapsim.Fault{Mode: iapsim.FaultHung, Path: "/health/adapters"})
		}, func(t *testing.T, got topology.IAPServer) {
			if !got.Up || got.APIUp != topology.False || got.Adapters != nil || !strings.Contains(got.Error, "/health/adapters") {
				t.Errorf("up %v api_up %v adapters %v error %q; want up, the adapters unknown and named in the error",
					got.Up, got.APIUp, got.Adapters, got.Error)
			}
			if got.TaskWorker != topology.True || len(got.Applications) == 0 {
				t.Errorf("task %v, %d applications: the other calls must still report", got.TaskWorker, len(got.Applications))
			}
		}},
		{"degraded application", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetApplication("OperationsManager", "STOPPED") },
			func(t *testing.T, got topology.IAPServer) {
				if !got.Up || got.AppsHealthy != topology.False || got.AdaptersHealthy != topology.True {
					t.Errorf("up %v apps %v adapters %v, want up with degraded apps", got.Up, got.AppsHealthy, got.AdaptersHealthy)
				}
				wantModule(t, got.Applications, "OperationsManager", "STOPPED", false)
			}},
		{"adapter offline", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetAdapter("ServiceNow", "", "OFFLINE") },
			func(t *testing.T, got topology.IAPServer) {
				if !got.Up || got.AdaptersHealthy != topology.False {
					t.Errorf("up %v adapters %v, want up with degraded adapters", got.Up, got.AdaptersHealthy)
				}
				wantModule(t, got.Adapters, "ServiceNow", "RUNNING", false)
			}},
		{"dependency failed", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetService("redis", false) },
			func(t *testing.T, got topology.IAPServer) {
				if got.Up || got.DependenciesRunning() || got.Services[0] != (topology.IAPService{Name: "redis", Running: false}) {
					t.Errorf("up %v services %+v, want down with redis failed", got.Up, got.Services)
				}
				if got.TaskWorker != topology.True {
					t.Errorf("task %v: a 503 server still answers about its workers", got.TaskWorker)
				}
			}},
		{"tokens revoked", func(sim *iapsim.Sim, s *iapsim.Server) { sim.RevokeTokens(s.Cluster()) },
			func(t *testing.T, got topology.IAPServer) { wantHealthy(t, got) }},
		{"standby starts working", func(_ *iapsim.Sim, s *iapsim.Server) { s.SetWorkers(true, false) },
			func(t *testing.T, got topology.IAPServer) {
				if got.ObservedState() != topology.StateActive || got.JobWorker != topology.False || got.DeclaredRole != "standby" {
					t.Errorf("observed %s job %v declared %s, want a declared standby working tasks", got.ObservedState(), got.JobWorker, got.DeclaredRole)
				}
			}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel() // the hung cases each wait out a timeout
			sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{
				{Name: "faulty", Cluster: "dc1", Role: "active"},
				{Name: "healthy", Cluster: "dc1", Role: "active"},
			}})
			cfg := configFor(sim, userAuth())
			// Long enough for the healthy server's answers on a busy machine.
			cfg.HealthTimeout = model.Duration(2 * time.Second)
			cfg.Timeout = model.Duration(4 * time.Second)
			if tc.name == "standby starts working" {
				sim.Server("faulty").SetWorkers(false, false)
				cfg.Servers[0].Role = "standby"
			}
			p := newClient(t, cfg)
			p.Probe(context.Background()) // log in before the fault, as a running exporter has
			tc.apply(sim, sim.Server("faulty"))

			// The scrape deadline must hold even with a hung server.
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			got := p.Probe(ctx)
			if ctx.Err() != nil {
				t.Fatalf("probe overran its deadline")
			}
			tc.check(t, got[0])
			// Whatever one server does, the other is reported as usual.
			wantHealthy(t, got[1])
		})
	}
}

func wantDown(t *testing.T, got topology.IAPServer, reason string) {
	t.Helper()
	if got.Up || !strings.Contains(got.Error, reason) {
		t.Errorf("up %v error %q, want down with %q", got.Up, got.Error, reason)
	}
	// A server that did not answer is not asked again with credentials.
	if got.APIUp != topology.Unknown || got.TaskWorker != topology.Unknown || got.Release != "" {
		t.Errorf("api_up %v task %v release %q, want all unknown", got.APIUp, got.TaskWorker, got.Release)
	}
}

func wantHealthy(t *testing.T, got topology.IAPServer) {
	t.Helper()
	if !got.Up || got.APIUp != topology.True || got.Error != "" || got.TaskWorker != topology.True {
		t.Errorf("%s: up %v api_up %v task %v error %q, want a healthy active server", got.Name, got.Up, got.APIUp, got.TaskWorker, got.Error)
	}
}

func wantModule(t *testing.T, ms []topology.IAPModule, name, state string, healthy bool) {
	t.Helper()
	for _, m := range ms {
		if m.Name == name {
			if m.State != state || m.Healthy != healthy {
				t.Errorf("%s: state %s healthy %v, want %s %v", name, m.State, m.Healthy, state, healthy)
			}
			return
		}
	}
	t.Errorf("%s not reported among %d modules", name, len(ms))
}

// fakeClock lets a test expire tokens without waiting.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

func TestLoginOncePerCluster(t *testing.T) {
	for _, tc := range []struct {
		name string
		auth config.IAPAuth
	}{
		{"login", userAuth()},
		{"oauth", config.IAPAuth{ClientID: testClient, ClientSecret: testSecret}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clock := &fakeClock{now: time.Unix(1_800_000_000, 0)}
			sim := startSim(t, iapsim.Topology{Now: clock.Now, TokenTTL: time.Hour, Servers: []iapsim.ServerSpec{
				{Name: "dc1-1", Cluster: "dc1", Release: iapsim.Release6},
				{Name: "dc1-2", Cluster: "dc1", Release: iapsim.Release6},
				{Name: "dc1-3", Cluster: "dc1", Release: iapsim.Release6},
				{Name: "dc2-1", Cluster: "dc2", Release: iapsim.Release6, Role: "standby"},
			}})
			p := newClient(t, configFor(sim, tc.auth))
			scrape := func() {
				t.Helper()
				for _, s := range p.Probe(context.Background()) {
					if s.APIUp != topology.True {
						t.Fatalf("%s: %s", s.Name, s.Error)
					}
				}
			}
			for range 5 {
				scrape()
			}
			// dc2 has its own Redis: it refuses dc1's token and needs its own login.
			if n := sim.Logins(); n != 2 {
				t.Fatalf("%d logins over 5 scrapes of two clusters, want 2", n)
			}
			clock.Advance(time.Hour + time.Second)
			scrape()
			if n := sim.Logins(); n != 4 {
				t.Fatalf("%d logins after the tokens expired, want 4 (one more per cluster)", n)
			}
			scrape()
			if n := sim.Logins(); n != 4 {
				t.Fatalf("%d logins, want the new tokens reused", n)
			}
		})
	}
}

func TestLoginRefused(t *testing.T) {
	for _, tc := range []struct {
		name, path string
		auth       config.IAPAuth
	}{
		{"wrong password", "/login", config.IAPAuth{Credentials: config.Credentials{Username: testUser, Password: "wrong-pw-value"}}},
		{"wrong client secret", "/oauth/token", config.IAPAuth{ClientID: testClient, ClientSecret: "wrong-pw-value"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1"}, {Name: "iap-2", Cluster: "iap-1"}}})
			got := newClient(t, configFor(sim, tc.auth)).Probe(context.Background())
			for _, s := range got {
				if !s.Up || s.APIUp != topology.False || !strings.Contains(s.Error, "401") {
					t.Errorf("%s: up %v api_up %v error %q, want up with the login refused", s.Name, s.Up, s.APIUp, s.Error)
				}
				if strings.Contains(s.Error, "wrong-pw-value") {
					t.Errorf("%s: the error shows the secret: %q", s.Name, s.Error)
				}
			}
			// Five calls on each of two servers, one cluster: one attempt.
			attempts := sim.Server("iap-1").Requests(tc.path) + sim.Server("iap-2").Requests(tc.path)
			if attempts != 1 {
				t.Errorf("%d login attempts, want 1 (a refused login is not repeated at once)", attempts)
			}
		})
	}
}

func TestAdapterPaging(t *testing.T) {
	for _, tc := range []struct {
		adapters  int
		omitTotal bool
		pages     int
	}{
		{60, false, 3},
		{60, true, 3},
		{50, false, 2},
		{50, true, 3}, // without total only an empty page ends a full one
		{100, false, 4},
		{100, true, 5},
		{0, false, 1},
	} {
		adapters := make([]iapsim.AdapterSpec, tc.adapters)
		for i := range adapters {
			adapters[i] = iapsim.AdapterSpec{Name: "adapter-" + string(rune('A'+i/26)) + string(rune('a'+i%26)), PackageID: "@itential/adapter-x"}
		}
		sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1", Adapters: adapters, OmitTotal: tc.omitTotal}}})
		got := probeOne(t, newClient(t, configFor(sim, userAuth())), "iap-1")
		names := map[string]bool{}
		for _, a := range got.Adapters {
			names[a.Name] = true
		}
		if len(got.Adapters) != tc.adapters || len(names) != tc.adapters {
			t.Errorf("%d adapters, omit total %v: got %d (%d distinct)", tc.adapters, tc.omitTotal, len(got.Adapters), len(names))
		}
		// Pages asked for at once still come out in the list's order.
		if !slices.IsSortedFunc(got.Adapters, func(a, b topology.IAPModule) int { return strings.Compare(a.Name, b.Name) }) {
			t.Errorf("%d adapters, omit total %v: not in the order IAP lists them", tc.adapters, tc.omitTotal)
		}
		if n := sim.Server("iap-1").Requests("/health/adapters"); n != tc.pages {
			t.Errorf("%d adapters, omit total %v: %d pages asked, want %d", tc.adapters, tc.omitTotal, n, tc.pages)
		}
	}
}

// With a token in hand, a server's health check, its authenticated calls
// and the pages of a list whose length is known go at once.
func TestProbeRoundTrips(t *testing.T) {
	adapters := make([]iapsim.AdapterSpec, 100)
	for i := range adapters {
		adapters[i] = iapsim.AdapterSpec{Name: fmt.Sprintf("adapter-%03d", i), PackageID: "@itential/adapter-x"}
	}
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1", Adapters: adapters}}})
	cfg := configFor(sim, userAuth())
	cfg.HealthTimeout = model.Duration(2 * time.Second)
	p := newClient(t, cfg)
	wantHealthy(t, probeOne(t, p, "iap-1")) // logs in

	// Long against a busy machine's own delays: the count of delays is measured.
	const delay = time.Second
	sim.Server("iap-1").SetFault(iapsim.Fault{Mode: iapsim.FaultSlow, Delay: delay})
	start := time.Now()
	got := probeOne(t, p, "iap-1")
	elapsed := time.Since(start)
	wantHealthy(t, got)
	if len(got.Adapters) != 100 {
		t.Errorf("%d adapters, want 100", len(got.Adapters))
	}
	// At once: two answers in a row (the first page, then the other three).
	// Health first would make it three, pages one by one five.
	if elapsed >= 3*delay {
		t.Errorf("probe took %s with every answer %s late: the calls went in series", elapsed, delay)
	}
}

// When a logged-in server's health check does not answer, the server is down
// and what its authenticated calls said, sent at the same time, is dropped;
// the probe ends with the health timeout, not the server's longer one.
func TestHealthHungDetailsAnswer(t *testing.T) {
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1"}}})
	cfg := configFor(sim, userAuth())
	// Apart by far more than a busy machine's delays; the first probe's
	// health check must answer within the shorter one.
	cfg.HealthTimeout = model.Duration(2 * time.Second)
	cfg.Timeout = model.Duration(20 * time.Second)
	p := newClient(t, cfg)
	wantHealthy(t, probeOne(t, p, "iap-1")) // logs in

	srv := sim.Server("iap-1")
	srv.SetFault(iapsim.Fault{Mode: iapsim.FaultHung, Path: "/health/status"})
	asked := srv.Requests("/health/server")
	start := time.Now()
	got := probeOne(t, p, "iap-1")
	elapsed := time.Since(start)

	wantDown(t, got, "deadline exceeded")
	if got.Applications != nil || got.Adapters != nil || got.ConfiguredActive != topology.Unknown || got.JobWorker != topology.Unknown {
		t.Errorf("applications %v adapters %v configured %v job %v: the details of a down server must be dropped",
			got.Applications, got.Adapters, got.ConfiguredActive, got.JobWorker)
	}
	if srv.Requests("/health/server") == asked {
		t.Error("the authenticated calls were not sent with the health check")
	}
	if elapsed > 10*time.Second {
		t.Errorf("probe took %s: a hung health check must cost the health timeout (2s), not the server's (20s)", elapsed)
	}
}

// A cluster's first login goes through a server whose health check answered:
// a hung server must not hold the login, and its cluster, until it times out.
func TestFirstLoginSkipsAHungServer(t *testing.T) {
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{
		{Name: "hung", Cluster: "dc1"},
		{Name: "healthy", Cluster: "dc1"},
	}})
	sim.Server("hung").SetFault(iapsim.Fault{Mode: iapsim.FaultHung})
	cfg := configFor(sim, userAuth())
	// Apart by far more than a busy machine's delays; the first probe's
	// health check must answer within the shorter one.
	cfg.HealthTimeout = model.Duration(2 * time.Second)
	cfg.Timeout = model.Duration(20 * time.Second)
	p := newClient(t, cfg)

	start := time.Now()
	got := p.Probe(context.Background())
	elapsed := time.Since(start)
	wantDown(t, got[0], "deadline exceeded")
	wantHealthy(t, got[1])
	if n := sim.Server("hung").Requests("/login"); n != 0 {
		t.Errorf("%d logins sent to the hung server, want none", n)
	}
	if n := sim.Logins(); n != 1 {
		t.Errorf("%d logins, want 1", n)
	}
	if elapsed > 10*time.Second {
		t.Errorf("probe took %s, want about the health timeout (2s), far from the server's (20s)", elapsed)
	}
}

func TestTLS(t *testing.T) {
	files, err := lab.WriteTLSFiles(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	cert, err := tls.LoadX509KeyPair(files.CertFile, files.KeyFile)
	if err != nil {
		t.Fatal(err)
	}
	caFile := files.CAFile
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{
		{Name: "iap-1", TLS: &tls.Config{Certificates: []tls.Certificate{cert}}},
	}})
	for _, tc := range []struct {
		name   string
		tls    promconfig.TLSConfig
		wantUp bool
	}{
		{"trusted CA", promconfig.TLSConfig{CAFile: caFile}, true},
		{"unknown CA", promconfig.TLSConfig{}, false},
		{"insecure", promconfig.TLSConfig{InsecureSkipVerify: true}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := configFor(sim, userAuth())
			if !strings.HasPrefix(cfg.Servers[0].URL, "https://") {
				t.Fatalf("simulator URL %s is not https", cfg.Servers[0].URL)
			}
			cfg.Servers[0].TLS = &tc.tls
			got := probeOne(t, newClient(t, cfg), "iap-1")
			if got.Up != tc.wantUp || (tc.wantUp && got.APIUp != topology.True) {
				t.Errorf("up %v api_up %v error %q, want up %v", got.Up, got.APIUp, got.Error, tc.wantUp)
			}
			if !tc.wantUp && !strings.Contains(got.Error, "certificate") {
				t.Errorf("error %q does not name the certificate problem", got.Error)
			}
		})
	}
}

func TestActivateDeactivate(t *testing.T) {
	for _, release := range []string{iapsim.Release2022_1, iapsim.Release2023_1, iapsim.Release6} {
		t.Run(release, func(t *testing.T) {
			sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{
				{Name: "active", Cluster: "dc1", Release: release, Role: "active"},
				{Name: "standby", Cluster: "dc1", Release: release, Role: "standby"},
			}})
			p := newClient(t, configFor(sim, userAuth()))
			ctx := context.Background()
			if err := p.Deactivate(ctx, "active"); err != nil {
				t.Fatal(err)
			}
			if err := p.Activate(ctx, "standby"); err != nil {
				t.Fatal(err)
			}
			// Only the server addressed changes.
			task, job := sim.Server("active").Workers()
			wantJob := release != iapsim.Release2022_1 // 2022.1 has no job worker route
			if task || (wantJob && job) {
				t.Errorf("fenced server: task %v job %v, want both stopped", task, job)
			}
			task, job = sim.Server("standby").Workers()
			if !task || job != wantJob {
				t.Errorf("promoted server: task %v job %v, want task running and job %v", task, job, wantJob)
			}
			if got := probeOne(t, p, "standby"); got.ObservedState() != topology.StateActive {
				t.Errorf("promoted server observed %s (%s), want active", got.ObservedState(), got.Error)
			}
			if err := p.Activate(ctx, "nonexistent"); err == nil {
				t.Error("activating an unconfigured server did not fail")
			}
		})
	}
}

// TestLoginRedirectSendsNothingElsewhere: a server that answers a login
// (a user's POST /login or a client's POST /oauth/token) with a 307 to
// another host asks for the same body, the secret, to be sent there (RFC
// 9110 §15.4.8). The Client follows no redirect: the other host receives
// nothing, and the server's API is down with the reason.
func TestLoginRedirectSendsNothingElsewhere(t *testing.T) {
	thief := hostile.StartThief()
	defer thief.Close()
	for _, tc := range []struct {
		path string
		auth config.IAPAuth
	}{
		{"/login", userAuth()},
		{"/oauth/token", config.IAPAuth{ClientID: testClient, ClientSecret: testSecret}},
	} {
		sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{{Name: "iap-1"}}})
		simURL, err := url.Parse(sim.Server("iap-1").URL())
		if err != nil {
			t.Fatal(err)
		}
		proxy := httputil.NewSingleHostReverseProxy(simURL)
		front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path == tc.path {
				hostile.RedirectTo(thief.URL, http.StatusTemporaryRedirect).ServeHTTP(w, r)
				return
			}
			proxy.ServeHTTP(w, r)
		}))
		defer front.Close()
		cfg := configFor(sim, tc.auth)
		cfg.Servers[0].URL = front.URL
		p := newClient(t, cfg)
		got := p.Probe(context.Background())[0]
		if !got.Up || got.APIUp != topology.False || !strings.Contains(got.Error, "redirects are not followed") {
			t.Errorf("%s: up %v api_up %v error %q, want up with the redirected login refused", tc.path, got.Up, got.APIUp, got.Error)
		}
		// The remediation receiver's own calls, through the same client.
		if err := p.Activate(context.Background(), "iap-1"); err == nil || !strings.Contains(err.Error(), "redirects are not followed") {
			t.Errorf("%s: activate: %v, want the redirected login refused", tc.path, err)
		}
	}
	if got := thief.Requests(); len(got) > 0 {
		t.Errorf("the other host received %d requests:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// Issue 19, item 15: Platform 6 has no profiles; the configured worker state
// is task_worker_enabled and job_worker_enabled of GET /server/config.
func TestProbePlatform6ServerConfig(t *testing.T) {
	sim := startSim(t, iapsim.Topology{Servers: []iapsim.ServerSpec{
		{Name: "iap-1", Release: iapsim.Release6, Role: "standby", ConfiguredRole: "active"},
		{Name: "iap-2", Release: iapsim.Release6, Role: "standby"},
	}})
	p := newClient(t, configFor(sim, userAuth()))
	for name, want := range map[string]topology.Tristate{"iap-1": topology.True, "iap-2": topology.False} {
		got := probeOne(t, p, name)
		if got.APIUp != topology.True || got.Error != "" {
			t.Fatalf("%s: api_up %v (%s)", name, got.APIUp, got.Error)
		}
		if got.ConfiguredActive != want || got.ConfiguredJobWorker != want || got.TaskWorker != topology.False {
			t.Errorf("%s: configured task %v job %v, running %v; want configured %v, not running", name,
				got.ConfiguredActive, got.ConfiguredJobWorker, got.TaskWorker, want)
		}
	}
}

// IAP keeps login tokens in the Redis a server uses, and a server refuses
// a token another Redis issued with 401. Declared one cluster (one Redis),
// servers that are really two token domains (a DR site with its own Redis,
// say) must still all be read: each keeps the token it accepts instead of
// the two logging each other out on every scrape, and logins stay one per
// domain.
func TestLoginWhereOneDeclaredClusterIsTwoTokenDomains(t *testing.T) {
	sim := startSim(t, iapsim.Topology{TokenTTL: time.Hour, Servers: []iapsim.ServerSpec{
		{Name: "dc1-1", Cluster: "dc1", Release: iapsim.Release6},
		{Name: "dc1-2", Cluster: "dc1", Release: iapsim.Release6},
		{Name: "dc2-1", Cluster: "dc2", Release: iapsim.Release6, Role: "standby"},
		{Name: "dc2-2", Cluster: "dc2", Release: iapsim.Release6, Role: "standby"},
	}})
	cfg := configFor(sim, userAuth())
	for i := range cfg.Servers {
		cfg.Servers[i].Cluster = "prod"
	}
	p := newClient(t, cfg)
	for i := range 20 {
		for _, s := range p.Probe(context.Background()) {
			if s.APIUp != topology.True {
				t.Fatalf("scrape %d: %s: %s", i, s.Name, s.Error)
			}
		}
	}
	// One login per domain, and at most one more for a server that met the
	// other domain's token first in a scrape they began together.
	if n := sim.Logins(); n > 4 {
		t.Errorf("%d logins over 20 scrapes of two token domains, want at most 4", n)
	}
}
