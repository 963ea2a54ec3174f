// Package config holds the exporter's YAML configuration: the sites of the
// estate and the targets of every component, with their credentials.
//
// Secrets are never written in the file itself: each credential names a file
// (password_file) or an environment variable (password_env) that Load reads.
// The secret values live in fields tagged yaml:"-" so that they cannot leak
// through a dump of the configuration.
//
// Load (and Default) decode strictly (load.go, strict.go), set every default
// once (defaults.go), check every field (validate.go) and read the files the
// configuration names, refusing anything but a bounded regular file
// (files.go). What they return is complete.
package config

import (
	promconfig "github.com/prometheus/common/config"
	"github.com/prometheus/common/model"
)

// Architecture classes Itential documents.
const (
	ArchHA0 = "HA-0"
	ArchHA3 = "HA-3"
	ArchHA6 = "HA-6"
)

// Site roles.
const (
	SiteActive  = "active"
	SiteStandby = "standby"
	SiteWitness = "witness"
)

// IAP server roles a config may declare.
const (
	RoleActive  = "active"
	RoleStandby = "standby"
)

// Config is the whole configuration file.
type Config struct {
	// Architecture is the class the estate is designed to be: HA-0, HA-3 or HA-6.
	Architecture string          `yaml:"architecture"`
	Sites        []Site          `yaml:"sites"`
	IAP          IAP             `yaml:"iap"`
	MongoDB      []ReplicaSet    `yaml:"mongodb"`
	Redis        []SentinelGroup `yaml:"redis"`
	RabbitMQ     []RabbitCluster `yaml:"rabbitmq"`
	Gateways     []Gateway       `yaml:"gateways"`
	// LoadBalancers are the balancers in front of the IAP servers.
	LoadBalancers []LoadBalancer `yaml:"load_balancers"`

	// Warnings are what the load found doubtful but not wrong; --config.check
	// prints them and a (re)load logs them.
	Warnings []string `yaml:"-"`
}

// Site is a data center (or any failure domain) of the estate.
type Site struct {
	Name string `yaml:"name"`
	// Role is active, standby or witness (a site that only holds a tie-breaker
	// such as the MongoDB arbiter).
	Role string `yaml:"role"`
}

// Credentials names a user and where its secret is read from. The secret
// itself is filled in by Load.
type Credentials struct {
	Username     string `yaml:"username"`
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`

	Password promconfig.Secret `yaml:"-"`
}

// IAP holds the IAP servers and what they share.
type IAP struct {
	// Timeout bounds the authenticated calls to one server; HealthTimeout the
	// unauthenticated /health/status probe.
	Timeout       model.Duration `yaml:"timeout"`
	HealthTimeout model.Duration `yaml:"health_timeout"`
	// Auth and TLS are the defaults for every server; a server may override them.
	Auth    IAPAuth              `yaml:"auth"`
	TLS     promconfig.TLSConfig `yaml:"tls_config"`
	Servers []IAPServer          `yaml:"servers"`
}

// IAPAuth is either a user login (POST /login) or OAuth client credentials
// (POST /oauth/token). Empty means only the unauthenticated probes run.
type IAPAuth struct {
	Credentials      `yaml:",inline"`
	ClientID         string `yaml:"client_id"`
	ClientSecretFile string `yaml:"client_secret_file"`
	ClientSecretEnv  string `yaml:"client_secret_env"`
	// CookieName is the session cookie IAP sets on /login ("token" unless changed).
	CookieName string `yaml:"cookie_name"`

	ClientSecret promconfig.Secret `yaml:"-"`
}

// Enabled reports whether any credential is configured.
func (a IAPAuth) Enabled() bool { return a.Username != "" || a.ClientID != "" }

// IAPServer is one IAP server, addressed directly (never through the load
// balancer: worker state is per node).
type IAPServer struct {
	Name string `yaml:"name"`
	URL  string `yaml:"url"`
	Site string `yaml:"site"`
	// Role is the role the design gives this server: active or standby.
	Role string `yaml:"role"`
	// Cluster names the token domain: servers sharing one Redis share login
	// tokens. It defaults to the server's Redis group.
	Cluster string `yaml:"cluster"`
	// Redis and RabbitMQ name the Sentinel group and RabbitMQ cluster this
	// server depends on; by default the one of its own site, else the
	// estate's only one. With several and none in its site, the server must
	// name one.
	Redis    string `yaml:"redis"`
	RabbitMQ string `yaml:"rabbitmq"`
	// Auth, TLS and Timeout override the iap-level defaults when set.
	Auth    *IAPAuth              `yaml:"auth"`
	TLS     *promconfig.TLSConfig `yaml:"tls_config"`
	Timeout model.Duration        `yaml:"timeout"`
}

// ReplicaSet is one MongoDB replica set.
type ReplicaSet struct {
	// Name is the replica set name (the set label).
	Name        string `yaml:"name"`
	URI         string `yaml:"uri"`
	Credentials `yaml:",inline"`
	AuthSource  string                `yaml:"auth_source"`
	TLS         *promconfig.TLSConfig `yaml:"tls_config"`
	Timeout     model.Duration        `yaml:"timeout"`
	// MemberSites maps a member's host:port to its site; members not listed
	// take their site from the replica-set member tag SiteTag ("dc").
	MemberSites map[string]string `yaml:"member_sites"`
	SiteTag     string            `yaml:"site_tag"`
	// DirectMembers asks every member for its own view over a direct
	// connection, so that two primaries in two views are seen.
	DirectMembers bool `yaml:"direct_members"`
}

// SentinelGroup is one Redis master watched by a group of Sentinels.
type SentinelGroup struct {
	// Name identifies the group in metrics (the master label); it defaults to
	// MasterName and must be unique, which matters where every site runs its
	// own group under the same master name (Itential's deployer).
	Name       string     `yaml:"name"`
	MasterName string     `yaml:"master_name"`
	Site       string     `yaml:"site"`
	Sentinels  []Sentinel `yaml:"sentinels"`
	// SentinelAuth authenticates to the Sentinels, Auth to the data nodes.
	SentinelAuth Credentials           `yaml:"sentinel_auth"`
	Auth         Credentials           `yaml:"auth"`
	TLS          *promconfig.TLSConfig `yaml:"tls_config"`
	Timeout      model.Duration        `yaml:"timeout"`
	// NodeSites maps a data node's host:port to its site; unlisted nodes
	// belong to the group's site.
	NodeSites map[string]string `yaml:"node_sites"`
}

// Sentinel is one Sentinel process.
type Sentinel struct {
	Address string `yaml:"address"`
	// Site defaults to the group's site; Itential's shared-token guide spreads
	// Sentinels over three sites.
	Site string `yaml:"site"`
}

// RabbitCluster is one RabbitMQ cluster (IAP 2022.1–2023.1 only).
type RabbitCluster struct {
	Name string `yaml:"name"`
	Site string `yaml:"site"`
	// URLs are management API endpoints; any node that answers serves the
	// cluster view.
	URLs        []string `yaml:"urls"`
	Credentials `yaml:",inline"`
	TLS         *promconfig.TLSConfig `yaml:"tls_config"`
	Timeout     model.Duration        `yaml:"timeout"`
	// NodeSites maps a node name (rabbit@host) to its site; unlisted nodes
	// belong to the cluster's site.
	NodeSites map[string]string `yaml:"node_sites"`
	// PerQueueMetrics adds one series per queue; off by default, as queues
	// may number in the tens of thousands.
	PerQueueMetrics bool `yaml:"per_queue_metrics"`
	// PartitionHandling is the cluster's cluster_partition_handling, which
	// the management API does not show: ignore (RabbitMQ's default),
	// pause_minority, autoheal or pause_if_all_down. The failures the
	// cluster tolerates follow it.
	PartitionHandling string `yaml:"partition_handling"`
	// FederationLinks are the links this cluster must run (a DR site's
	// upstream): one missing is reported down, not left out.
	FederationLinks []FederationLink `yaml:"federation_links"`
}

// FederationLink names one expected federation link: the federated exchange
// or queue in a vhost and its upstream.
type FederationLink struct {
	VHost    string `yaml:"vhost"`
	Upstream string `yaml:"upstream"`
	Exchange string `yaml:"exchange"`
	Queue    string `yaml:"queue"`
}

// Gateway is one Automation Gateway (IAG 4): standalone, no clustering.
type Gateway struct {
	Name        string `yaml:"name"`
	URL         string `yaml:"url"`
	Site        string `yaml:"site"`
	Credentials `yaml:",inline"`
	TLS         *promconfig.TLSConfig `yaml:"tls_config"`
	Timeout     model.Duration        `yaml:"timeout"`
	// Capacity is how many devices the gateway is sized for (Itential: 5000).
	Capacity int `yaml:"capacity"`
	// Adapter names the adapter-automation_gateway instance through which IAP
	// reaches this gateway (Itential's deployer: IAG-<host>), for the
	// cross-check of IAP's view against the gateway's own.
	Adapter string `yaml:"adapter"`
}

// Load balancer kinds.
const (
	// BalancerHAProxy is read through HAProxy's stats socket (`show stat`).
	BalancerHAProxy = "haproxy"
	// BalancerVIP is any balancer (F5, NGINX, …) seen from outside: the
	// exporter asks /health/status through its virtual IP and records which
	// server answered.
	BalancerVIP = "vip"
)

// LoadBalancer is one balancer in front of the IAP servers: Itential's design
// sends users to the active servers and to the standbys only once every
// active is offline.
type LoadBalancer struct {
	Name string `yaml:"name"`
	Site string `yaml:"site"`
	Kind string `yaml:"kind"`
	// StatsSocket (haproxy) is HAProxy's stats socket: a Unix socket path,
	// or host:port for a socket bound with ipv4@. Backend names the backend
	// holding the IAP servers.
	StatsSocket string `yaml:"stats_socket"`
	Backend     string `yaml:"backend"`
	// AllBackups (haproxy) says the backend has `option allbackups`: once
	// no normal server is usable every usable backup takes traffic, not the
	// first alone.
	AllBackups bool `yaml:"all_backups"`
	// Servers maps a balancer's server name to the configured IAP server it
	// is, where the names differ; the others match by name, then by address.
	Servers map[string]string `yaml:"servers"`
	// URL (vip) is the virtual IP's base URL; Requests how many times a
	// scrape asks /health/status through it.
	URL      string                `yaml:"url"`
	Requests int                   `yaml:"requests"`
	TLS      *promconfig.TLSConfig `yaml:"tls_config"`
	Timeout  model.Duration        `yaml:"timeout"`
}
