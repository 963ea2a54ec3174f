package topology

import (
	"fmt"
	"sort"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// Components of the HA model, as they appear in the component label.
const (
	ComponentIAP      = "iap"
	ComponentMongoDB  = "mongodb"
	ComponentRedis    = "redis"
	ComponentRabbitMQ = "rabbitmq"
	ComponentGateway  = "gateway"
)

// IAPPool names the one IAP instance: every server of the estate together.
const IAPPool = "servers"

// ArchNone is the expected class when the configuration declares none.
const ArchNone = "none"

// Verdict is the HA model's judgement of one Snapshot. A judgement the model
// cannot make, because a probe it needs did not report, is left out and
// explained in Unknown: never guessed.
type Verdict struct {
	Components   []ComponentVerdict  `json:"components"`
	Sites        []SiteVerdict       `json:"sites"`
	Architecture ArchitectureVerdict `json:"architecture"`
	SplitBrain   []SplitBrain        `json:"split_brain"`
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
	Observed string `json:"observed"`
	Expected string `json:"expected"`
	// Reason says what keeps the estate from the next class up.
	Reason string `json:"reason,omitempty"`
}

// Degraded reports whether the observed class is below the declared one.
func (a ArchitectureVerdict) Degraded() bool {
	rank := map[string]int{config.ArchHA0: 0, config.ArchHA3: 3, config.ArchHA6: 6}
	expected, ok := rank[a.Expected]
	return ok && rank[a.Observed] < expected
}

// SplitBrain says whether one instance of a component has two heads.
type SplitBrain struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	Reason    string `json:"reason,omitempty"`
}

// Evaluate runs the HA model over one Snapshot. It is a pure function.
func Evaluate(cfg *config.Config, s *Snapshot) *Verdict {
	v := &Verdict{}
	for _, rs := range s.MongoDB {
		if !rs.Up {
			v.Unknown = append(v.Unknown, fmt.Sprintf("mongodb %s: status could not be read", rs.Name))
			continue
		}
		n, why := mongoTolerance(rs)
		v.Components = append(v.Components, ComponentVerdict{ComponentMongoDB, rs.Name, n, why})
		v.SplitBrain = append(v.SplitBrain, mongoSplit(rs))
	}
	for _, g := range s.Redis {
		if reachableSentinels(g) == 0 {
			v.Unknown = append(v.Unknown, fmt.Sprintf("redis %s: no Sentinel answered", g.Name))
			continue
		}
		n, why := redisTolerance(g)
		v.Components = append(v.Components, ComponentVerdict{ComponentRedis, g.Name, n, why})
		v.SplitBrain = append(v.SplitBrain, redisSplit(g))
	}
	for _, c := range s.RabbitMQ {
		if !c.Up {
			v.Unknown = append(v.Unknown, fmt.Sprintf("rabbitmq %s: no management API answered", c.Name))
			continue
		}
		n, why := rabbitTolerance(c)
		v.Components = append(v.Components, ComponentVerdict{ComponentRabbitMQ, c.Name, n, why})
		v.SplitBrain = append(v.SplitBrain, rabbitSplit(c))
	}
	if s.IAP != nil {
		n, why := iapTolerance(s.IAP)
		v.Components = append(v.Components, ComponentVerdict{ComponentIAP, IAPPool, n, why})
		v.SplitBrain = append(v.SplitBrain, iapSplit(s.IAP))
	}
	for _, g := range s.Gateways {
		v.Components = append(v.Components, ComponentVerdict{ComponentGateway, g.Name, 0,
			"a gateway does not cluster: its devices have no other gateway"})
	}
	switch {
	case s.IAP == nil:
		v.Unknown = append(v.Unknown, "site loss: the IAP servers were not probed")
	case len(cfg.MongoDB) > 0 && s.MongoDB == nil:
		v.Unknown = append(v.Unknown, "site loss: the MongoDB replica sets were not probed")
	default:
		for _, site := range cfg.Sites {
			v.Sites = append(v.Sites, siteLoss(s, site.Name))
		}
	}
	v.Architecture = architecture(cfg, s, v)
	return v
}

// majority of n voters.
func majority(n int) int { return n/2 + 1 }

func mongoTolerance(rs ReplicaSet) (int, string) {
	voting, healthy := 0, 0
	primary := false
	for _, m := range rs.Members {
		if m.Voting() {
			voting++
		}
		if m.HealthyVoter() {
			healthy++
		}
		primary = primary || m.State == MongoPrimary
	}
	need := majority(voting)
	if !primary {
		return 0, "no primary"
	}
	n := max(0, healthy-need)
	return n, fmt.Sprintf("%d of %d voting members healthy, majority %d", healthy, voting, need)
}

func mongoSplit(rs ReplicaSet) SplitBrain {
	sb := SplitBrain{Component: ComponentMongoDB, Name: rs.Name, Active: rs.Primaries > 1}
	if sb.Active {
		sb.Reason = fmt.Sprintf("%d members claim to be primary", rs.Primaries)
	}
	return sb
}

func reachableSentinels(g SentinelGroup) int {
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
func sentinelCount(g SentinelGroup) int {
	n := len(g.Sentinels)
	for _, s := range g.Sentinels {
		if s.Up {
			n = max(n, s.KnownSentinels)
		}
	}
	return n
}

// sentinelsNeeded is how many Sentinels must be reachable for a failover:
// the quorum to agree the master is down, and a majority to authorise it.
func sentinelsNeeded(g SentinelGroup) int {
	return max(g.Quorum, majority(sentinelCount(g)))
}

// promotableReplica reports whether a replica could become master.
func promotableReplica(n RedisNode) bool {
	return n.Up && n.Role != "master" && n.MasterLinkUp && n.ReplicaPriority > 0
}

func hasMaster(g SentinelGroup) bool {
	for _, n := range g.Nodes {
		if n.Up && n.Role == "master" {
			return true
		}
	}
	return false
}

func redisTolerance(g SentinelGroup) (int, string) {
	reach, need := reachableSentinels(g), sentinelsNeeded(g)
	replicas := 0
	for _, n := range g.Nodes {
		if promotableReplica(n) {
			replicas++
		}
	}
	if !hasMaster(g) {
		return 0, "no master answers"
	}
	n := max(0, min(reach-need, replicas))
	return n, fmt.Sprintf("%d of %d Sentinels reachable, %d needed for a failover; %d promotable replicas",
		reach, sentinelCount(g), need, replicas)
}

func redisSplit(g SentinelGroup) SplitBrain {
	masters := map[string]bool{}
	for _, s := range g.Sentinels {
		if s.Up && s.MasterAddress != "" {
			masters[s.MasterAddress] = true
		}
	}
	sb := SplitBrain{Component: ComponentRedis, Name: g.Name, Active: len(masters) > 1}
	if sb.Active {
		sb.Reason = "Sentinels disagree on the master: " + strings.Join(sortedKeys(masters), ", ")
	}
	return sb
}

func rabbitTolerance(c RabbitCluster) (int, string) {
	running := 0
	for _, n := range c.Nodes {
		if n.Running {
			running++
		}
	}
	need := majority(len(c.Nodes))
	n := max(0, running-need)
	why := fmt.Sprintf("%d of %d nodes running, majority %d", running, len(c.Nodes), need)
	withoutQuorum, unsynced := 0, 0
	for _, q := range c.Queues {
		withoutQuorum += q.WithoutQuorum
		unsynced += q.Unsynchronised
	}
	switch {
	case withoutQuorum > 0:
		return 0, fmt.Sprintf("%s; %d quorum queues without quorum", why, withoutQuorum)
	case c.MirroringSupported && unsynced > 0:
		// The next node lost may take the only copy of their messages.
		return 0, fmt.Sprintf("%s; %d mirrored queues short of synchronised mirrors", why, unsynced)
	}
	return n, why
}

func rabbitSplit(c RabbitCluster) SplitBrain {
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

// canWork reports whether a server works tasks now or could after a promotion.
func canWork(s IAPServer) bool {
	return s.ObservedState() == StateActive || (s.ObservedState() == StateStandby && s.Promotable())
}

func iapTolerance(servers []IAPServer) (int, string) {
	active, standby := 0, 0
	for _, s := range servers {
		switch {
		case !canWork(s):
		case s.ObservedState() == StateActive:
			active++
		default:
			standby++
		}
	}
	if active+standby == 0 {
		return 0, "no IAP server can work tasks"
	}
	return active + standby - 1, fmt.Sprintf("%d active and %d promotable standby servers", active, standby)
}

// iapSplit flags a declared standby working tasks beside the actives: more
// servers work than the design declares active. A standby that works in
// place of a failed active (after a promotion) is a takeover, not two heads.
func iapSplit(servers []IAPServer) SplitBrain {
	var working, rogueStandby []string
	declaredActive := 0
	for _, s := range servers {
		if s.DeclaredRole != config.RoleStandby {
			declaredActive++
		}
		if s.ObservedState() != StateActive {
			continue
		}
		working = append(working, s.Name)
		if s.DeclaredRole == config.RoleStandby {
			rogueStandby = append(rogueStandby, s.Name)
		}
	}
	sb := SplitBrain{Component: ComponentIAP, Name: IAPPool, Active: len(rogueStandby) > 0 && len(working) > declaredActive}
	if sb.Active {
		sb.Reason = fmt.Sprintf("standby %s works tasks: %d servers work (%s) where %d are declared active",
			strings.Join(rogueStandby, ", "), len(working), strings.Join(working, ", "), declaredActive)
	}
	return sb
}

// siteLoss removes every member located in site and asks whether some IAP
// server left can still work tasks with everything it depends on.
func siteLoss(s *Snapshot, site string) SiteVerdict {
	sv := SiteVerdict{Site: site}
	for _, g := range s.Gateways {
		if g.Site == site {
			sv.DevicesWithoutGateway += g.TotalDevices()
		}
	}
	var reasons []string
	for _, srv := range s.IAP {
		if srv.Site == site || !canWork(srv) {
			continue
		}
		why := dependenciesSurvive(s, srv, site)
		if why == "" {
			sv.Survivable = true
			sv.Reason = fmt.Sprintf("%s can work tasks without %s", srv.Name, site)
			return sv
		}
		reasons = append(reasons, srv.Name+": "+why)
	}
	if len(reasons) == 0 {
		sv.Reason = "no IAP server outside " + site + " can work tasks"
	} else {
		sv.Reason = strings.Join(reasons, "; ")
	}
	return sv
}

// dependenciesSurvive says why srv's dependencies would not survive the loss
// of site, or "" if they would.
func dependenciesSurvive(s *Snapshot, srv IAPServer, site string) string {
	for _, rs := range s.MongoDB {
		if why := mongoSurvives(rs, site); why != "" {
			return why
		}
	}
	if srv.Redis != "" {
		g, ok := findRedis(s, srv.Redis)
		if !ok {
			return "redis " + srv.Redis + " state unknown"
		}
		if why := redisSurvives(g, site); why != "" {
			return why
		}
	}
	if srv.RabbitMQ != "" {
		c, ok := findRabbit(s, srv.RabbitMQ)
		if !ok {
			return "rabbitmq " + srv.RabbitMQ + " state unknown"
		}
		if why := rabbitSurvives(c, site); why != "" {
			return why
		}
	}
	return ""
}

func mongoSurvives(rs ReplicaSet, site string) string {
	if !rs.Up {
		return "mongodb " + rs.Name + " state unknown"
	}
	voting, left := 0, 0
	electable := false
	for _, m := range rs.Members {
		if m.Voting() {
			voting++
		}
		if m.Site == site || !m.HealthyVoter() {
			continue
		}
		left++
		electable = electable || (m.Priority > 0 && !m.ArbiterOnly)
	}
	need := majority(voting)
	switch {
	case left < need:
		return fmt.Sprintf("mongodb %s would keep %d of %d votes without %s (needs %d)", rs.Name, left, voting, site, need)
	case !electable:
		return fmt.Sprintf("mongodb %s would have no electable member (priority > 0) without %s", rs.Name, site)
	}
	return ""
}

func redisSurvives(g SentinelGroup, site string) string {
	left := 0
	for _, s := range g.Sentinels {
		if s.Up && s.Site != site {
			left++
		}
	}
	if need := sentinelsNeeded(g); left < need {
		return fmt.Sprintf("redis %s would keep %d Sentinels without %s (needs %d)", g.Name, left, site, need)
	}
	for _, n := range g.Nodes {
		if n.Site == site {
			continue
		}
		if (n.Up && n.Role == "master") || promotableReplica(n) {
			return ""
		}
	}
	return fmt.Sprintf("redis %s would have no master or promotable replica without %s", g.Name, site)
}

func rabbitSurvives(c RabbitCluster, site string) string {
	if !c.Up {
		return "rabbitmq " + c.Name + " state unknown"
	}
	left := 0
	for _, n := range c.Nodes {
		if n.Running && n.Site != site {
			left++
		}
	}
	if need := majority(len(c.Nodes)); left < need {
		return fmt.Sprintf("rabbitmq %s would keep %d of %d nodes without %s (needs %d)", c.Name, left, len(c.Nodes), site, need)
	}
	return ""
}

func findRedis(s *Snapshot, name string) (SentinelGroup, bool) {
	for _, g := range s.Redis {
		if g.Name == name && reachableSentinels(g) > 0 {
			return g, true
		}
	}
	return SentinelGroup{}, false
}

func findRabbit(s *Snapshot, name string) (RabbitCluster, bool) {
	for _, c := range s.RabbitMQ {
		if c.Name == name {
			return c, true
		}
	}
	return RabbitCluster{}, false
}

// architecture classes the estate as it stands now. HA-3: every component
// has at least three live members (two IAP servers that can work tasks):
// MongoDB a primary and three healthy voters; the Redis group and RabbitMQ
// cluster each working server uses three reachable Sentinels, a master and a
// promotable replica, or three running nodes. HA-6: HA-3, IAP servers able to
// work in two sites, MongoDB voters in three, and the loss of any one site
// survivable.
func architecture(cfg *config.Config, s *Snapshot, v *Verdict) ArchitectureVerdict {
	a := ArchitectureVerdict{Observed: config.ArchHA0, Expected: cfg.Architecture}
	if a.Expected == "" {
		a.Expected = ArchNone
	}
	if why := notRedundant(cfg, s); why != "" {
		a.Reason = why
		return a
	}
	a.Observed = config.ArchHA3
	if why := notMultiSite(s, v); why != "" {
		a.Reason = why
		return a
	}
	a.Observed = config.ArchHA6
	return a
}

func notRedundant(cfg *config.Config, s *Snapshot) string {
	if s.IAP == nil {
		return "iap state unknown"
	}
	if len(cfg.MongoDB) > 0 && s.MongoDB == nil {
		return "mongodb state unknown"
	}
	for _, rs := range s.MongoDB {
		healthy, primary := 0, false
		for _, m := range rs.Members {
			if m.HealthyVoter() {
				healthy++
			}
			primary = primary || m.State == MongoPrimary
		}
		switch {
		case !rs.Up:
			return "mongodb " + rs.Name + " state unknown"
		case !primary:
			return "mongodb " + rs.Name + " has no primary"
		case healthy < 3:
			return fmt.Sprintf("mongodb %s has %d healthy voting members, HA-3 needs 3", rs.Name, healthy)
		}
	}
	working, why := 0, ""
	for _, srv := range s.IAP {
		if !canWork(srv) {
			continue
		}
		if w := dependenciesRedundant(s, srv); w != "" {
			why = w
			continue
		}
		working++
	}
	if working >= 2 {
		return ""
	}
	if why != "" {
		return why
	}
	return fmt.Sprintf("iap: %d server(s) can work tasks, HA-3 needs 2", working)
}

// dependenciesRedundant says why the Redis group or RabbitMQ cluster srv uses
// has fewer than three live members, or "".
func dependenciesRedundant(s *Snapshot, srv IAPServer) string {
	if srv.Redis != "" {
		g, ok := findRedis(s, srv.Redis)
		switch {
		case !ok:
			return "redis " + srv.Redis + " state unknown"
		case !hasMaster(g):
			return "redis " + g.Name + " has no master"
		case reachableSentinels(g) < 3:
			return fmt.Sprintf("redis %s has %d reachable Sentinels, HA-3 needs 3", g.Name, reachableSentinels(g))
		}
		promotable := false
		for _, n := range g.Nodes {
			promotable = promotable || promotableReplica(n)
		}
		if !promotable {
			return "redis " + g.Name + " has no promotable replica"
		}
	}
	if srv.RabbitMQ != "" {
		c, ok := findRabbit(s, srv.RabbitMQ)
		if !ok || !c.Up {
			return "rabbitmq " + srv.RabbitMQ + " state unknown"
		}
		running := 0
		for _, n := range c.Nodes {
			if n.Running {
				running++
			}
		}
		if running < 3 {
			return fmt.Sprintf("rabbitmq %s has %d running nodes, HA-3 needs 3", c.Name, running)
		}
	}
	return ""
}

func notMultiSite(s *Snapshot, v *Verdict) string {
	sites := map[string]bool{}
	for _, srv := range s.IAP {
		if canWork(srv) {
			sites[srv.Site] = true
		}
	}
	if len(sites) < 2 {
		return "iap servers can work tasks in only one site"
	}
	for _, rs := range s.MongoDB {
		memberSites := map[string]bool{}
		for _, m := range rs.Members {
			if m.Voting() {
				memberSites[m.Site] = true
			}
		}
		if len(memberSites) < 3 {
			return fmt.Sprintf("mongodb %s has voting members in %d sites; a tie-breaker needs a third", rs.Name, len(memberSites))
		}
	}
	for _, sv := range v.Sites {
		if !sv.Survivable {
			return "losing " + sv.Site + " is not survivable: " + sv.Reason
		}
	}
	return ""
}

// TotalDevices is how many devices the gateway manages: its top-level device
// list, or the sum of the inventories when that is missing.
func (g Gateway) TotalDevices() int {
	if n, ok := g.Devices["devices"]; ok {
		return n
	}
	total := 0
	for _, n := range g.Devices {
		total += n
	}
	return total
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
