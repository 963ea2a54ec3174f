package loadbalancer

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// maxHealthAnswer bounds one /health/status answer (a few hundred bytes).
const maxHealthAnswer = 64 << 10

// vipClient asks /health/status through a virtual IP.
type vipClient struct {
	url      string
	requests int
	http     *http.Client
}

func newVIPClient(cfg config.LoadBalancer) (*vipClient, error) {
	requests := cfg.Requests
	// One connection per request, all open at once: a balancer that keeps
	// a client on one server per connection still shows its choice per
	// connection.
	t, err := probe.NewTransport(probe.HTTPOptions{TLS: cfg.TLS, MaxIdleConnsPerHost: requests})
	if err != nil {
		return nil, err
	}
	return &vipClient{url: strings.TrimRight(cfg.URL, "/") + "/health/status", requests: requests, http: t.Client()}, nil
}

// healthAnswer is what /health/status names of the server that answered.
type healthAnswer struct {
	Host     string `json:"host"`
	ServerID string `json:"serverId"`
}

// probe sends the requests at once and counts which server answered each:
// the servers the balancer routes to. The balancer is up when one answer
// names a server; a server that answered other than 200 is routed to, but
// whether it is healthy is its own probe's to say.
func (v *vipClient) probe(ctx context.Context, lb *topology.LoadBalancer) error {
	type result struct {
		ok     bool
		answer healthAnswer
		err    error
	}
	results := make([]result, v.requests)
	var wg sync.WaitGroup
	for i := range results {
		wg.Go(func() {
			results[i].answer, results[i].ok, results[i].err = v.ask(ctx)
		})
	}
	wg.Wait()

	lb.Requests = v.requests
	byServer := map[string]*topology.BalancerServer{}
	var errs []string
	for _, r := range results {
		if r.err != nil {
			errs = append(errs, r.err.Error())
			continue
		}
		key := r.answer.ServerID + "\x00" + r.answer.Host
		s, ok := byServer[key]
		if !ok {
			s = &topology.BalancerServer{Name: r.answer.Host, ServerID: r.answer.ServerID, Routed: true, Reaches: topology.Unknown}
			byServer[key] = s
		}
		s.Answers++
		if r.ok {
			lb.Answered++
			s.Reaches = topology.True
		}
	}
	for _, s := range byServer {
		lb.Servers = append(lb.Servers, *s)
	}
	slices.SortFunc(lb.Servers, func(a, b topology.BalancerServer) int {
		return strings.Compare(a.Name+a.ServerID, b.Name+b.ServerID)
	})
	if len(lb.Servers) == 0 {
		slices.Sort(errs)
		return fmt.Errorf("no answer named a server through %s: %s", v.url, strings.Join(slices.Compact(errs), "; "))
	}
	lb.Up = true
	return nil
}

// ask sends one request; ok is a 200 answer.
func (v *vipClient) ask(ctx context.Context) (healthAnswer, bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, v.url, nil)
	if err != nil {
		return healthAnswer{}, false, err
	}
	req.Header.Set("Accept", "application/json")
	res, err := v.http.Do(req)
	if err != nil {
		return healthAnswer{}, false, err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(io.LimitReader(res.Body, maxHealthAnswer+1))
	if err != nil {
		return healthAnswer{}, false, err
	}
	var a healthAnswer
	if len(b) > maxHealthAnswer || json.Unmarshal(b, &a) != nil || (a.ServerID == "" && a.Host == "") {
		return healthAnswer{}, false, fmt.Errorf("HTTP %d without a server's /health/status answer", res.StatusCode)
	}
	return a, res.StatusCode == http.StatusOK, nil
}
