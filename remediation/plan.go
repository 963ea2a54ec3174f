package remediation

import (
	"cmp"
	"fmt"
	"slices"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe/iap"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Plan is one promotion: the failed active server and the standby that
// takes its place. It is journaled before any step runs and handed to the
// scripts.
type Plan struct {
	Incident  string `json:"incident"`
	AlertName string `json:"alertname,omitempty"`
	Cluster   string `json:"cluster"`
	From      string `json:"from"`
	FromURL   string `json:"from_url"`
	FromSite  string `json:"from_site"`
	To        string `json:"to"`
	ToURL     string `json:"to_url"`
	ToSite    string `json:"to_site"`
	CrossSite bool   `json:"cross_site"`
	// FromAnswers: the failed server answered the receiver's own health
	// check (with an error), so the fence can reach it.
	FromAnswers bool `json:"from_answers"`
	// ConfirmedBy are the other vantage points that saw the failed server
	// down too, when the fence could not reach it (secondLook).
	ConfirmedBy []string `json:"confirmed_by,omitempty"`
	// FencingToken is the token of the lease the action runs under.
	FencingToken int64 `json:"fencing_token,omitempty"`
	// Steps say in words what will be done, in order.
	Steps []string `json:"steps"`
}

// refusal is a reason not to act and what the receiver saw.
type refusal struct {
	reason string
	detail string
}

func (r *refusal) Error() string { return r.reason + ": " + r.detail }

func refuse(reason, format string, args ...any) *refusal {
	return &refusal{reason: reason, detail: fmt.Sprintf(format, args...)}
}

// planPromotion re-verifies the failure on a fresh snapshot and the
// receiver's own health check of the failed server, and picks the standby:
// want when a person named one, else the first promotable standby of the
// failed server's site, then of the others, in declared order, so that
// every receiver given the same snapshot picks the same server.
func planPromotion(estate *config.Config, snap *topology.Snapshot, from string, direct iap.Health, want string) (*Plan, *refusal) {
	fi := slices.IndexFunc(estate.IAP.Servers, func(s config.IAPServer) bool { return s.Name == from })
	if fi < 0 {
		return nil, refuse(reasonVerificationFailed, "%s is not an IAP server of the configuration", from)
	}
	fc := estate.IAP.Servers[fi]
	if fc.Role != config.RoleActive {
		return nil, refuse(reasonVerificationFailed, "%s is declared %s, not active", from, fc.Role)
	}
	if snap.IAP == nil {
		return nil, refuse(reasonVerificationFailed, "the IAP probe did not report")
	}
	seen, ok := findServer(snap.IAP, from)
	if !ok {
		return nil, refuse(reasonVerificationFailed, "%s is missing from the snapshot", from)
	}
	// Down by two signals: the exporter's probes and the receiver's own check.
	switch downThere, downHere := seen.ObservedState() == topology.StateDown, !direct.Up; {
	case downThere && downHere:
	case downHere:
		return nil, refuse(reasonUnreachableHere, "%s is healthy to the exporter's probes but not to the receiver (%s): a network problem between them, not a failed server", from, direct.Reason)
	case downThere:
		return nil, refuse(reasonVerificationFailed, "%s answers the receiver's own /health/status although the probes saw it down (%s)", from, seen.Error)
	default:
		return nil, refuse(reasonVerificationFailed, "%s is up", from)
	}

	declared, working := 0, 0
	for _, s := range estate.IAP.Servers {
		if s.Role == config.RoleActive {
			declared++
		}
	}
	for _, s := range snap.IAP {
		if s.ObservedState() == topology.StateActive {
			working++
		}
	}
	if working >= declared {
		return nil, refuse(reasonAlreadyRemediated, "%d servers work tasks, as many as are declared active: a standby was already promoted", working)
	}

	candidates := promotableStandbys(estate, snap, fc.Site)
	var to topology.IAPServer
	switch {
	case want != "":
		i := slices.IndexFunc(candidates, func(s topology.IAPServer) bool { return s.Name == want })
		if i < 0 {
			return nil, refuse(reasonVerificationFailed, "%s is not a healthy standby (promotable: %v)", want, names(candidates))
		}
		to = candidates[i]
	case len(candidates) == 0:
		return nil, refuse(reasonVerificationFailed, "no healthy standby to promote")
	default:
		to = candidates[0]
	}

	if r := dependenciesReady(estate, snap, to); r != nil {
		return nil, r
	}

	p := &Plan{
		Cluster: fc.Cluster, From: fc.Name, FromURL: fc.URL, FromSite: fc.Site,
		To: to.Name, ToURL: to.URL, ToSite: to.Site, CrossSite: to.Site != fc.Site,
		FromAnswers: direct.Answered,
	}
	p.Steps = []string{
		fmt.Sprintf("fence %s: deactivate its task and job workers if it still answers", p.From),
		fmt.Sprintf("activate the task and job workers of %s", p.To),
		fmt.Sprintf("confirm with %s's workers/status that both run", p.To),
		fmt.Sprintf("run the post-promotion scripts of site %s", p.ToSite),
	}
	return p, nil
}

func findServer(servers []topology.IAPServer, name string) (topology.IAPServer, bool) {
	i := slices.IndexFunc(servers, func(s topology.IAPServer) bool { return s.Name == name })
	if i < 0 {
		return topology.IAPServer{}, false
	}
	return servers[i], true
}

// promotableStandbys lists the declared standbys that answer with their
// workers off and could take over: those of site first, then the others,
// each in declared order (the snapshot follows the configuration).
func promotableStandbys(estate *config.Config, snap *topology.Snapshot, site string) []topology.IAPServer {
	var out []topology.IAPServer
	for _, s := range snap.IAP {
		if s.DeclaredRole == config.RoleStandby && s.ObservedState() == topology.StateStandby && s.Promotable() {
			out = append(out, s)
		}
	}
	order := map[string]int{}
	for i, s := range estate.IAP.Servers {
		order[s.Name] = i
	}
	slices.SortStableFunc(out, func(a, b topology.IAPServer) int {
		if (a.Site == site) != (b.Site == site) {
			if a.Site == site {
				return -1
			}
			return 1
		}
		return cmp.Compare(order[a.Name], order[b.Name])
	})
	return out
}

func names(ss []topology.IAPServer) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.Name
	}
	return out
}

// dependenciesReady checks what the standby will work with: every MongoDB
// replica set has exactly one primary, and the standby's Sentinel group has
// a master and a quorum. A dependency whose probe did not report is not
// ready: unknown is never healthy.
func dependenciesReady(estate *config.Config, snap *topology.Snapshot, to topology.IAPServer) *refusal {
	for _, want := range estate.MongoDB {
		i := slices.IndexFunc(snap.MongoDB, func(rs topology.ReplicaSet) bool { return rs.Name == want.Name })
		switch {
		case i < 0:
			return refuse(reasonVerificationFailed, "MongoDB %s was not probed", want.Name)
		case !snap.MongoDB[i].Up:
			return refuse(reasonVerificationFailed, "MongoDB %s: %s", want.Name, snap.MongoDB[i].Error)
		case snap.MongoDB[i].Primaries != 1:
			return refuse(reasonVerificationFailed, "MongoDB %s has %d primaries, not one", want.Name, snap.MongoDB[i].Primaries)
		}
	}
	if to.Redis == "" || !slices.ContainsFunc(estate.Redis, func(g config.SentinelGroup) bool { return g.Name == to.Redis }) {
		return nil
	}
	i := slices.IndexFunc(snap.Redis, func(g topology.SentinelGroup) bool { return g.Name == to.Redis })
	if i < 0 {
		return refuse(reasonVerificationFailed, "Redis %s (of %s) was not probed", to.Redis, to.Name)
	}
	g := snap.Redis[i]
	// The model's verdict, the one the exporter's metrics show.
	if !g.QuorumOK() {
		return refuse(reasonVerificationFailed, "Redis %s: the Sentinels could not authorise a failover (enough reachable, none in TILT or NOQUORUM)", g.Name)
	}
	if !g.HasMaster() {
		return refuse(reasonVerificationFailed, "Redis %s: no master answers", g.Name)
	}
	return nil
}
