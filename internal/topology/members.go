package topology

import (
	"cmp"
	"fmt"
	"slices"
)

// Member is one box of the estate whose loss the model weighs on its own.
type Member struct {
	// Component is iap, mongodb, redis (a data node), sentinel, rabbitmq
	// or gateway.
	Component string `json:"component"`
	// Group is the instance the member belongs to: replica set, Sentinel
	// group, RabbitMQ cluster; empty for IAP servers and gateways.
	Group string `json:"group,omitempty"`
	Name  string `json:"member"`
	Site  string `json:"site"`
}

// MemberVerdict says what losing one member alone, now, would take down.
type MemberVerdict struct {
	Member
	// Stops: no IAP server would be left able to work tasks with what it
	// depends on. Unknown when a fact the answer needs was not read.
	Stops  Tristate `json:"stops"`
	Reason string   `json:"reason,omitempty"`
	// BelowClass: the observed class would fall below the declared one.
	// Unknown when no class is declared, or the estate is not of its
	// declared class now (it cannot fall below what it is not).
	BelowClass  Tristate `json:"below_class"`
	ClassReason string   `json:"class_reason,omitempty"`
	// Devices lose their only gateway with it (gateways only).
	Devices int `json:"devices,omitempty"`
}

// memberKind enumerates one kind of member of a snapshot and fails one of
// them in a copy.
type memberKind struct {
	members func(*Snapshot) []Member
	// fail returns a copy of s in which m has failed, after the failover
	// the component makes on its own; s is left as it was.
	fail func(s Snapshot, m Member) Snapshot
}

// memberKinds are every kind of member, in the order the topology page
// draws them. A new component adds its line here.
var memberKinds = []memberKind{
	{iapMembers, failIAP},
	{mongoMembers, failMongo},
	{redisMembers, failRedis},
	{sentinelMembers, failSentinel},
	{rabbitMembers, failRabbit},
	{gatewayMembers, failGateway},
	{loadBalancerMembers, failLoadBalancer},
}

// singlePoints removes each member alone and judges the estate again, as a
// site's loss does: would an IAP server still work tasks, and would the
// class still meet the declared one. The answers are only asked of an
// estate that works now; one that does not, or whose state is unknown,
// has no single point of failure to name and says why in unknown.
func (e estate) singlePoints(arch ArchitectureVerdict, unknowns []string) ([]MemberVerdict, []string) {
	now := e.without(loss{})
	switch now.state {
	case Unknown:
		return nil, append(unknowns, "single points of failure: "+now.reason)
	case False:
		return nil, append(unknowns, "single points of failure: none to name, the estate cannot work tasks now: "+now.reason)
	}
	classNow := arch.Known() && !arch.Degraded() && arch.Expected != ArchNone
	var out []MemberVerdict
	seen := map[Member]bool{}
	for _, kind := range memberKinds {
		for _, m := range kind.members(e.s) {
			// One Sentinel may watch several groups: it is one member, and
			// its loss takes it from every group.
			key := m
			if m.Component == ComponentSentinel {
				key = Member{Component: m.Component, Name: m.Name}
			}
			if seen[key] {
				continue
			}
			seen[key] = true
			mv := MemberVerdict{Member: m}
			j := e.without(lossOf(m))
			mv.Stops = j.state.Not()
			if j.state != True {
				mv.Reason = j.reason
			}
			if m.Component == ComponentGateway {
				mv.Devices = e.gatewayDevices(m.Name)
				mv.Reason = fmt.Sprintf("a gateway does not cluster: its %d devices would have no gateway; the IAP servers keep working tasks", mv.Devices)
			}
			if classNow {
				failed := estate{cfg: e.cfg, s: ptr(kind.fail(*e.s, m))}
				a := failed.architecture()
				switch {
				case !a.Known():
					mv.BelowClass, mv.ClassReason = Unknown, a.Reason
				case a.Degraded():
					mv.BelowClass, mv.ClassReason = True, fmt.Sprintf("%s without it: %s", a.Observed, a.Reason)
				default:
					mv.BelowClass = False
				}
			}
			out = append(out, mv)
		}
	}
	return out, unknowns
}

func ptr[T any](v T) *T { return &v }

func (e estate) gatewayDevices(name string) int {
	for _, g := range e.s.Gateways {
		if g.Name == name {
			return g.TotalDevices()
		}
	}
	return 0
}

func iapMembers(s *Snapshot) []Member {
	var out []Member
	for _, srv := range s.IAP {
		out = append(out, Member{Component: ComponentIAP, Name: srv.Name, Site: srv.Site})
	}
	return out
}

func failIAP(s Snapshot, m Member) Snapshot {
	s.IAP = slices.Clone(s.IAP)
	for i := range s.IAP {
		if s.IAP[i].Name == m.Name {
			s.IAP[i].Up = false
		}
	}
	return s
}

func mongoMembers(s *Snapshot) []Member {
	var out []Member
	for _, rs := range s.MongoDB {
		for _, mm := range rs.Members {
			out = append(out, Member{Component: ComponentMongoDB, Group: rs.Name, Name: mm.Name, Site: mm.Site})
		}
	}
	return out
}

// failMongo marks the member down; a lost primary is followed by the
// election the set holds itself when it can (a majority of votes left and
// an electable member): the electable member of highest priority wins.
func failMongo(s Snapshot, m Member) Snapshot {
	s.MongoDB = slices.Clone(s.MongoDB)
	for i, rs := range s.MongoDB {
		if rs.Name != m.Group {
			continue
		}
		rs.Members = slices.Clone(rs.Members)
		wasPrimary := false
		for k := range rs.Members {
			if rs.Members[k].Name == m.Name {
				wasPrimary = rs.Members[k].State == MongoPrimary
				rs.Members[k].Healthy, rs.Members[k].State, rs.Members[k].StateStr = false, MongoDown, "(not reachable/healthy)"
			}
		}
		if wasPrimary && rs.Survives(loss{}).state == True {
			next := -1
			for k, mm := range rs.Members {
				if mm.Electable() && (next < 0 || mm.Priority > rs.Members[next].Priority) {
					next = k
				}
			}
			rs.Members[next].State, rs.Members[next].StateStr = MongoPrimary, "PRIMARY"
		}
		s.MongoDB[i] = rs
	}
	return s
}

func redisMembers(s *Snapshot) []Member {
	var out []Member
	for _, g := range s.Redis {
		for _, n := range g.Nodes {
			out = append(out, Member{Component: ComponentRedis, Group: g.Name, Name: n.Address, Site: n.Site})
		}
	}
	return out
}

// failRedis marks the node down; a lost master is followed by the failover
// the Sentinels make themselves when they can: the promotable replica of
// the lowest replica-priority (Sentinel prefers it) becomes master.
func failRedis(s Snapshot, m Member) Snapshot {
	s.Redis = slices.Clone(s.Redis)
	for i, g := range s.Redis {
		if g.Name != m.Group {
			continue
		}
		g.Nodes = slices.Clone(g.Nodes)
		wasMaster := false
		for k := range g.Nodes {
			if g.Nodes[k].Address == m.Name {
				wasMaster = g.Nodes[k].Role == RedisMaster
				g.Nodes[k].Up = false
			}
		}
		if wasMaster && g.Survives(loss{}).state == True && !g.HasMaster() {
			next := -1
			for k, n := range g.Nodes {
				if promotableReplica(n) && (next < 0 || n.ReplicaPriority < g.Nodes[next].ReplicaPriority) {
					next = k
				}
			}
			g.Nodes[next].Role, g.Nodes[next].MasterLinkUp = RedisMaster, false
		}
		s.Redis[i] = g
	}
	return s
}

func sentinelMembers(s *Snapshot) []Member {
	var out []Member
	for _, g := range s.Redis {
		for _, sv := range g.Sentinels {
			out = append(out, Member{Component: ComponentSentinel, Group: g.Name, Name: sv.Address, Site: sv.Site})
		}
	}
	return out
}

// failSentinel fails the Sentinel in every group it watches.
func failSentinel(s Snapshot, m Member) Snapshot {
	s.Redis = slices.Clone(s.Redis)
	for i, g := range s.Redis {
		g.Sentinels = slices.Clone(g.Sentinels)
		for k := range g.Sentinels {
			if g.Sentinels[k].Address == m.Name {
				g.Sentinels[k].Up = false
			}
		}
		s.Redis[i] = g
	}
	return s
}

func rabbitMembers(s *Snapshot) []Member {
	var out []Member
	for _, c := range s.RabbitMQ {
		for _, n := range c.Nodes {
			out = append(out, Member{Component: ComponentRabbitMQ, Group: c.Name, Name: n.Name, Site: n.Site})
		}
	}
	return out
}

func failRabbit(s Snapshot, m Member) Snapshot {
	s.RabbitMQ = slices.Clone(s.RabbitMQ)
	for i, c := range s.RabbitMQ {
		if c.Name != m.Group {
			continue
		}
		c.Nodes = slices.Clone(c.Nodes)
		for k := range c.Nodes {
			if c.Nodes[k].Name == m.Name {
				c.Nodes[k].Running = false
			}
		}
		s.RabbitMQ[i] = c
	}
	return s
}

func gatewayMembers(s *Snapshot) []Member {
	var out []Member
	for _, g := range s.Gateways {
		out = append(out, Member{Component: ComponentGateway, Name: g.Name, Site: g.Site})
	}
	return out
}

func failGateway(s Snapshot, m Member) Snapshot {
	s.Gateways = slices.Clone(s.Gateways)
	for i := range s.Gateways {
		if s.Gateways[i].Name == m.Name {
			s.Gateways[i].Up = false
		}
	}
	return s
}

func loadBalancerMembers(s *Snapshot) []Member {
	var out []Member
	for _, lb := range s.LoadBalancers {
		out = append(out, Member{Component: ComponentLoadBalancer, Name: lb.Name, Site: lb.Site})
	}
	return out
}

func failLoadBalancer(s Snapshot, m Member) Snapshot {
	s.LoadBalancers = slices.Clone(s.LoadBalancers)
	for i := range s.LoadBalancers {
		if s.LoadBalancers[i].Name == m.Name {
			s.LoadBalancers[i].Up = false
		}
	}
	return s
}

// SinglePoints are the members whose loss alone would stop the estate,
// sorted by component and name.
func (v *Verdict) SinglePoints() []MemberVerdict {
	var out []MemberVerdict
	for _, mv := range v.Members {
		if mv.Stops == True {
			out = append(out, mv)
		}
	}
	slices.SortFunc(out, func(a, b MemberVerdict) int {
		return cmp.Or(cmp.Compare(a.Component, b.Component), cmp.Compare(a.Name, b.Name))
	})
	return out
}
