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

// siteLoss removes every member located in site and asks whether some IAP
// server left can still work tasks with everything it depends on: True as
// soon as one can, False when every one is known not to, Unknown otherwise.
func (e estate) siteLoss(site string) judgement {
	switch {
	case e.s.IAP == nil:
		return unknown("the IAP servers were not probed")
	case e.mongoUnread():
		return unknown("the MongoDB replica sets were not probed")
	}
	var reasons, unsure []string
	for _, srv := range e.s.IAP {
		if srv.Site == site {
			continue
		}
		switch srv.WorkState() {
		case False:
			continue
		case Unknown:
			unsure = append(unsure, srv.Name+": whether it can work tasks is unknown")
			continue
		}
		j := e.dependenciesSurvive(srv, site)
		switch j.state {
		case True:
			return yes("%s can work tasks without %s", srv.Name, site)
		case Unknown:
			unsure = append(unsure, srv.Name+": "+j.reason)
		default:
			reasons = append(reasons, srv.Name+": "+j.reason)
		}
	}
	if len(unsure) > 0 {
		return unknown("%s", strings.Join(unsure, "; "))
	}
	if len(reasons) == 0 {
		return no("no IAP server outside %s can work tasks", site)
	}
	return no("%s", strings.Join(reasons, "; "))
}

// dependenciesSurvive judges whether srv's replica sets, Sentinel group and
// RabbitMQ cluster survive the loss of site.
func (e estate) dependenciesSurvive(srv IAPServer, site string) judgement {
	j := yes("")
	worse := func(k judgement) {
		if k.state == False || (k.state == Unknown && j.state == True) {
			j = k
		}
	}
	for _, rs := range e.s.MongoDB {
		worse(rs.Survives(site))
	}
	if srv.Redis != "" {
		g, _ := e.redis(srv.Redis)
		worse(g.Survives(site))
	}
	if srv.RabbitMQ != "" {
		c, _ := e.rabbit(srv.RabbitMQ)
		worse(c.Survives(site))
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
