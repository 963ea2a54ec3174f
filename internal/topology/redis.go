package topology

import (
	"fmt"
	"strings"
)

// Redis roles as RedisNode.Role holds them.
const (
	RedisMaster  = "master"
	RedisReplica = "replica"
)

// Known reports whether any Sentinel of the group answered.
func (g SentinelGroup) Known() bool { return g.reachableSentinels() > 0 }

func (g SentinelGroup) reachableSentinels() int {
	n := 0
	for _, s := range g.Sentinels {
		if s.Up {
			n++
		}
	}
	return n
}

// sentinelCount is how many Sentinels the group has: those configured, or
// more if a Sentinel knows of more.
func (g SentinelGroup) sentinelCount() int {
	n := len(g.Sentinels)
	for _, s := range g.Sentinels {
		if s.Up {
			n = max(n, s.KnownSentinels)
		}
	}
	return n
}

// SentinelsNeeded is how many Sentinels must be reachable for a failover:
// the quorum to agree the master is down, and a majority of all Sentinels
// to authorise it.
func (g SentinelGroup) SentinelsNeeded() int {
	return max(g.Quorum, majority(g.sentinelCount()))
}

// promotableReplica reports whether a replica could become master: Sentinel
// never promotes a replica with replica-priority 0 or without a link.
func promotableReplica(n RedisNode) bool {
	return n.Up && n.Role != RedisMaster && n.MasterLinkUp && n.ReplicaPriority > 0
}

func (g SentinelGroup) promotableReplicas() int {
	n := 0
	for _, node := range g.Nodes {
		if promotableReplica(node) {
			n++
		}
	}
	return n
}

// HasMaster reports whether a data node answers as master.
func (g SentinelGroup) HasMaster() bool {
	for _, n := range g.Nodes {
		if n.Up && n.Role == RedisMaster {
			return true
		}
	}
	return false
}

// QuorumOK reports whether the Sentinels could authorise a failover now:
// enough of them reachable, none in TILT (a Sentinel in TILT does not act)
// and none answering CKQUORUM with NOQUORUM (it cannot reach enough others).
func (g SentinelGroup) QuorumOK() bool { return g.quorumProblem() == "" }

func (g SentinelGroup) quorumProblem() string {
	var tilt, noquorum []string
	for _, s := range g.Sentinels {
		if !s.Up {
			continue
		}
		if s.TILT {
			tilt = append(tilt, s.Address)
		}
		if !s.CKQuorumOK {
			noquorum = append(noquorum, s.Address)
		}
	}
	var why []string
	if reach, need := g.reachableSentinels(), g.SentinelsNeeded(); reach < need {
		why = append(why, fmt.Sprintf("%d of %d Sentinels reachable, %d needed", reach, g.sentinelCount(), need))
	}
	if len(tilt) > 0 {
		why = append(why, "in TILT: "+strings.Join(tilt, ", "))
	}
	if len(noquorum) > 0 {
		why = append(why, "CKQUORUM says NOQUORUM: "+strings.Join(noquorum, ", "))
	}
	return strings.Join(why, "; ")
}

// Tolerance is the smaller of (reachable Sentinels − Sentinels needed) and
// the promotable replicas — a failover needs both — and 0 while the
// Sentinels say they cannot authorise one.
func (g SentinelGroup) Tolerance() (int, string) {
	if !g.HasMaster() {
		return 0, "no master answers"
	}
	if why := g.quorumProblem(); why != "" {
		return 0, "the Sentinels cannot authorise a failover: " + why
	}
	reach, need, replicas := g.reachableSentinels(), g.SentinelsNeeded(), g.promotableReplicas()
	n := max(0, min(reach-need, replicas))
	return n, fmt.Sprintf("%d of %d Sentinels reachable, %d needed for a failover; %d promotable replicas",
		reach, g.sentinelCount(), need, replicas)
}

// Split flags Sentinels disagreeing on the master's address, and two data
// nodes that each answer role:master (an isolated old master beside the new).
func (g SentinelGroup) Split() SplitBrain {
	masters := map[string]bool{}
	for _, s := range g.Sentinels {
		if s.Up && s.MasterAddress != "" {
			masters[s.MasterAddress] = true
		}
	}
	claiming := map[string]bool{}
	for _, n := range g.Nodes {
		if n.Up && n.Role == RedisMaster {
			claiming[n.Address] = true
		}
	}
	sb := SplitBrain{Component: ComponentRedis, Name: g.Name}
	var why []string
	if len(masters) > 1 {
		why = append(why, "Sentinels disagree on the master: "+strings.Join(sortedKeys(masters), ", "))
	}
	if len(claiming) > 1 {
		why = append(why, "data nodes answering role:master: "+strings.Join(sortedKeys(claiming), ", "))
	}
	sb.Active, sb.Reason = len(why) > 0, strings.Join(why, "; ")
	return sb
}

// Survives says whether the group keeps a Sentinel majority and a master
// without what the loss takes: its master left, or a replica left that the
// Sentinels left could promote.
func (g SentinelGroup) Survives(l loss) judgement {
	if !g.Known() {
		return unknown("redis %s state unknown", g.Name)
	}
	left := 0
	for _, s := range g.Sentinels {
		if s.Up && !l.takes(Member{ComponentSentinel, g.Name, s.Address, s.Site}) {
			left++
		}
	}
	if need := g.SentinelsNeeded(); left < need {
		if l.single() {
			return no("%s is the last Sentinel that makes a majority of redis %s: %d would be left, a failover needs %d", l, g.Name, left, need)
		}
		return no("redis %s would keep %d Sentinels without %s (needs %d)", g.Name, left, l, need)
	}
	promotable := false
	for _, n := range g.Nodes {
		if l.takes(Member{ComponentRedis, g.Name, n.Address, n.Site}) {
			continue
		}
		if n.Up && n.Role == RedisMaster {
			return yes("")
		}
		promotable = promotable || promotableReplica(n)
	}
	switch {
	case !promotable && l.single():
		return no("%s is the master of redis %s and no replica is left that Sentinel would promote", l, g.Name)
	case !promotable:
		return no("redis %s would have no master or promotable replica without %s", g.Name, l)
	case !g.QuorumOK() && l.single():
		return no("%s is the master of redis %s, and its Sentinels cannot authorise a failover: %s", l, g.Name, g.quorumProblem())
	case !g.QuorumOK():
		return no("redis %s would need a failover without %s, and its Sentinels cannot authorise one: %s", g.Name, l, g.quorumProblem())
	}
	return yes("")
}

// redundant says whether the group is a cluster (HA-3): a master, three
// reachable Sentinels able to authorise a failover, a promotable replica.
func (g SentinelGroup) redundant() judgement {
	switch {
	case !g.Known():
		return unknown("redis %s state unknown", g.Name)
	case !g.HasMaster():
		return no("redis %s has no master", g.Name)
	case g.reachableSentinels() < 3:
		return no("redis %s has %d reachable Sentinels, a cluster needs 3", g.Name, g.reachableSentinels())
	case !g.QuorumOK():
		return no("redis %s: the Sentinels cannot authorise a failover: %s", g.Name, g.quorumProblem())
	case g.promotableReplicas() == 0:
		return no("redis %s has no promotable replica", g.Name)
	}
	return yes("")
}
