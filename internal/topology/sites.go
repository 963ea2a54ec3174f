package topology

import (
	"fmt"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// estate joins the configuration and the snapshot for the judgements that
// span components: a site's loss and the architecture class.
type estate struct {
	cfg *config.Config
	s   *Snapshot
}

func (e estate) redis(name string) (SentinelGroup, bool) {
	for _, g := range e.s.Redis {
		if g.Name == name {
			return g, true
		}
	}
	return SentinelGroup{Name: name}, false
}

func (e estate) rabbit(name string) (RabbitCluster, bool) {
	for _, c := range e.s.RabbitMQ {
		if c.Name == name {
			return c, true
		}
	}
	return RabbitCluster{Name: name}, false
}

// mongoConfigured says whether the configuration has a replica set; a
// configured set the probe did not report is unknown, not absent.
func (e estate) mongoUnread() bool { return len(e.cfg.MongoDB) > 0 && e.s.MongoDB == nil }

// A loss is what the model takes away before it judges the estate again:
// every member standing in one site, or one member (members.go). Site loss
// and single points of failure are the same question asked of different
// losses.
type loss struct {
	site   string
	member Member
}

func lossOfSite(site string) loss { return loss{site: site} }

func lossOf(m Member) loss { return loss{member: m} }

// takes reports whether the loss takes member m. A site's loss never takes
// an unplaced member (site ""); mayTake says it may. A Sentinel is one
// process whichever groups it watches; any other member is one of its group.
func (l loss) takes(m Member) bool {
	if l.single() {
		return l.member.Component == m.Component && l.member.Name == m.Name &&
			(m.Component == ComponentSentinel || l.member.Group == m.Group)
	}
	return m.Site != "" && m.Site == l.site
}

// mayTake reports whether a member standing in site may be taken without
// the model knowing: an unplaced member under a site's loss.
func (l loss) mayTake(site string) bool { return l.member.Name == "" && l.site != "" && site == "" }

// single reports whether the loss is one member's.
func (l loss) single() bool { return l.member.Name != "" }

func (l loss) String() string {
	if l.single() {
		return l.member.Name
	}
	return l.site
}

// without takes the loss away and asks whether some IAP server left can
// still work tasks with everything it depends on, and users still reach
// it through a load balancer where balancers are configured.
func (e estate) without(l loss) judgement {
	return e.balancersSurvive(l, e.serversWithout(l))
}

// serversWithout asks whether some IAP server left can still work tasks
// with everything it depends on: True as soon as one can, False when every
// one is known not to, Unknown otherwise.
func (e estate) serversWithout(l loss) judgement {
	switch {
	case e.s.IAP == nil:
		return unknown("the IAP servers were not probed")
	case e.mongoUnread():
		return unknown("the MongoDB replica sets were not probed")
	}
	var reasons, unsure []string
	shared := map[string]bool{} // the servers' reasons, without their names
	for _, srv := range e.s.IAP {
		if l.takes(Member{Component: ComponentIAP, Name: srv.Name, Site: srv.Site}) {
			continue
		}
		switch srv.WorkState() {
		case False:
			continue
		case Unknown:
			unsure = append(unsure, srv.Name+": whether it can work tasks is unknown")
			continue
		}
		j := e.dependenciesSurvive(srv, l)
		switch j.state {
		case True:
			return yes("%s can work tasks without %s", srv.Name, l)
		case Unknown:
			unsure = append(unsure, srv.Name+": "+j.reason)
		default:
			reasons = append(reasons, srv.Name+": "+j.reason)
			shared[j.reason] = true
		}
	}
	if len(unsure) > 0 {
		return unknown("%s", strings.Join(unsure, "; "))
	}
	if len(reasons) == 0 {
		if l.single() {
			return no("%s is the only IAP server able to work tasks", l)
		}
		return no("no IAP server outside %s can work tasks", l)
	}
	// One member breaking what every server depends on is said once.
	if l.single() && len(shared) == 1 {
		return no("%s", sortedKeys(shared)[0])
	}
	return no("%s", strings.Join(reasons, "; "))
}

// dependenciesSurvive judges whether srv's replica sets, Sentinel group and
// RabbitMQ cluster survive the loss.
func (e estate) dependenciesSurvive(srv IAPServer, l loss) judgement {
	j := yes("")
	worse := func(k judgement) {
		if k.state == False || (k.state == Unknown && j.state == True) {
			j = k
		}
	}
	for _, rs := range e.s.MongoDB {
		worse(rs.Survives(l))
	}
	if srv.Redis != "" {
		g, _ := e.redis(srv.Redis)
		worse(g.Survives(l))
	}
	if srv.RabbitMQ != "" {
		c, _ := e.rabbit(srv.RabbitMQ)
		worse(c.Survives(l))
	}
	return j
}

// dependenciesRedundant judges whether the Sentinel group and RabbitMQ
// cluster srv uses are clusters (HA-3).
func (e estate) dependenciesRedundant(srv IAPServer) judgement {
	if srv.Redis == "" {
		return no("redis: no Sentinel group configured for %s", srv.Name)
	}
	g, _ := e.redis(srv.Redis)
	if j := g.redundant(); j.state != True {
		return j
	}
	if srv.RabbitMQ != "" {
		c, _ := e.rabbit(srv.RabbitMQ)
		return c.redundant()
	}
	return yes("")
}

func joinReasons(js []judgement) string {
	var out []string
	for _, j := range js {
		if j.reason != "" {
			out = append(out, j.reason)
		}
	}
	return strings.Join(out, "; ")
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
