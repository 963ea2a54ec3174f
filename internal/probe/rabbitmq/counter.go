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
	clusterSize int
	mirroring   bool
	// wanted maps vhost and policy name to the synchronised mirrors the
	// policy asks for; policies without ha-mode are left out.
	wanted   map[policyKey]int
	counts   map[groupKey]*topology.QueueGroup
	perQueue []topology.QueueState
	keepEach bool
}

type policyKey struct{ vhost, name string }

type groupKey struct{ vhost, typ string }

func newQueueCounter(clusterSize int, mirroring bool, policies []rabbithole.Policy, perQueue bool) *queueCounter {
	c := &queueCounter{
		clusterSize: clusterSize,
		mirroring:   mirroring,
		wanted:      map[policyKey]int{},
		counts:      map[groupKey]*topology.QueueGroup{},
		keepEach:    perQueue,
	}
	for _, p := range policies {
		if n := wantedMirrors(p.Definition, clusterSize); n > 0 {
			c.wanted[policyKey{p.Vhost, p.Name}] = n
		}
	}
	return c
}

// wantedMirrors is how many mirrors besides the leader a policy asks for in
// a cluster of n nodes: ha-mode all, exactly (ha-params counts the leader)
// or nodes (ha-params lists them).
func wantedMirrors(def rabbithole.PolicyDefinition, n int) int {
	var copies int
	switch def["ha-mode"] {
	case "all":
		copies = n
	case "exactly":
		count, _ := def["ha-params"].(float64)
		copies = int(count)
	case "nodes":
		nodes, _ := def["ha-params"].([]any)
		copies = len(nodes)
	}
	return max(min(copies, n)-1, 0)
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
		case online == majority:
			g.QuorumCritical++
		}
		state.Node, state.Leader = q.Leader, q.Leader
		state.Members, state.OnlineMembers = len(q.Members), online
	case "classic":
		wanted := c.wanted[policyKey{q.VHost, q.Policy}]
		if !c.mirroring || wanted == 0 {
			break
		}
		synced := len(q.SyncedMirrors)
		if synced < wanted {
			g.Unsynchronised++
		}
		if synced == 0 {
			g.MirrorSyncCritical++
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
