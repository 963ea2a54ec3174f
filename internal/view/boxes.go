package view

import (
	"fmt"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Boxes lays out every member of the snapshot, in row order: IAP servers,
// MongoDB members, Redis data nodes, Sentinels, RabbitMQ nodes, gateways,
// load balancers.
func Boxes(s *topology.Snapshot) []sitedBox {
	var out []sitedBox
	add := func(site string, b Box) { out = append(out, sitedBox{Box: b, site: site}) }

	for _, srv := range s.IAP {
		b := Box{Component: "iap", Name: srv.Name, State: srv.ObservedState()}
		switch b.State {
		case topology.StateActive:
			b.Class = ClassHead
		case topology.StateStandby:
			switch srv.PromotableState() {
			case topology.True:
				b.Class = ClassFollower
			case topology.False:
				b.State, b.Class = "standby, not promotable", ClassDown
			default:
				b.State, b.Class = "standby, promotable unknown", ClassUnknown
			}
		case topology.StateUnknown:
			b.Class = ClassUnknown // answers, but its worker state was not read
		default:
			b.Class = ClassDown
		}
		b.Detail = fmt.Sprintf("declared %s", srv.DeclaredRole)
		if srv.Release != "" {
			b.Detail += ", release " + srv.Release
		}
		if srv.Error != "" {
			b.Detail += ": " + srv.Error
		}
		add(srv.Site, b)
	}
	for _, rs := range s.MongoDB {
		for _, m := range rs.Members {
			b := Box{Component: "mongodb", Group: rs.Name, Name: m.Name, State: strings.ToLower(m.StateStr)}
			if b.State == "" {
				b.State = fmt.Sprintf("state %d", m.State)
			}
			switch {
			case !rs.Up:
				b.State, b.Class = "unknown", ClassUnknown
			case m.State == topology.MongoPrimary:
				b.Class = ClassHead
			case !m.Healthy || m.State == topology.MongoDown:
				b.Class = ClassDown
			case m.State == topology.MongoSecondary || m.State == topology.MongoArbiter:
				b.Class = ClassFollower
			default:
				b.Class = ClassUnknown // recovering, startup2, rollback: not serving yet
			}
			b.Detail = fmt.Sprintf("set %s, %d vote(s), priority %g", rs.Name, m.Votes, m.Priority)
			if m.HasLag {
				b.Detail += fmt.Sprintf(", lag %.0fs", m.LagSeconds)
			}
			add(m.Site, b)
		}
	}
	for _, g := range s.Redis {
		for _, n := range g.Nodes {
			b := Box{Component: "redis", Group: g.Name, Name: n.Address, Detail: "group " + g.Name}
			switch {
			case !n.Up:
				b.State, b.Class = "down", ClassDown
			case n.Role == "master":
				b.State, b.Class = "master", ClassHead
			case n.MasterLinkUp:
				b.State, b.Class = "replica", ClassFollower
			default:
				b.State, b.Class = "replica, link down", ClassDown
			}
			add(n.Site, b)
		}
	}
	for _, g := range s.Redis {
		for _, sv := range g.Sentinels {
			b := Box{Component: "sentinel", Group: g.Name, Name: sv.Address, Detail: "group " + g.Name}
			switch {
			case !sv.Up:
				b.State, b.Class = "down", ClassDown
			default:
				b.State, b.Class = "master at "+sv.MasterAddress, ClassFollower
			}
			add(sv.Site, b)
		}
	}
	for _, c := range s.RabbitMQ {
		for _, n := range c.Nodes {
			b := Box{Component: "rabbitmq", Group: c.Name, Name: n.Name, Detail: "cluster " + c.Name}
			switch {
			case !c.Up:
				b.State, b.Class = "unknown", ClassUnknown
			case !n.Running:
				b.State, b.Class = "stopped", ClassDown
			case len(n.Partitions) > 0:
				b.State, b.Class = "partitioned", ClassDown
			case n.MemAlarm || n.DiskAlarm:
				b.State, b.Class = "alarm", ClassDown
			default:
				b.State, b.Class = "running", ClassFollower
			}
			add(n.Site, b)
		}
	}
	for _, g := range s.Gateways {
		b := Box{Component: "gateway", Name: g.Name, State: "up", Class: ClassHead,
			Detail: fmt.Sprintf("%d of %d devices", g.TotalDevices(), g.Capacity)}
		if !g.Up {
			b.State, b.Class = "down", ClassDown
		}
		add(g.Site, b)
	}
	// A balancer and where it sends users: the servers it routes to, and
	// the servers on which its checks and the exporter's view disagree.
	for _, lb := range topology.Balancers(s) {
		b := Box{Component: "loadbalancer", Name: lb.Balancer, State: "down", Class: ClassDown, Detail: lb.Kind}
		if lb.Up {
			var routed, disagree []string
			for _, sv := range lb.Servers {
				if sv.Routed {
					routed = append(routed, sv.Server)
				}
				if sv.Disagrees == topology.True {
					disagree = append(disagree, sv.Server)
				}
			}
			b.State, b.Class = "routes to "+strings.Join(routed, ", "), ClassHead
			if len(routed) == 0 {
				b.State, b.Class = "routes to no server", ClassDown
			}
			b.Detail = fmt.Sprintf("%s, %d routed server(s) working tasks, %d idle", lb.Kind, lb.RoutedWorking, lb.RoutedIdle)
			if len(disagree) > 0 {
				b.Detail += "; disagrees with the exporter on " + strings.Join(disagree, ", ")
				b.Class = ClassUnknown
			}
		}
		add(lb.Site, b)
	}
	return out
}
