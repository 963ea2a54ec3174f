package rabbitmq

import (
	"slices"
	"strings"

	rabbithole "github.com/michaelklishin/rabbit-hole/v3"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// queueCounter judges every queue of one listing as it streams past and keeps
// only the counts per vhost and type (and, when asked, one row per queue).
type queueCounter struct {
	mirroring bool
	// wanted maps vhost and policy name to the synchronised mirrors the
	// policy asks for: of the running nodes (required), and of the whole
	// cluster (design); policies without ha-mode are left out.
	wanted   map[policyKey]mirrorsWanted
	counts   map[groupKey]*topology.QueueGroup
	spareSet map[groupKey]bool
	perQueue []topology.QueueState
	keepEach bool
}

type mirrorsWanted struct{ required, design int }

type policyKey struct{ vhost, name string }

type groupKey struct{ vhost, typ string }

// newQueueCounter judges queues against the cluster's nodes (name → running).
func newQueueCounter(nodes map[string]bool, mirroring bool, policies []rabbithole.Policy, perQueue bool) *queueCounter {
	c := &queueCounter{
		mirroring: mirroring,
		wanted:    map[policyKey]mirrorsWanted{},
		counts:    map[groupKey]*topology.QueueGroup{},
		spareSet:  map[groupKey]bool{},
		keepEach:  perQueue,
	}
	all := map[string]bool{}
	for n := range nodes {
		all[n] = true
	}
	for _, p := range policies {
		w := mirrorsWanted{required: wantedMirrors(p.Definition, nodes), design: wantedMirrors(p.Definition, all)}
		if w.design > 0 {
			c.wanted[policyKey{p.Vhost, p.Name}] = w
		}
	}
	return c
}

// wantedMirrors is how many mirrors besides the leader a policy asks for
// among the nodes that are up (name → running): RabbitMQ places mirrors only
// on running nodes, so ha-mode all wants one on each running node, exactly
// min(ha-params, running) copies with the leader, and nodes the listed nodes
// that run.
func wantedMirrors(def rabbithole.PolicyDefinition, nodes map[string]bool) int {
	running := 0
	for _, up := range nodes {
		if up {
			running++
		}
	}
	var copies int
	switch def["ha-mode"] {
	case "all":
		copies = running
	case "exactly":
		count, _ := def["ha-params"].(float64)
		copies = min(int(count), running)
	case "nodes":
		listed, _ := def["ha-params"].([]any)
		for _, n := range listed {
			if name, ok := n.(string); ok && nodes[name] {
				copies++
			}
		}
	}
	return max(copies-1, 0)
}

func (c *queueCounter) add(q *queue) {
	typ := q.Type
	if typ == "" {
		typ = "classic" // before 3.8 every queue was classic and had no type
	}
	g := c.counts[groupKey{q.VHost, typ}]
	if g == nil {
		g = &topology.QueueGroup{VHost: q.VHost, Type: typ}
		c.counts[groupKey{q.VHost, typ}] = g
	}
	g.Count++

	state := topology.QueueState{VHost: q.VHost, Name: q.Name, Type: typ, Node: q.Node}
	switch typ {
	case "quorum":
		majority := len(q.Members)/2 + 1
		online := len(q.Online)
		switch {
		case q.Leader == "" || online < majority:
			g.WithoutQuorum++
		default:
			if online == majority {
				g.QuorumCritical++
			}
			key := groupKey{q.VHost, typ}
			if spare := online - majority; !c.spareSet[key] || spare < g.QuorumSpare {
				g.QuorumSpare, c.spareSet[key] = spare, true
			}
		}
		state.Node, state.Leader = q.Leader, q.Leader
		state.Members, state.OnlineMembers = len(q.Members), online
	case "classic":
		wanted, ok := c.wanted[policyKey{q.VHost, q.Policy}]
		if !c.mirroring || !ok {
			break
		}
		synced := len(q.SyncedMirrors)
		if synced < wanted.required {
			g.Unsynchronised++
		}
		if synced == 0 {
			g.MirrorSyncCritical++ // the policy wants copies and only the leader has the messages
		}
		state.Mirrors, state.SyncedMirrors = len(q.Mirrors), synced
	}
	if c.keepEach {
		c.perQueue = append(c.perQueue, state)
	}
}

// groups returns the counts sorted by vhost and type.
func (c *queueCounter) groups() []topology.QueueGroup {
	out := make([]topology.QueueGroup, 0, len(c.counts))
	for _, g := range c.counts {
		out = append(out, *g)
	}
	slices.SortFunc(out, func(a, b topology.QueueGroup) int {
		return strings.Compare(a.VHost+"\x00"+a.Type, b.VHost+"\x00"+b.Type)
	})
	return out
}
