package topology

import (
	"fmt"
	"strings"
)

// Electable reports whether the member could be elected primary now: healthy,
// PRIMARY or SECONDARY, priority > 0, neither an arbiter nor hidden
// (MongoDB: hidden and delayed members must have priority 0; a RECOVERING
// or STARTUP2 member votes but cannot stand).
func (m MongoMember) Electable() bool {
	return m.Healthy && (m.State == MongoPrimary || m.State == MongoSecondary) &&
		m.Priority > 0 && !m.ArbiterOnly && !m.Hidden
}

// votingMembers counts the members with a vote in the configuration.
func (rs ReplicaSet) votingMembers() int {
	n := 0
	for _, m := range rs.Members {
		if m.Voting() {
			n++
		}
	}
	return n
}

func (rs ReplicaSet) hasPrimary() bool {
	for _, m := range rs.Members {
		if m.State == MongoPrimary && m.Healthy {
			return true
		}
	}
	return false
}

// Tolerance is the largest k such that every set of k further member
// failures leaves a majority of the configured votes among healthy voters
// and at least one healthy electable member; 0 with no primary. The worst k
// failures take healthy voters for the first condition and electable
// members for the second, so k is the smaller of the two margins.
func (rs ReplicaSet) Tolerance() (int, string) {
	voting, healthy, electable := rs.votingMembers(), 0, 0
	for _, m := range rs.Members {
		if m.HealthyVoter() {
			healthy++
		}
		if m.Electable() {
			electable++
		}
	}
	need := majority(voting)
	if !rs.hasPrimary() {
		return 0, "no primary"
	}
	n := max(0, min(healthy-need, electable-1))
	return n, fmt.Sprintf("%d of %d voting members healthy, majority %d; %d electable", healthy, voting, need, electable)
}

// Split flags more than one primary across the members' views.
func (rs ReplicaSet) Split() SplitBrain {
	sb := SplitBrain{Component: ComponentMongoDB, Name: rs.Name, Active: rs.Primaries > 1}
	if sb.Active {
		sb.Reason = fmt.Sprintf("%d members claim to be primary", rs.Primaries)
	}
	return sb
}

// Unplaced names the members without a site: unknown to the site model.
func (rs ReplicaSet) Unplaced() []string {
	var out []string
	for _, m := range rs.Members {
		if m.Site == "" {
			out = append(out, m.Name)
		}
	}
	return out
}

// Survives says whether the set keeps an electable primary without what
// the loss takes: a majority of the configured votes among healthy voters
// left and an electable member left. An unplaced member may stand in a lost
// site: the answer is True only if the set survives without every unplaced
// member, False only if it fails even with them, and Unknown between.
func (rs ReplicaSet) Survives(l loss) judgement {
	if !rs.Up {
		return unknown("mongodb %s state unknown", rs.Name)
	}
	voting := rs.votingMembers()
	need := majority(voting)
	count := func(withUnplaced bool) (votes int, electable bool) {
		for _, m := range rs.Members {
			if l.takes(Member{ComponentMongoDB, rs.Name, m.Name, m.Site}) || (l.mayTake(m.Site) && !withUnplaced) {
				continue
			}
			if m.HealthyVoter() {
				votes++
			}
			electable = electable || m.Electable()
		}
		return votes, electable
	}
	votes, electable := count(false)
	if votes >= need && electable {
		return yes("")
	}
	votesAll, electableAll := count(true)
	switch {
	case votesAll < need && l.single():
		return no("%s casts a vote mongodb %s cannot do without: %d of %d votes would be left, a majority needs %d", l, rs.Name, votesAll, voting, need)
	case votesAll < need:
		return no("mongodb %s would keep %d of %d votes without %s (needs %d)", rs.Name, votesAll, voting, l, need)
	case !electableAll && l.single():
		return no("%s is the only electable member of mongodb %s (priority > 0, not hidden, PRIMARY or SECONDARY)", l, rs.Name)
	case !electableAll:
		return no("mongodb %s would have no electable member (priority > 0, not hidden, PRIMARY or SECONDARY) without %s", rs.Name, l)
	}
	return unknown("mongodb %s survives losing %s only if its unplaced members (%s) stand elsewhere", rs.Name, l, strings.Join(rs.Unplaced(), ", "))
}

// voterSites are the sites holding a voting member; unplaced members count
// for none.
func (rs ReplicaSet) voterSites() map[string]bool {
	sites := map[string]bool{}
	for _, m := range rs.Members {
		if m.Voting() && m.Site != "" {
			sites[m.Site] = true
		}
	}
	return sites
}

// redundant says whether the set is a cluster (HA-3): a primary, three
// healthy voters and a second electable member.
func (rs ReplicaSet) redundant() judgement {
	if !rs.Up {
		return unknown("mongodb %s state unknown", rs.Name)
	}
	healthy, electable := 0, 0
	for _, m := range rs.Members {
		if m.HealthyVoter() {
			healthy++
		}
		if m.Electable() {
			electable++
		}
	}
	switch {
	case !rs.hasPrimary():
		return no("mongodb %s has no primary", rs.Name)
	case healthy < 3:
		return no("mongodb %s has %d healthy voting members, a cluster needs 3", rs.Name, healthy)
	case electable < 2:
		return no("mongodb %s has %d electable members, a cluster needs 2", rs.Name, electable)
	}
	return yes("")
}
