package mongodb

import (
	"sort"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Lag references.
const (
	LagFromPrimary  = "primary"
	LagFromFreshest = "freshest"
)

// memberView is what a direct connection to one member said.
type memberView struct {
	reachable bool
	hello     helloReply
}

// replicaSet joins what the set's status and configuration say with each
// member's own view (when asked) into the typed state. It is pure, so that
// every shape of the documents can be tested without a server.
func replicaSet(name string, sites map[string]string, siteTag string, status replSetStatus, conf replSetConfig, views map[string]memberView) topology.ReplicaSet {
	rs := topology.ReplicaSet{Name: name, Up: true, Term: status.Term}

	byID := make(map[int]configMember, len(conf.Config.Members))
	for _, m := range conf.Config.Members {
		byID[m.ID] = m
	}
	ref, refKind := lagReference(status.Members, byID)
	rs.LagReference = refKind

	primaries := map[string]bool{}
	for _, sm := range status.Members {
		cm, configured := byID[sm.ID]
		if !configured {
			cm = configMember{ID: sm.ID, Host: sm.Name}
		}
		m := topology.MongoMember{
			ID:          sm.ID,
			Name:        sm.Name,
			State:       sm.State,
			StateStr:    sm.StateStr,
			Healthy:     sm.Health == 1,
			Votes:       cm.votes(),
			Priority:    cm.priority(),
			ArbiterOnly: cm.ArbiterOnly,
			Hidden:      cm.Hidden,
			Tags:        cm.Tags,

			SecondaryDelaySeconds: cm.delay(),
		}
		m.Site = sites[m.Name]
		if m.Site == "" {
			m.Site = m.Tags[siteTag]
		}
		// Lag means something only for a data member the set can reach:
		// an unreachable member's optime reads 1970. A delayed member is
		// meant to trail by its delay: only what is beyond it is lag.
		if m.Healthy && !m.ArbiterOnly && sm.hasOptime() && !ref.IsZero() {
			m.LagSeconds = max(ref.Sub(sm.OptimeDate).Seconds()-float64(m.SecondaryDelaySeconds), 0)
			m.HasLag = true
		}
		if sm.State == topology.MongoPrimary {
			primaries[m.Name] = true
		}
		if views != nil {
			v := views[m.Name]
			m.Reachable = topology.TristateOf(v.reachable)
			if v.reachable && v.hello.primary() {
				primaries[m.Name] = true
			}
		}
		rs.Members = append(rs.Members, m)
	}
	rs.Primaries = len(primaries)
	sort.SliceStable(rs.Members, func(i, j int) bool { return rs.Members[i].ID < rs.Members[j].ID })
	return rs
}

// lagReference is the optime lag is measured against: the primary's, or
// with no primary the freshest healthy data member's (measuring against a
// missing primary is how other exporters report nonsense during elections).
func lagReference(members []statusMember, config map[int]configMember) (time.Time, string) {
	var freshest time.Time
	for _, m := range members {
		if m.Health != 1 || config[m.ID].ArbiterOnly || !m.hasOptime() {
			continue
		}
		if m.State == topology.MongoPrimary {
			return m.OptimeDate, LagFromPrimary
		}
		if m.OptimeDate.After(freshest) {
			freshest = m.OptimeDate
		}
	}
	if freshest.IsZero() {
		return time.Time{}, ""
	}
	return freshest, LagFromFreshest
}
