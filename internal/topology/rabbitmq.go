package topology

import (
	"fmt"
	"strings"
)

// RabbitMQ cluster_partition_handling modes.
const (
	PartitionIgnore         = "ignore"
	PartitionPauseMinority  = "pause_minority"
	PartitionAutoheal       = "autoheal"
	PartitionPauseIfAllDown = "pause_if_all_down"
)

func (c RabbitCluster) running() int {
	n := 0
	for _, node := range c.Nodes {
		if node.Running {
			n++
		}
	}
	return n
}

// partitionHandling is the mode the cluster runs with: ignore unless told.
func (c RabbitCluster) partitionHandling() string {
	if c.PartitionHandling == "" {
		return PartitionIgnore
	}
	return c.PartitionHandling
}

// nodesNeeded is how many running nodes keep the cluster serving. Under
// pause_minority a node that sees no majority of the cluster pauses itself;
// under ignore, autoheal and pause_if_all_down a single node keeps serving
// (the last mode pauses only when every listed node is gone).
func (c RabbitCluster) nodesNeeded() int {
	if c.partitionHandling() == PartitionPauseMinority {
		return majority(len(c.Nodes))
	}
	return 1
}

// Tolerance is running nodes − nodes needed (by the partition handling),
// capped by the quorum queues (the fewest online members beyond any queue's
// majority) and 0 while mirrored queues lack synchronised mirrors: the next
// node lost may take the only copy of their messages.
func (c RabbitCluster) Tolerance() (int, string) {
	running, need := c.running(), c.nodesNeeded()
	n := max(0, running-need)
	why := fmt.Sprintf("%d of %d nodes running, %d needed under %s", running, len(c.Nodes), need, c.partitionHandling())
	withoutQuorum, unsynced, quorumQueues, spare := 0, 0, 0, -1
	for _, q := range c.Queues {
		withoutQuorum += q.WithoutQuorum
		unsynced += q.Unsynchronised
		if q.Type == "quorum" && q.Count > q.WithoutQuorum {
			quorumQueues += q.Count - q.WithoutQuorum
			if spare < 0 || q.QuorumSpare < spare {
				spare = q.QuorumSpare
			}
		}
	}
	switch {
	case withoutQuorum > 0:
		return 0, fmt.Sprintf("%s; %d quorum queues without quorum", why, withoutQuorum)
	case c.MirroringSupported && unsynced > 0:
		return 0, fmt.Sprintf("%s; %d mirrored queues short of synchronised mirrors", why, unsynced)
	case spare >= 0 && spare < n:
		return spare, fmt.Sprintf("%s; a quorum queue has %d online members beyond its majority", why, spare)
	}
	return n, why
}

// Split flags a network partition any node reports.
func (c RabbitCluster) Split() SplitBrain {
	var parted []string
	for _, n := range c.Nodes {
		if len(n.Partitions) > 0 {
			parted = append(parted, n.Name)
		}
	}
	sb := SplitBrain{Component: ComponentRabbitMQ, Name: c.Name, Active: len(parted) > 0}
	if sb.Active {
		sb.Reason = "network partition seen by " + strings.Join(parted, ", ")
	}
	return sb
}

// Survives says whether the cluster keeps enough running nodes without what
// the loss takes.
func (c RabbitCluster) Survives(l loss) judgement {
	if !c.Up {
		return unknown("rabbitmq %s state unknown", c.Name)
	}
	left := 0
	for _, n := range c.Nodes {
		if n.Running && !l.takes(Member{ComponentRabbitMQ, c.Name, n.Name, n.Site}) {
			left++
		}
	}
	need := c.nodesNeeded()
	switch {
	case left >= need:
		return yes("")
	case l.single() && need == 1:
		return no("%s is the last running node of rabbitmq %s", l, c.Name)
	case l.single():
		return no("%s is one of the %d running nodes rabbitmq %s needs under %s: %d of %d would be left", l, need, c.Name, c.partitionHandling(), left, len(c.Nodes))
	}
	return no("rabbitmq %s would keep %d of %d nodes without %s (needs %d under %s)", c.Name, left, len(c.Nodes), l, need, c.partitionHandling())
}

// redundant says whether the cluster is a cluster (HA-3): three running nodes.
func (c RabbitCluster) redundant() judgement {
	if !c.Up {
		return unknown("rabbitmq %s state unknown", c.Name)
	}
	if r := c.running(); r < 3 {
		return no("rabbitmq %s has %d running nodes, a cluster needs 3", c.Name, r)
	}
	return yes("")
}
