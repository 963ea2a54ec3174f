package topology

import (
	"fmt"
	"slices"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// LoadBalancer is one balancer in front of the IAP servers as probed:
// HAProxy's stats, or the answers seen through a virtual IP.
type LoadBalancer struct {
	Name string `json:"name"`
	Site string `json:"site"`
	// Kind is haproxy or vip (config.BalancerHAProxy, config.BalancerVIP).
	Kind string `json:"kind"`
	// Up: HAProxy's stats socket answered with the backend, or at least
	// one request through the virtual IP was answered.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// Servers are the backend's servers (haproxy), or the servers that
	// answered through the virtual IP (vip).
	Servers []BalancerServer `json:"servers,omitempty"`
	// Requests and Answered (vip): /health/status asked through the
	// virtual IP in this scrape, and answered 200.
	Requests int `json:"requests,omitempty"`
	Answered int `json:"answered,omitempty"`
}

// BalancerServer is one server as a balancer sees it.
type BalancerServer struct {
	// Name is the balancer's name for it; Address its host:port there.
	Name    string `json:"name,omitempty"`
	Address string `json:"address,omitempty"`
	// IAPServer is the configured IAP server it is; empty when none
	// matches (the model counts it as unmapped).
	IAPServer string `json:"iap_server,omitempty"`
	// Status is HAProxy's: UP, DOWN, MAINT, DRAIN, NOLB, or a transition
	// such as "UP 1/2" (going down) and "DOWN 1/2" (going up).
	Status      string `json:"status,omitempty"`
	Backup      bool   `json:"backup,omitempty"`
	CheckStatus string `json:"check_status,omitempty"`
	// Reaches says whether the balancer's own health check reaches the
	// server: Unknown where it runs none (MAINT, or a vip that met no
	// answer from it).
	Reaches Tristate `json:"reaches"`
	// Routed: the balancer sends it new traffic now.
	Routed bool `json:"routed"`
	// ServerID and Answers (vip): the serverId /health/status named, and
	// how many of the requests it answered.
	ServerID string `json:"server_id,omitempty"`
	Answers  int    `json:"answers,omitempty"`
}

// Maintenance reports a server an operator took out: MAINT (no traffic,
// no checks) or DRAIN (no new traffic).
func (b BalancerServer) Maintenance() bool {
	return strings.HasPrefix(b.Status, "MAINT") || strings.HasPrefix(b.Status, "DRAIN")
}

// LoadBalancers is the load balancer probe's part.
type LoadBalancers []LoadBalancer

// AddTo implements Part.
func (p LoadBalancers) AddTo(s *Snapshot) { s.LoadBalancers = append(s.LoadBalancers, p...) }

// BalancerVerdict is the model's judgement of one balancer against the IAP
// servers' own answers: where users are sent and whether the two vantage
// points (the balancer's checks, the exporter's probe) agree.
type BalancerVerdict struct {
	Balancer string `json:"balancer"`
	Site     string `json:"site"`
	Kind     string `json:"kind"`
	Up       bool   `json:"up"`
	// RoutedWorking and RoutedIdle count the IAP servers it routes to that
	// work tasks, and that are known to work none (a standby: users sent
	// there wait for work no one picks up). A routed server whose worker
	// state is unknown counts in neither.
	RoutedWorking int `json:"routed_working"`
	RoutedIdle    int `json:"routed_idle"`
	// Unmapped counts balancer servers (or vip answers) that match no
	// configured IAP server.
	Unmapped int                     `json:"unmapped"`
	Servers  []BalancerServerVerdict `json:"servers,omitempty"`
}

// BalancerServerVerdict is one configured IAP server behind a balancer.
type BalancerServerVerdict struct {
	Server      string   `json:"server"`
	Routed      bool     `json:"routed"`
	Reaches     Tristate `json:"reaches"`
	Backup      bool     `json:"backup"`
	Maintenance bool     `json:"maintenance"`
	// PromotedUnrouted: a declared standby that works tasks (promoted)
	// and gets no traffic from this balancer.
	PromotedUnrouted bool `json:"promoted_unrouted"`
	// Disagrees compares the balancer's check with the exporter's
	// /health/status: True when one reaches the server and the other does
	// not (a partition between them, not a failure), Unknown when either
	// view is missing.
	Disagrees Tristate `json:"disagrees"`
	Reason    string   `json:"reason,omitempty"`
}

// Balancers judges every probed balancer. A balancer whose probe failed has
// a verdict with Up false and nothing else: where it routes is unknown.
func Balancers(s *Snapshot) []BalancerVerdict {
	var out []BalancerVerdict
	for _, lb := range s.LoadBalancers {
		out = append(out, judgeBalancer(lb, s.IAP))
	}
	return out
}

func judgeBalancer(lb LoadBalancer, servers []IAPServer) BalancerVerdict {
	v := BalancerVerdict{Balancer: lb.Name, Site: lb.Site, Kind: lb.Kind, Up: lb.Up}
	if !lb.Up {
		return v
	}
	byName := map[string]IAPServer{}
	byID := map[string]string{}
	for _, srv := range servers {
		byName[srv.Name] = srv
		if srv.ServerID != "" {
			byID[srv.ServerID] = srv.Name
		}
	}
	seen := map[string]*BalancerServerVerdict{}
	var order []string
	for _, bs := range lb.Servers {
		name := bs.IAPServer
		if name == "" && bs.ServerID != "" {
			name = byID[bs.ServerID]
		}
		if _, ok := byName[name]; !ok && lb.Kind == config.BalancerVIP {
			name = bs.Name // the host /health/status named, where it is the server's name
		}
		if _, ok := byName[name]; !ok {
			v.Unmapped++
			continue
		}
		sv, ok := seen[name]
		if !ok {
			sv = &BalancerServerVerdict{Server: name, Reaches: Unknown}
			seen[name] = sv
			order = append(order, name)
		}
		sv.Routed = sv.Routed || bs.Routed
		sv.Backup = sv.Backup || bs.Backup
		sv.Maintenance = sv.Maintenance || bs.Maintenance()
		if bs.Reaches != Unknown {
			sv.Reaches = bs.Reaches
		}
	}
	// A vip sees only the servers that answered: a configured server that
	// did not is not routed, and whether the balancer reaches it is unknown.
	if lb.Kind == config.BalancerVIP {
		for _, srv := range servers {
			if _, ok := seen[srv.Name]; !ok {
				seen[srv.Name] = &BalancerServerVerdict{Server: srv.Name, Reaches: Unknown}
				order = append(order, srv.Name)
			}
		}
	}
	for _, name := range order {
		sv := seen[name]
		srv := byName[name]
		if sv.Routed {
			switch {
			case !srv.Up:
			case srv.TaskWorker == True:
				v.RoutedWorking++
			case srv.TaskWorker == False:
				v.RoutedIdle++
			}
		}
		sv.PromotedUnrouted = !sv.Routed && srv.Up && srv.TaskWorker == True && srv.DeclaredRole == "standby"
		sv.Disagrees, sv.Reason = vantage(lb.Name, sv.Reaches, srv)
		v.Servers = append(v.Servers, *sv)
	}
	return v
}

// vantage compares the balancer's view of srv with the exporter's: the
// balancer checks from where users come in, the exporter from where it
// runs. A server seen from one and not from the other is cut off from one
// of them: a partition, which no promotion mends.
func vantage(balancer string, reaches Tristate, srv IAPServer) (Tristate, string) {
	switch {
	case reaches == Unknown:
		return Unknown, ""
	case reaches == True && !srv.Up:
		return True, fmt.Sprintf("%s reaches %s, which the exporter sees down (%s)", balancer, srv.Name, srv.Error)
	case reaches == False && srv.Up:
		return True, fmt.Sprintf("%s's checks fail on %s, which answers the exporter", balancer, srv.Name)
	}
	return False, ""
}

// balancersSurvive narrows a loss's judgement by the balancers: users
// reach the surviving servers only through a balancer the loss does not
// take. Without configured balancers it changes nothing.
func (e estate) balancersSurvive(l loss, j judgement) judgement {
	if len(e.cfg.LoadBalancers) == 0 || j.state == False {
		return j
	}
	var left []string
	for _, lb := range e.cfg.LoadBalancers {
		if !l.takes(Member{Component: ComponentLoadBalancer, Name: lb.Name, Site: lb.Site}) {
			left = append(left, lb.Name)
		}
	}
	if len(left) == 0 {
		if l.single() {
			return no("%s is the only load balancer in front of the IAP servers", l)
		}
		return no("every load balancer stands in %s and is lost with it", l)
	}
	if e.s.LoadBalancers == nil {
		return unknown("the load balancers were not probed")
	}
	for _, lb := range e.s.LoadBalancers {
		if slices.Contains(left, lb.Name) && lb.Up {
			return j
		}
	}
	if l.single() {
		return no("without %s, no other load balancer answers (%s)", l, strings.Join(left, ", "))
	}
	return no("no load balancer outside %s answers (%s)", l, strings.Join(left, ", "))
}
