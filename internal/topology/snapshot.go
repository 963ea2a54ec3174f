// Package topology holds the typed state of an IAP estate as the probes saw it
// in one scrape (Snapshot), the HA model computed from it (Verdict), and the
// record of the whole scrape that the metrics, the topology page and the
// remediation receiver read (Observation).
//
// Probes fill a Snapshot; they know nothing of Prometheus. The model is pure
// functions over a Snapshot and the configured sites: each component judges
// itself in its own file (mongodb.go, redis.go, rabbitmq.go, iap.go: its
// tolerance, split brain and survival of a site), and Evaluate (model.go)
// composes them with the site losses (sites.go) and the class table
// (architecture.go). Collectors and the remediation receiver only read both.
package topology

import "time"

// Snapshot is what every probe of one scrape saw. A nil slice means the probe
// did not report (it failed as a whole or overran the deadline): the model
// treats that component as unknown, never as healthy.
type Snapshot struct {
	Time     time.Time       `json:"time"`
	IAP      []IAPServer     `json:"iap"`
	MongoDB  []ReplicaSet    `json:"mongodb"`
	Redis    []SentinelGroup `json:"redis"`
	RabbitMQ []RabbitCluster `json:"rabbitmq"`
	Gateways []Gateway       `json:"gateways"`
	// LoadBalancers: nil when none is configured or the probe failed.
	LoadBalancers []LoadBalancer `json:"load_balancers,omitempty"`
}

// Part is one probe's share of a Snapshot. Every probe returns its own part
// and the framework adds it to the scrape's Snapshot, so that a probe that
// overruns its deadline can never write into a snapshot already in use.
type Part interface {
	AddTo(*Snapshot)
}

// IAPServers is the IAP probe's part.
type IAPServers []IAPServer

// AddTo implements Part.
func (p IAPServers) AddTo(s *Snapshot) { s.IAP = append(s.IAP, p...) }

// ReplicaSets is the MongoDB probe's part.
type ReplicaSets []ReplicaSet

// AddTo implements Part.
func (p ReplicaSets) AddTo(s *Snapshot) { s.MongoDB = append(s.MongoDB, p...) }

// SentinelGroups is the Redis probe's part.
type SentinelGroups []SentinelGroup

// AddTo implements Part.
func (p SentinelGroups) AddTo(s *Snapshot) { s.Redis = append(s.Redis, p...) }

// RabbitClusters is the RabbitMQ probe's part.
type RabbitClusters []RabbitCluster

// AddTo implements Part.
func (p RabbitClusters) AddTo(s *Snapshot) { s.RabbitMQ = append(s.RabbitMQ, p...) }

// Gateways is the Automation Gateway probe's part.
type Gateways []Gateway

// AddTo implements Part.
func (p Gateways) AddTo(s *Snapshot) { s.Gateways = append(s.Gateways, p...) }

// Tristate is a fact that may be unknown (not asked, or the answer failed).
type Tristate int8

// Tristate values.
const (
	Unknown Tristate = iota
	False
	True
)

// And is the three-valued conjunction: False if either is False, else
// Unknown if either is Unknown.
func (t Tristate) And(u Tristate) Tristate {
	switch {
	case t == False || u == False:
		return False
	case t == Unknown || u == Unknown:
		return Unknown
	}
	return True
}

// Not is the three-valued negation: Unknown stays Unknown.
func (t Tristate) Not() Tristate {
	switch t {
	case True:
		return False
	case False:
		return True
	}
	return Unknown
}

// TristateOf turns a bool into a known Tristate.
func TristateOf(b bool) Tristate {
	if b {
		return True
	}
	return False
}

// IAPServer is one IAP server as probed.
type IAPServer struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Site string `json:"site"`
	// DeclaredRole is the role the config gives it: active or standby.
	DeclaredRole string `json:"declared_role"`
	// Redis and RabbitMQ name the Sentinel group and RabbitMQ cluster it depends on.
	Redis    string `json:"redis,omitempty"`
	RabbitMQ string `json:"rabbitmq,omitempty"`

	// Up: /health/status answered 200 in time.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`

	ServerID string `json:"server_id,omitempty"`
	Release  string `json:"release,omitempty"`
	Version  string `json:"version,omitempty"`

	// Services is IAP's own view of its dependencies (mongo, redis, rabbitmq, vault).
	Services []IAPService `json:"services,omitempty"`
	// AppsHealthy and AdaptersHealthy come from /health/status ("running" vs "degraded").
	AppsHealthy     Tristate `json:"apps_healthy"`
	AdaptersHealthy Tristate `json:"adapters_healthy"`

	// Applications and Adapters come from the authenticated /health routes;
	// nil when not asked or not answered.
	Applications []IAPModule `json:"applications,omitempty"`
	Adapters     []IAPModule `json:"adapters,omitempty"`

	// TaskWorker and JobWorker say whether the workers run now on this node
	// (workers/status on 2023.1+, /workflow_engine/active before).
	TaskWorker Tristate `json:"task_worker"`
	JobWorker  Tristate `json:"job_worker"`
	// ConfiguredActive is the task worker setting of the server's own
	// configuration: the profile's taskWorkerProps.active / activate up to
	// 2023.2, task_worker_enabled of /server/config on Platform 6 (else the
	// task worker's startupValue).
	ConfiguredActive Tristate `json:"configured_active"`
	// ConfiguredJobWorker is job_worker_enabled of Platform 6's
	// /server/config; Unknown on earlier releases.
	ConfiguredJobWorker Tristate `json:"configured_job_worker"`
	// APIUp says whether every authenticated call answered (Unknown when no
	// credentials are configured or the server did not answer at all). A
	// failed call leaves its facts Unknown and its reason in Error.
	APIUp Tristate `json:"api_up"`
}

// IAPService is one dependency as IAP sees it.
type IAPService struct {
	Name    string `json:"name"`
	Running bool   `json:"running"`
}

// IAPModule is an application or adapter of an IAP server.
type IAPModule struct {
	Name      string `json:"name"`
	PackageID string `json:"package_id,omitempty"`
	// State is RUNNING, STOPPED, DEAD or DELETED.
	State string `json:"state"`
	// Connection is the adapter's connection state (ONLINE, …); empty for applications.
	Connection string `json:"connection,omitempty"`
	Healthy    bool   `json:"healthy"`
}

// Observed IAP server states.
const (
	StateActive  = "active"
	StateStandby = "standby"
	StateDown    = "down"
	// StateUnknown: the server answers /health/status, but whether its task
	// worker runs could not be read (no credentials, or the call failed).
	StateUnknown = "unknown"
)

// ObservedState is active (answers and works tasks), standby (answers, task
// worker known to be stopped), down, or unknown: a server that answers but
// whose worker state could not be read is not taken for a standby.
func (s IAPServer) ObservedState() string {
	switch {
	case !s.Up:
		return StateDown
	case s.TaskWorker == True:
		return StateActive
	case s.TaskWorker == False:
		return StateStandby
	default:
		return StateUnknown
	}
}

// DependenciesRunning reports whether every dependency IAP lists is running.
func (s IAPServer) DependenciesRunning() bool {
	for _, svc := range s.Services {
		if !svc.Running {
			return false
		}
	}
	return true
}

// Promotable reports whether a standby is known to be able to take over
// (PromotableState is True).
func (s IAPServer) Promotable() bool { return s.PromotableState() == True }

// PromotableState says whether a standby could take over: it answers
// /health/status, its authenticated API works, its task worker is known to
// be stopped, no dependency it lists is failing, its applications run and
// its adapters are online. Unknown where a fact it
// needs could not be read; False where one is known to fail.
func (s IAPServer) PromotableState() Tristate {
	if !s.Up || s.APIUp == False || s.TaskWorker == True || !s.DependenciesRunning() ||
		s.AppsHealthy == False || s.AdaptersHealthy == False || !modulesHealthy(s.Applications) || !modulesHealthy(s.Adapters) {
		return False
	}
	if s.APIUp == Unknown || s.TaskWorker == Unknown || s.AppsHealthy == Unknown || s.AdaptersHealthy == Unknown {
		return Unknown
	}
	return True
}

// WorkState says whether the server works tasks now or could after a
// promotion: True for an active, a standby's PromotableState otherwise.
func (s IAPServer) WorkState() Tristate {
	switch s.ObservedState() {
	case StateActive:
		return True
	case StateDown:
		return False
	}
	return s.PromotableState()
}

func modulesHealthy(ms []IAPModule) bool {
	for _, m := range ms {
		if !m.Healthy {
			return false
		}
	}
	return true
}

// ReplicaSet is one MongoDB replica set as probed.
type ReplicaSet struct {
	Name string `json:"name"`
	// Up: the set's status could be read.
	Up    bool   `json:"up"`
	Error string `json:"error,omitempty"`
	// Term is the election term of the freshest view.
	Term    int64         `json:"term"`
	Members []MongoMember `json:"members"`
	// Primaries counts the members seen as primary across every view that
	// was read (the set's status and, with direct_members, each member's own
	// hello). More than one is split brain.
	Primaries int `json:"primaries"`
	// LagReference says what lag is measured against: "primary", or
	// "freshest" when there is no primary.
	LagReference string `json:"lag_reference,omitempty"`
}

// MongoDB member state codes.
const (
	MongoStartup    = 0
	MongoPrimary    = 1
	MongoSecondary  = 2
	MongoRecovering = 3
	MongoStartup2   = 5
	MongoUnknown    = 6
	MongoArbiter    = 7
	MongoDown       = 8
	MongoRollback   = 9
	MongoRemoved    = 10
)

// MongoMember is one member of a replica set.
type MongoMember struct {
	ID   int    `json:"id"`
	Name string `json:"name"` // host:port
	// Site is where the member stands: its member_sites entry, else its site
	// tag. Empty means unplaced: the model never counts it as a survivor of
	// a site loss nor as a site of its own.
	Site string `json:"site"`
	// State is MongoDB's state code, StateStr its name.
	State    int    `json:"state"`
	StateStr string `json:"state_str"`
	Healthy  bool   `json:"healthy"`
	// From replSetGetConfig.
	Votes       int               `json:"votes"`
	Priority    float64           `json:"priority"`
	ArbiterOnly bool              `json:"arbiter_only"`
	Hidden      bool              `json:"hidden"`
	Tags        map[string]string `json:"tags,omitempty"`
	// SecondaryDelaySeconds is the member's configured secondaryDelaySecs
	// (slaveDelay before 5.0): a delayed member is meant to trail by it.
	SecondaryDelaySeconds int64 `json:"secondary_delay_seconds,omitempty"`
	// LagSeconds is the reference optime minus this member's optime, less
	// its configured delay; unset
	// (HasLag false) for arbiters and unreachable members.
	LagSeconds float64 `json:"lag_seconds"`
	HasLag     bool    `json:"has_lag"`
	// Reachable is whether a direct connection answered (direct_members only).
	Reachable Tristate `json:"reachable"`
}

// Voting reports whether the member has a vote.
func (m MongoMember) Voting() bool { return m.Votes > 0 }

// HealthyVoter reports whether the member has a vote, is healthy and is in
// a state that votes in an election (primary, secondary, recovering,
// startup2, arbiter, rollback).
func (m MongoMember) HealthyVoter() bool {
	if !m.Voting() || !m.Healthy {
		return false
	}
	switch m.State {
	case MongoPrimary, MongoSecondary, MongoArbiter, MongoRecovering, MongoStartup2, MongoRollback:
		return true
	}
	return false
}

// SentinelGroup is one Redis master and its Sentinels as probed.
type SentinelGroup struct {
	Name       string `json:"name"`
	MasterName string `json:"master_name"`
	Site       string `json:"site"`
	// Quorum is the configured quorum (from the Sentinels' SENTINEL MASTER).
	Quorum    int            `json:"quorum"`
	Sentinels []SentinelView `json:"sentinels"`
	// Nodes are the data nodes discovered from the Sentinels.
	Nodes []RedisNode `json:"nodes"`
}

// SentinelView is what one Sentinel says about the master.
type SentinelView struct {
	Address string `json:"address"`
	Site    string `json:"site"`
	Up      bool   `json:"up"`
	Error   string `json:"error,omitempty"`
	// MasterAddress is host:port of the master this Sentinel follows.
	MasterAddress      string   `json:"master_address,omitempty"`
	MasterFlags        []string `json:"master_flags,omitempty"`
	ConfigEpoch        int64    `json:"config_epoch"`
	FailoverInProgress bool     `json:"failover_in_progress"`
	Quorum             int      `json:"quorum"`
	// KnownSentinels counts the Sentinels this one knows, itself included.
	KnownSentinels int    `json:"known_sentinels"`
	KnownReplicas  int    `json:"known_replicas"`
	CKQuorumOK     bool   `json:"ckquorum_ok"`
	CKQuorum       string `json:"ckquorum,omitempty"`
	TILT           bool   `json:"tilt"`
}

// RedisNode is one Redis data node.
type RedisNode struct {
	Address string `json:"address"`
	Site    string `json:"site"`
	Up      bool   `json:"up"`
	Error   string `json:"error,omitempty"`
	// Role is master or replica (Redis says "slave"). For a node that did
	// not answer it is the role the Sentinels last saw.
	Role              string `json:"role,omitempty"`
	MasterLinkUp      bool   `json:"master_link_up"`
	LagBytes          int64  `json:"lag_bytes"`
	ReplicaPriority   int    `json:"replica_priority"`
	ConnectedReplicas int    `json:"connected_replicas"`
	// MasterAddress is the host:port a replica replicates from.
	MasterAddress string `json:"master_address,omitempty"`
	// ReplOffset is the replication offset: master_repl_offset on a master,
	// slave_repl_offset on a replica.
	ReplOffset int64 `json:"repl_offset"`
	// HasLag says LagBytes is known: the node is a replica and both it and
	// its master answered.
	HasLag bool `json:"has_lag"`
}

// RabbitCluster is one RabbitMQ cluster as probed.
type RabbitCluster struct {
	Name string `json:"name"`
	Site string `json:"site"`
	// Up: a management API answered.
	Up          bool   `json:"up"`
	Error       string `json:"error,omitempty"`
	Version     string `json:"version,omitempty"`
	ClusterName string `json:"cluster_name,omitempty"`
	// PartitionHandling is cluster_partition_handling: ignore (RabbitMQ's
	// default), pause_minority, autoheal or pause_if_all_down.
	PartitionHandling string `json:"partition_handling,omitempty"`
	// MirroringSupported is false on RabbitMQ 4.x, which removed classic
	// mirrored queues: the unsynchronised count means nothing there.
	MirroringSupported bool             `json:"mirroring_supported"`
	Nodes              []RabbitNode     `json:"nodes"`
	Queues             []QueueGroup     `json:"queues"`
	FederationLinks    []FederationLink `json:"federation_links,omitempty"`
	PerQueue           []QueueState     `json:"per_queue,omitempty"`
}

// RabbitNode is one cluster member.
type RabbitNode struct {
	Name       string   `json:"name"`
	Site       string   `json:"site"`
	Running    bool     `json:"running"`
	Partitions []string `json:"partitions,omitempty"`
	MemAlarm   bool     `json:"mem_alarm"`
	DiskAlarm  bool     `json:"disk_alarm"`
	// Peers are the cluster members this node has a distribution link to
	// (CLI tool connections left out).
	Peers []string `json:"peers,omitempty"`
}

// QueueGroup aggregates the queues of one vhost and type.
type QueueGroup struct {
	VHost string `json:"vhost"`
	// Type is classic, quorum or stream.
	Type  string `json:"type"`
	Count int    `json:"count"`
	// Unsynchronised counts mirrored queues short of the synchronised
	// mirrors their policy asks for.
	Unsynchronised int `json:"unsynchronised"`
	// WithoutQuorum counts quorum queues with a minority online or no leader.
	WithoutQuorum int `json:"without_quorum"`
	// QuorumSpare is, over the quorum queues that have a quorum, the fewest
	// online members beyond their majority: how many more member losses
	// every one of them survives. Meaningful only where Count > WithoutQuorum.
	QuorumSpare int `json:"quorum_spare"`
	// QuorumCritical counts quorum queues with a bare majority online: one
	// more member lost and they stop. MirrorSyncCritical counts mirrored
	// queues without a synchronised mirror: losing their node loses data.
	// These are RabbitMQ's node-is-quorum-critical and
	// node-is-mirror-sync-critical health checks, cluster-wide.
	QuorumCritical     int `json:"quorum_critical"`
	MirrorSyncCritical int `json:"mirror_sync_critical"`
}

// QueueState is one queue, reported only with per_queue_metrics.
type QueueState struct {
	VHost         string `json:"vhost"`
	Name          string `json:"name"`
	Type          string `json:"type"`
	Node          string `json:"node,omitempty"`
	Mirrors       int    `json:"mirrors"`
	SyncedMirrors int    `json:"synced_mirrors"`
	Members       int    `json:"members"`
	OnlineMembers int    `json:"online_members"`
	Leader        string `json:"leader,omitempty"`
}

// FederationLink is one federation link.
type FederationLink struct {
	VHost    string `json:"vhost"`
	Upstream string `json:"upstream"`
	// Type is exchange or queue; Name the federated exchange or queue.
	Type   string `json:"type"`
	Name   string `json:"name"`
	Status string `json:"status"`
	Error  string `json:"error,omitempty"`
}

// Gateway is one Automation Gateway as probed.
type Gateway struct {
	Name string `json:"name"`
	URL  string `json:"url"`
	Site string `json:"site"`
	// Up: /api/v2.0/poll answered.
	Up             bool   `json:"up"`
	Error          string `json:"error,omitempty"`
	Hostname       string `json:"hostname,omitempty"`
	Version        string `json:"version,omitempty"`
	AnsibleVersion string `json:"ansible_version,omitempty"`
	// Devices counts devices per inventory ("devices" for the top-level list);
	// nil when the counts could not be read.
	Devices  map[string]int `json:"devices,omitempty"`
	Capacity int            `json:"capacity"`
	// Adapter is IAP's adapter for this gateway; AdapterState what IAP says of it.
	Adapter      string   `json:"adapter,omitempty"`
	AdapterState Tristate `json:"adapter_healthy"`
}
