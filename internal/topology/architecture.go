package topology

import (
	"fmt"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// The architecture classes, from the architectures Itential documents for
// IAP (HA-0, HA-3, HA-6), applied to the live topology the
// same way before and after a promotion: a server counts if it works tasks
// or could be promoted, whatever role the configuration declares.
//
//	class  holds when
//	HA-0   always (single instances)
//	HA-3   the MongoDB replica sets are clusters (a primary, 3 healthy voters, 2 electable)
//	       and one site holds at least 2 IAP servers able to work tasks whose Sentinel
//	       group is a cluster (a master, 3 Sentinels able to authorise a failover, a
//	       promotable replica) and whose RabbitMQ cluster, where used, runs 3 nodes
//	HA-6   HA-3 in two sites that match (both use RabbitMQ or neither), MongoDB voters
//	       in three sites, and the loss of every configured site survivable
//
// A class is claimed only when every fact it rests on was read, and the
// class above it is known not to hold.

// architecture classes the estate as it stands now.
func (e estate) architecture() ArchitectureVerdict {
	a := ArchitectureVerdict{Expected: e.cfg.Architecture}
	if a.Expected == "" {
		a.Expected = ArchNone
	}
	perSite := e.sitesHA3()
	ha3 := e.ha3(perSite)
	switch ha3.state {
	case False:
		a.Observed, a.Reason = config.ArchHA0, ha3.reason
		return a
	case Unknown:
		a.Observed, a.Reason = ArchUnknown, ha3.reason
		return a
	}
	ha6 := e.ha6(perSite)
	switch ha6.state {
	case True:
		a.Observed = config.ArchHA6
	case False:
		a.Observed, a.Reason = config.ArchHA3, ha6.reason
	default:
		a.Observed, a.Reason = ArchUnknown, "HA-3 holds; whether HA-6 holds is unknown: "+ha6.reason
	}
	return a
}

type siteClass struct {
	site string
	judgement
}

// sites are the sites IAP servers stand in (configured or probed), sorted:
// a site without one (a witness) cannot meet HA-3.
func (e estate) sites() []string {
	seen := map[string]bool{}
	for _, srv := range e.cfg.IAP.Servers {
		seen[srv.Site] = true
	}
	for _, srv := range e.s.IAP {
		seen[srv.Site] = true
	}
	return sortedKeys(seen)
}

// sitesHA3 judges, for every site, whether its IAP servers and the
// dependencies they use make an HA-3 (MongoDB is judged for the estate).
func (e estate) sitesHA3() []siteClass {
	var out []siteClass
	for _, site := range e.sites() {
		able, unsure := 0, 0
		var why []string
		for _, srv := range e.s.IAP {
			if srv.Site != site {
				continue
			}
			j := judgement{srv.WorkState(), ""}
			switch j.state {
			case False:
				j.reason = srv.Name + " cannot work tasks"
			case Unknown:
				j.reason = "whether " + srv.Name + " can work tasks is unknown"
			default:
				j = e.dependenciesRedundant(srv)
			}
			switch j.state {
			case True:
				able++
			case Unknown:
				unsure++
				why = append(why, j.reason)
			default:
				why = append(why, j.reason)
			}
		}
		sc := siteClass{site: site}
		if e.s.IAP == nil {
			sc.judgement = unknown("%s: iap state unknown", site)
			out = append(out, sc)
			continue
		}
		head := fmt.Sprintf("%s: %s able to work tasks with clustered dependencies, HA-3 needs 2", site, plural(able, "IAP server", "IAP servers"))
		switch {
		case able >= 2:
			sc.judgement = yes("")
		case able+unsure >= 2:
			sc.judgement = unknown("%s (%s)", head, strings.Join(dedup(why), "; "))
		case len(why) > 0:
			sc.judgement = no("%s (%s)", head, strings.Join(dedup(why), "; "))
		default:
			sc.judgement = no("%s", head)
		}
		out = append(out, sc)
	}
	return out
}

// ha3 judges HA-3 for the estate: MongoDB and Redis configured and seen,
// the replica sets clusters, and one site meeting HA-3.
func (e estate) ha3(perSite []siteClass) judgement {
	var missing []judgement
	switch {
	case len(e.cfg.IAP.Servers) == 0 && len(e.s.IAP) == 0:
		missing = append(missing, no("no IAP server configured"))
	case e.s.IAP == nil:
		missing = append(missing, unknown("iap state unknown"))
	}
	switch {
	case len(e.cfg.MongoDB) == 0 && len(e.s.MongoDB) == 0:
		missing = append(missing, no("no MongoDB replica set configured"))
	case e.mongoUnread():
		missing = append(missing, unknown("mongodb state unknown"))
	}
	for _, rs := range e.s.MongoDB {
		if j := rs.redundant(); j.state != True {
			missing = append(missing, j)
		}
	}
	if len(e.cfg.Redis) == 0 && len(e.s.Redis) == 0 {
		missing = append(missing, no("no Redis Sentinel group configured"))
	}
	sites := judgement{state: False}
	var siteWhy []judgement
	for _, sc := range perSite {
		if sc.state == True {
			sites = yes("")
			break
		}
		if sc.state == Unknown {
			sites.state = Unknown
		}
		siteWhy = append(siteWhy, sc.judgement)
	}
	if sites.state != True {
		sites.reason = joinReasons(siteWhy)
		if sites.reason == "" {
			sites.reason = "no site holds IAP servers"
		}
		missing = append(missing, sites)
	}
	return all(missing)
}

// ha6 judges HA-6 once HA-3 holds.
func (e estate) ha6(perSite []siteClass) judgement {
	var missing []judgement
	var ok []string
	unsure := 0
	for _, sc := range perSite {
		switch sc.state {
		case True:
			ok = append(ok, sc.site)
		case Unknown:
			unsure++
		}
	}
	switch {
	case len(ok) >= 2:
		if !e.matching(ok) {
			missing = append(missing, no("sites %s meet HA-3 but do not match: only some of their servers use RabbitMQ", strings.Join(ok, ", ")))
		}
	default:
		var why []judgement
		for _, sc := range perSite {
			if sc.state != True {
				why = append(why, sc.judgement)
			}
		}
		st := False
		if len(ok)+unsure >= 2 {
			st = Unknown
		}
		missing = append(missing, judgement{st, fmt.Sprintf("HA-6 needs a second site meeting HA-3: %s", joinReasons(why))})
	}
	for _, rs := range e.s.MongoDB {
		if sites := rs.voterSites(); len(sites) < 3 {
			why := fmt.Sprintf("mongodb %s has voting members in %d sites; a tie-breaker needs a third", rs.Name, len(sites))
			if u := rs.Unplaced(); len(u) > 0 {
				why += fmt.Sprintf(" (unplaced, counted in none: %s)", strings.Join(u, ", "))
			}
			missing = append(missing, no("%s", why))
		}
	}
	for _, site := range e.cfg.Sites {
		switch j := e.without(lossOfSite(site.Name)); j.state {
		case False:
			missing = append(missing, no("losing %s is not survivable: %s", site.Name, j.reason))
		case Unknown:
			missing = append(missing, unknown("whether losing %s is survivable is unknown: %s", site.Name, j.reason))
		}
	}
	return all(missing)
}

// matching: both sites' servers use RabbitMQ, or neither's do.
func (e estate) matching(sites []string) bool {
	uses := map[bool]bool{}
	for _, srv := range e.s.IAP {
		for _, s := range sites {
			if srv.Site == s {
				uses[srv.RabbitMQ != ""] = true
			}
		}
	}
	return len(uses) == 1
}

// all is the conjunction of the judgements that fell short: True with none,
// False with its known failures named first, else Unknown.
func all(missing []judgement) judgement {
	if len(missing) == 0 {
		return yes("")
	}
	var failed, unsure []judgement
	for _, j := range missing {
		if j.state == False {
			failed = append(failed, j)
		} else {
			unsure = append(unsure, j)
		}
	}
	if len(failed) > 0 {
		return no("%s", joinReasons(failed))
	}
	return unknown("%s", joinReasons(unsure))
}

func dedup(ss []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range ss {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}
