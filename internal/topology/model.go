package topology

import (
	"fmt"
	"sort"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// Components of the HA model, as they appear in the component label.
const (
	ComponentIAP      = "iap"
	ComponentMongoDB  = "mongodb"
	ComponentRedis    = "redis"
	ComponentRabbitMQ = "rabbitmq"
	ComponentGateway  = "gateway"
	// ComponentLoadBalancer is a balancer in front of the IAP servers; it
	// names members (single points of failure), not a failures-tolerated
	// component.
	ComponentLoadBalancer = "loadbalancer"
	// ComponentSentinel is a Redis Sentinel as a member; its group is a
	// ComponentRedis instance.
	ComponentSentinel = "sentinel"
)

// IAPPool names the one IAP instance: every server of the estate together.
const IAPPool = "servers"

// ArchNone is the expected class when the configuration declares none.
const ArchNone = "none"

// ArchUnknown is the observed class when a fact the class table needs could
// not be read: no class is claimed.
const ArchUnknown = "unknown"

// Verdict is the HA model's judgement of one Snapshot. A judgement the model
// cannot make, because a fact it needs was not read, is left out and
// explained in Unknown: never guessed, neither as 0 nor as 1.
type Verdict struct {
	Components   []ComponentVerdict  `json:"components"`
	Sites        []SiteVerdict       `json:"sites"`
	Architecture ArchitectureVerdict `json:"architecture"`
	SplitBrain   []SplitBrain        `json:"split_brain"`
	Members      []MemberVerdict     `json:"members"`
	Balancers    []BalancerVerdict   `json:"balancers,omitempty"`
	Unknown      []string            `json:"unknown,omitempty"`
}

// ComponentVerdict says how many more failures one instance of a component survives.
type ComponentVerdict struct {
	Component         string `json:"component"`
	Name              string `json:"name"`
	FailuresTolerated int    `json:"failures_tolerated"`
	Reason            string `json:"reason"`
}

// SiteVerdict says whether losing a whole site leaves the estate working.
// Only sites whose answer is known have one.
type SiteVerdict struct {
	Site       string `json:"site"`
	Survivable bool   `json:"survivable"`
	Reason     string `json:"reason"`
	// DevicesWithoutGateway counts the devices whose Automation Gateway
	// stands in the site: they lose their gateway with it.
	DevicesWithoutGateway int `json:"devices_without_gateway"`
}

// ArchitectureVerdict compares the observed architecture class with the declared one.
type ArchitectureVerdict struct {
	// Observed is HA-0, HA-3, HA-6, or ArchUnknown.
	Observed string `json:"observed"`
	Expected string `json:"expected"`
	// Reason says what keeps the estate from the next class up, or what
	// could not be read.
	Reason string `json:"reason,omitempty"`
}

// Known reports whether a class was observed.
func (a ArchitectureVerdict) Known() bool { return a.Observed != ArchUnknown }

// Degraded reports whether the observed class is known and below the declared one.
func (a ArchitectureVerdict) Degraded() bool {
	rank := map[string]int{config.ArchHA0: 0, config.ArchHA3: 3, config.ArchHA6: 6}
	expected, ok := rank[a.Expected]
	observed, known := rank[a.Observed]
	return ok && known && observed < expected
}

// SplitBrain says whether one instance of a component has two heads.
type SplitBrain struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	Reason    string `json:"reason,omitempty"`
}

// judgement is a three-valued answer with its reason.
type judgement struct {
	state  Tristate
	reason string
}

func yes(format string, args ...any) judgement {
	return judgement{True, fmt.Sprintf(format, args...)}
}

func no(format string, args ...any) judgement { return judgement{False, fmt.Sprintf(format, args...)} }

func unknown(format string, args ...any) judgement {
	return judgement{Unknown, fmt.Sprintf(format, args...)}
}

// Evaluate runs the HA model over one Snapshot. It is a pure function: each
// component judges itself (mongodb.go, redis.go, rabbitmq.go, iap.go), the
// site losses and the class table (sites.go, architecture.go) compose them.
func Evaluate(cfg *config.Config, s *Snapshot) *Verdict {
	v := &Verdict{}
	for _, rs := range s.MongoDB {
		v.judge(ComponentMongoDB, rs.Name, rs, unreadIf(!rs.Up, "status could not be read"))
	}
	for _, g := range s.Redis {
		v.judge(ComponentRedis, g.Name, g, unreadIf(!g.Known(), "no Sentinel answered"))
	}
	for _, c := range s.RabbitMQ {
		v.judge(ComponentRabbitMQ, c.Name, c, unreadIf(!c.Up, "no management API answered"))
	}
	if s.IAP != nil {
		servers := IAPServers(s.IAP)
		if n, j := servers.tolerance(); j.state == Unknown {
			v.Unknown = append(v.Unknown, "iap servers: "+j.reason)
		} else {
			v.Components = append(v.Components, ComponentVerdict{ComponentIAP, IAPPool, n, j.reason})
		}
		v.SplitBrain = append(v.SplitBrain, servers.Split())
	}
	for _, g := range s.Gateways {
		v.Components = append(v.Components, ComponentVerdict{ComponentGateway, g.Name, 0,
			"a gateway does not cluster: its devices have no other gateway"})
	}
	e := estate{cfg: cfg, s: s}
	for _, site := range cfg.Sites {
		j := e.without(lossOfSite(site.Name))
		if j.state == Unknown {
			v.Unknown = append(v.Unknown, fmt.Sprintf("site loss %s: %s", site.Name, j.reason))
			continue
		}
		sv := SiteVerdict{Site: site.Name, Survivable: j.state == True, Reason: j.reason}
		for _, g := range s.Gateways {
			if g.Site == site.Name {
				sv.DevicesWithoutGateway += g.TotalDevices()
			}
		}
		v.Sites = append(v.Sites, sv)
	}
	v.Balancers = Balancers(s)
	v.Architecture = e.architecture()
	if !v.Architecture.Known() {
		v.Unknown = append(v.Unknown, "architecture: "+v.Architecture.Reason)
	}
	v.Members, v.Unknown = e.singlePoints(v.Architecture, v.Unknown)
	return v
}

// clustered is what a MongoDB replica set, a Sentinel group and a RabbitMQ
// cluster each answer of themselves.
type clustered interface {
	Tolerance() (int, string)
	Split() SplitBrain
}

// judge adds the verdict of one clustered instance, or, where its state
// could not be read (unread is why), says so and judges nothing.
func (v *Verdict) judge(component, name string, c clustered, unread string) {
	if unread != "" {
		v.Unknown = append(v.Unknown, fmt.Sprintf("%s %s: %s", component, name, unread))
		return
	}
	n, why := c.Tolerance()
	v.Components = append(v.Components, ComponentVerdict{component, name, n, why})
	v.SplitBrain = append(v.SplitBrain, c.Split())
}

func unreadIf(unread bool, why string) string {
	if unread {
		return why
	}
	return ""
}

// majority of n voters.
func majority(n int) int { return n/2 + 1 }

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
