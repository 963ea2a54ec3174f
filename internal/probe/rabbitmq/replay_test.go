package rabbitmq

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"path/filepath"
	"reflect"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/common/promslog"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
	"github.com/iapha/iap_ha_exporter/fixtures/recorded"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// serveRecorded answers the management API over real TCP with the answers
// recorded in testdata/dir: /api/<name> from <name>.json, 404 for anything
// not recorded, 401 unless the credentials are guest:secret.
func serveRecorded(t *testing.T, dir string) *httptest.Server {
	t.Helper()
	answers := recorded.RabbitMQ(filepath.Join("testdata", dir))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if user, pass, _ := r.BasicAuth(); user != "guest" || pass != "secret" {
			http.Error(w, `{"error":"not_authorised"}`, http.StatusUnauthorized)
			return
		}
		if r.URL.Path == "/api/queues" && r.URL.RawQuery != queuesQuery {
			http.Error(w, "unexpected queue listing "+r.URL.RawQuery, http.StatusBadRequest)
			return
		}
		answers.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return srv
}

func newTestClient(t *testing.T, urls ...string) *Client {
	t.Helper()
	c, err := NewClient(configtest.RabbitMQ(config.RabbitCluster{
		Name: "dc1", Site: "dc1", URLs: urls,
		Credentials: config.Credentials{Username: "guest", Password: "secret"},
		NodeSites:   map[string]string{"rmq3@localhost": "dc2"},
		Timeout:     model.Duration(5 * time.Second),
	}), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

const (
	r1, r2, r3 = "rmq1@localhost", "rmq2@localhost", "rmq3@localhost"
)

func running(name, site string, peers ...string) topology.RabbitNode {
	return topology.RabbitNode{Name: name, Site: site, Running: true, Peers: peers}
}

func TestProbeRecorded(t *testing.T) {
	fedLinks := func(status, err string) []topology.FederationLink {
		return []topology.FederationLink{
			{VHost: "/", Upstream: "dc1", Type: "exchange", Name: "fed.events", Status: status, Error: err},
			{VHost: "/", Upstream: "dc1", Type: "queue", Name: "fed.tasks", Status: status, Error: err},
		}
	}
	healthyNodes := []topology.RabbitNode{running(r1, "dc1", r2, r3), running(r2, "dc1", r1, r3), running(r3, "dc2", r1, r2)}
	for _, tc := range []struct {
		dir  string
		want topology.RabbitCluster
	}{
		{
			dir: "3.10/healthy",
			want: topology.RabbitCluster{
				Nodes:  healthyNodes,
				Queues: []topology.QueueGroup{{VHost: "/", Type: "classic", Count: 4}, {VHost: "/", Type: "quorum", Count: 1, QuorumSpare: 1}},
			},
		},
		{
			// One node of three stopped for maintenance: ha-all wants a
			// mirror on each running node but the leader's, 1, and has it
			// synchronised; ha-two (exactly 2) wants min(2, 2 running) − 1 = 1
			// and was re-mirrored; the quorum queue has a bare majority.
			// Nothing is unsynchronised (issue 19, item 8).
			dir: "3.10/one-stopped",
			want: topology.RabbitCluster{
				// stop_app leaves the Erlang VM, and its links, up.
				Nodes: []topology.RabbitNode{running(r1, "dc1", r2, r3), running(r2, "dc1", r1, r3), {Name: r3, Site: "dc2"}},
				Queues: []topology.QueueGroup{
					{VHost: "/", Type: "classic", Count: 4},
					{VHost: "/", Type: "quorum", Count: 1, QuorumCritical: 1},
				},
			},
		},
		{
			dir: "3.10/two-stopped",
			want: topology.RabbitCluster{
				Nodes: []topology.RabbitNode{running(r1, "dc1", r2, r3), {Name: r2, Site: "dc1"}, {Name: r3, Site: "dc2"}},
				Queues: []topology.QueueGroup{
					// One node running: no mirror can be placed, yet the
					// leader holds the only copy the policies want copied.
					{VHost: "/", Type: "classic", Count: 4, MirrorSyncCritical: 2},
					{VHost: "/", Type: "quorum", Count: 1, WithoutQuorum: 1},
				},
			},
		},
		{
			dir: "3.10/mem-alarm",
			want: topology.RabbitCluster{
				Nodes: []topology.RabbitNode{
					running(r1, "dc1", r2, r3),
					{Name: r2, Site: "dc1", Running: true, Peers: []string{r1, r3}, MemAlarm: true},
					running(r3, "dc2", r1, r2),
				},
				Queues: []topology.QueueGroup{{VHost: "/", Type: "classic", Count: 3}, {VHost: "/", Type: "quorum", Count: 1, QuorumSpare: 1}},
			},
		},
		{
			dir: "3.10/dr-healthy",
			want: topology.RabbitCluster{
				Nodes:           []topology.RabbitNode{{Name: "rmqdr@localhost", Site: "dc1", Running: true}},
				Queues:          []topology.QueueGroup{{VHost: "/", Type: "classic", Count: 1}},
				FederationLinks: fedLinks("running", ""),
			},
		},
		{
			dir: "3.10/dr-upstream-down",
			want: topology.RabbitCluster{
				Nodes:           []topology.RabbitNode{{Name: "rmqdr@localhost", Site: "dc1", Running: true}},
				Queues:          []topology.QueueGroup{{VHost: "/", Type: "classic", Count: 1}},
				FederationLinks: fedLinks("error", "econnrefused"),
			},
		},
		{
			// Derived from 3.10/healthy, see testdata/4.0/README.md.
			dir: "4.0/healthy",
			want: topology.RabbitCluster{
				Nodes:  healthyNodes,
				Queues: []topology.QueueGroup{{VHost: "/", Type: "classic", Count: 4}, {VHost: "/", Type: "quorum", Count: 1, QuorumSpare: 1}},
			},
		},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			srv := serveRecorded(t, tc.dir)
			got := newTestClient(t, srv.URL).Probe(context.Background())

			want := tc.want
			want.Name, want.Site, want.Up, want.ClusterName = "dc1", "dc1", true, "lab-dc1"
			want.Version, want.MirroringSupported = "3.10.8", true
			// Not configured: RabbitMQ's own default, as Load sets it.
			want.PartitionHandling = "ignore"
			if strings.HasPrefix(tc.dir, "4.0") {
				want.Version, want.MirroringSupported = "4.0.5", false
			}
			if strings.Contains(tc.dir, "dr-") {
				want.ClusterName = "rmqdr@vm"
			}
			// Compared as the JSON the snapshot is served as: an empty
			// list and none are the same answer.
			g, _ := json.MarshalIndent(got, "", " ")
			w, _ := json.MarshalIndent(want, "", " ")
			if string(g) != string(w) {
				t.Errorf("got\n%s\nwant\n%s", g, w)
			}
		})
	}
}

func TestProbeTriesEveryURL(t *testing.T) {
	dead := "http://127.0.0.1:1" // nothing listens on port 1
	srv := serveRecorded(t, "3.10/healthy")
	c := newTestClient(t, dead, srv.URL)
	for range 2 { // the second probe starts at the URL that answered
		if got := c.Probe(context.Background()); !got.Up || len(got.Nodes) != 3 {
			t.Fatalf("not up through the second URL: %+v", got)
		}
	}
}

func TestProbeDown(t *testing.T) {
	hung := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		<-r.Context().Done()
	}))
	t.Cleanup(hung.Close)
	for _, tc := range []struct {
		name    string
		urls    []string
		user    string
		wantErr string
	}{
		{name: "refused", urls: []string{"http://127.0.0.1:1", "http://127.0.0.1:2"}, wantErr: "http://127.0.0.1:2: overview: "},
		{name: "unauthorised", urls: []string{serveRecorded(t, "3.10/healthy").URL}, user: "nobody", wantErr: "overview: 401 Unauthorized"},
		{name: "hung", urls: []string{hung.URL}, wantErr: "context deadline exceeded"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := newTestClient(t, tc.urls...)
			if tc.user != "" {
				c.cfg.Username = tc.user
			}
			// Long enough for the 401 to come back on a busy machine.
			ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
			defer cancel()
			start := time.Now()
			got := c.Probe(ctx)
			if got.Up || !strings.Contains(got.Error, tc.wantErr) || got.Name != "dc1" {
				t.Errorf("got up=%v error %q, want down with %q", got.Up, got.Error, tc.wantErr)
			}
			// The scrape's deadline holds (bound generous for a busy machine).
			if elapsed := time.Since(start); elapsed > 10*time.Second {
				t.Errorf("probe took %s past a 2s deadline", elapsed)
			}
		})
	}
}

// wrapRecorded serves the recorded answers of dir through wrap.
func wrapRecorded(t *testing.T, dir string, wrap func(w http.ResponseWriter, r *http.Request, next http.Handler)) *httptest.Server {
	t.Helper()
	next := serveRecorded(t, dir).Config.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { wrap(w, r, next) }))
	t.Cleanup(srv.Close)
	return srv
}

// The requests go at once: a probe costs about one answer's delay. On 3.x
// the first probe costs two, as the policies are asked for once the version
// says they matter; the probes after it send them with the overview.
func TestProbeRequestsAtOnce(t *testing.T) {
	// Long against a busy machine's own delays: the count of delays is measured.
	const delay = time.Second
	for _, tc := range []struct {
		dir      string
		delays   []int // per probe, in order
		policies int32 // requests for the policies in all
	}{
		{"4.0/healthy", []int{1, 1}, 0}, // no mirroring: never asked
		{"3.10/healthy", []int{2, 1, 1}, 3},
	} {
		t.Run(tc.dir, func(t *testing.T) {
			t.Parallel()
			var policies atomic.Int32
			srv := wrapRecorded(t, tc.dir, func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Path == "/api/policies" {
					policies.Add(1)
				}
				time.Sleep(delay)
				next.ServeHTTP(w, r)
			})
			c := newTestClient(t, srv.URL)
			for i, delays := range tc.delays {
				start := time.Now()
				got := c.Probe(context.Background())
				elapsed := time.Since(start)
				if !got.Up || len(got.Nodes) != 3 || len(got.Queues) != 2 {
					t.Fatalf("probe %d: up %v, %d nodes, %d queue groups (%s); want up, 3 and 2", i+1, got.Up, len(got.Nodes), len(got.Queues), got.Error)
				}
				// In series (overview, then nodes and policies, then
				// the queues) it took three.
				if elapsed >= time.Duration(delays+1)*delay {
					t.Errorf("probe %d took %s with every answer %s late, want under %d delays", i+1, elapsed, delay, delays+1)
				}
			}
			if got := policies.Load(); got != tc.policies {
				t.Errorf("policies asked for %d times in %d probes, want %d", got, len(tc.delays), tc.policies)
			}
		})
	}
}

// A probe reuses its connections, where every dial to a far cluster costs a
// round trip, and more with TLS: the client keeps no more connections than
// it has requests out at once, and does not dial for every probe. How many
// of a probe's requests overlap depends on scheduling, so the pool may grow
// in any probe until it holds that many; and a request that finds no idle
// connection dials and takes whichever comes first, its own or one a request
// finished with: net/http's race, which can dial one more than is used. The
// bound on dials allows for both; a connection lost per probe exceeds it.
func TestProbeDialsOnlyOnce(t *testing.T) {
	var dials, open atomic.Int32
	srv := httptest.NewUnstartedServer(serveRecorded(t, "3.10/healthy").Config.Handler)
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		switch s {
		case http.StateNew:
			dials.Add(1)
			open.Add(1)
		case http.StateClosed, http.StateHijacked:
			open.Add(-1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	c := newTestClient(t, srv.URL)
	// net/http pools a connection once its reader has seen the end of the
	// answer, a moment after the probe returns (longer on a busy machine):
	// each probe waits until every connection it used is back.
	var used, back atomic.Int32
	ctx := httptrace.WithClientTrace(context.Background(), &httptrace.ClientTrace{
		GotConn:     func(httptrace.GotConnInfo) { used.Add(1) },
		PutIdleConn: func(error) { back.Add(1) }, // pooled, or closed as one too many
	})
	const probes = 12
	for i := range probes {
		if got := c.Probe(ctx); !got.Up {
			t.Fatal(got.Error)
		}
		err := lab.Retry(10*time.Second, 5*time.Millisecond, func() error {
			if u, b := used.Load(), back.Load(); b < u {
				return fmt.Errorf("probe %d: %d of the %d connections used are back", i+1, b, u)
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	if got := dials.Load(); got > 2*maxRequestsAtOnce {
		t.Errorf("%d connections dialled for %d requests in %d probes, want at most %d: connections are dialled anew", got, used.Load(), probes, 2*maxRequestsAtOnce)
	}
	// One too many is closed by the client; the server sees it a moment later.
	err := lab.Retry(10*time.Second, 5*time.Millisecond, func() error {
		if n := open.Load(); n > maxRequestsAtOnce {
			return fmt.Errorf("%d connections open after %d probes, want at most %d, the requests a probe has out at once", n, probes, maxRequestsAtOnce)
		}
		return nil
	})
	if err != nil {
		t.Error(err)
	}
}

// A failed request cancels the others, and the error says which one failed,
// not that the others were cancelled.
func TestProbeNamesTheFailedRequest(t *testing.T) {
	for _, path := range []string{"/api/nodes", "/api/queues", "/api/policies"} {
		t.Run(path, func(t *testing.T) {
			srv := wrapRecorded(t, "3.10/healthy", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
				if r.URL.Path == path {
					http.Error(w, `{"error":"internal_error","reason":"boom"}`, http.StatusInternalServerError)
					return
				}
				time.Sleep(100 * time.Millisecond) // the others are still out when it fails
				next.ServeHTTP(w, r)
			})
			got := newTestClient(t, srv.URL).Probe(context.Background())
			name := strings.TrimPrefix(path, "/api/")
			if got.Up || !strings.Contains(got.Error, name+": ") || strings.Contains(got.Error, "canceled") {
				t.Errorf("up %v error %q, want down naming %s and no cancellation", got.Up, got.Error, name)
			}
		})
	}
}

// TestRedirectSendsNothingElsewhere: a management API that redirects its
// requests to another port of the same host would receive the basic
// credentials there, as Go's client keeps Authorization for a host of the
// same name whatever the port. No request, whether the probe's own or
// rabbit-hole's, follows a redirect, and the cluster is down with the reason.
func TestRedirectSendsNothingElsewhere(t *testing.T) {
	thief := hostile.StartThief()
	defer thief.Close()
	for _, code := range []int{http.StatusFound, http.StatusTemporaryRedirect} {
		// The overview answers, so that every other request is sent too.
		srv := wrapRecorded(t, "3.10/healthy", func(w http.ResponseWriter, r *http.Request, next http.Handler) {
			if r.URL.Path == "/api/overview" {
				next.ServeHTTP(w, r)
				return
			}
			hostile.RedirectTo(thief.URL, code).ServeHTTP(w, r)
		})
		c := newTestClient(t, srv.URL)
		for range 2 { // the second probe asks for the policies at once
			got := c.Probe(context.Background())
			if got.Up || !strings.Contains(got.Error, "redirects are not followed") {
				t.Errorf("HTTP %d: up %v, error %q: want down, the redirect refused", code, got.Up, got.Error)
			}
		}
	}
	if got := thief.Requests(); len(got) > 0 {
		t.Errorf("the other port received %d requests:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// Issue 19, item 10: a federation link that is expected (configured) or was
// seen by an earlier probe and is gone reads as a link not running, so that
// IAPRabbitmqFederationLinkDown fires for it instead of its series vanishing.
func TestProbeReportsMissingFederationLinks(t *testing.T) {
	healthy, dr := serveRecorded(t, "3.10/healthy"), serveRecorded(t, "3.10/dr-healthy")
	c, err := NewClient(configtest.RabbitMQ(config.RabbitCluster{
		Name: "dr", Site: "dc2", URLs: []string{dr.URL},
		Credentials:     config.Credentials{Username: "guest", Password: "secret"},
		Timeout:         model.Duration(5 * time.Second),
		FederationLinks: []config.FederationLink{{VHost: "/", Upstream: "dc1", Exchange: "fed.audit"}},
	}), promslog.NewNopLogger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	status := func(s topology.RabbitCluster) map[string]string {
		out := map[string]string{}
		for _, l := range s.FederationLinks {
			out[l.Type+" "+l.Name] = l.Status
		}
		return out
	}
	got := status(c.Probe(context.Background()))
	want := map[string]string{"exchange fed.events": "running", "queue fed.tasks": "running", "exchange fed.audit": LinkMissing}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("first probe: links %v, want %v", got, want)
	}
	// The same client now reads a cluster with no federation link at all.
	c.cfg.URLs = []string{healthy.URL}
	got = status(c.Probe(context.Background()))
	want = map[string]string{"exchange fed.events": LinkMissing, "queue fed.tasks": LinkMissing, "exchange fed.audit": LinkMissing}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("after the links vanished: %v, want %v", got, want)
	}
}
