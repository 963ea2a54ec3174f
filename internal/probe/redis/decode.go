package redis

import (
	"net"
	"slices"
	"strconv"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// knownNode is a data node as one Sentinel describes it.
type knownNode struct {
	addr     string
	role     string
	master   string // a replica's master, host:port
	linkUp   bool
	priority int
}

// decodeMaster fills v from a SENTINEL MASTER reply. Field names are the same
// from Redis 5 to 7; missing or malformed fields are left at zero.
func decodeMaster(m map[string]string, v *topology.SentinelView) {
	if m["ip"] != "" && m["port"] != "" {
		v.MasterAddress = net.JoinHostPort(m["ip"], m["port"])
	}
	if m["flags"] != "" {
		v.MasterFlags = strings.Split(m["flags"], ",")
	}
	v.FailoverInProgress = slices.Contains(v.MasterFlags, "failover_in_progress")
	v.ConfigEpoch, _ = strconv.ParseInt(m["config-epoch"], 10, 64)
	v.Quorum, _ = strconv.Atoi(m["quorum"])
	v.KnownReplicas, _ = strconv.Atoi(m["num-slaves"])
}

// decodeReplica reads one entry of a SENTINEL REPLICAS reply. Sentinel keeps
// listing a replica after it dies, flagged s_down and disconnected.
func decodeReplica(m map[string]string) (knownNode, bool) {
	if m["ip"] == "" || m["port"] == "" {
		return knownNode{}, false
	}
	n := knownNode{addr: net.JoinHostPort(m["ip"], m["port"]), role: topology.RedisReplica}
	// A replica that is down reads master-host "?" and master-port 0.
	if m["master-host"] != "" && m["master-host"] != "?" && m["master-port"] != "" && m["master-port"] != "0" {
		n.master = net.JoinHostPort(m["master-host"], m["master-port"])
	}
	flags := strings.Split(m["flags"], ",")
	n.linkUp = m["master-link-status"] == "ok" &&
		!slices.Contains(flags, "s_down") && !slices.Contains(flags, "disconnected")
	n.priority, _ = strconv.Atoi(m["slave-priority"])
	return n, true
}

// decodeCKQuorum reads the reply of SENTINEL CKQUORUM: "OK 3 usable
// Sentinels…" or an error reply "NOQUORUM 1 usable Sentinels…" (or
// "NOQUORUM …" from older Sentinels without the count).
func decodeCKQuorum(val string, err error) (ok bool, text string) {
	if err != nil {
		return false, err.Error()
	}
	return strings.HasPrefix(val, "OK"), val
}

// mergeKnown joins the Sentinels' lists of data nodes into one, sorted by
// address. A node any Sentinel sees as master counts as a master; for a
// replica the first Sentinel that lists it gives its details.
func mergeKnown(views [][]knownNode) []knownNode {
	byAddr := map[string]knownNode{}
	for _, nodes := range views {
		for _, n := range nodes {
			if n.addr == "" {
				continue
			}
			have, seen := byAddr[n.addr]
			if !seen || (n.role == topology.RedisMaster && have.role != topology.RedisMaster) {
				byAddr[n.addr] = n
			}
		}
	}
	out := make([]knownNode, 0, len(byAddr))
	for _, n := range byAddr {
		out = append(out, n)
	}
	slices.SortFunc(out, func(a, b knownNode) int { return strings.Compare(a.addr, b.addr) })
	return out
}

// parseInfo reads the key:value lines of an INFO reply; section headers,
// comments and blank lines are skipped.
func parseInfo(info string) map[string]string {
	out := map[string]string{}
	lines := strings.FieldsFunc(info, func(r rune) bool { return r == '\r' || r == '\n' })
	for _, line := range lines {
		line = strings.TrimSpace(line)
		if line == "" || line[0] == '#' {
			continue
		}
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = v
		}
	}
	return out
}

// decodeReplication fills n from the fields of INFO replication.
func decodeReplication(info map[string]string, n *topology.RedisNode) {
	switch info["role"] {
	case "master":
		n.Role = topology.RedisMaster
		n.MasterAddress = ""
		n.MasterLinkUp = false
		n.ReplOffset, _ = strconv.ParseInt(info["master_repl_offset"], 10, 64)
	case "slave":
		n.Role = topology.RedisReplica
		n.MasterAddress = ""
		if info["master_host"] != "" && info["master_port"] != "" {
			n.MasterAddress = net.JoinHostPort(info["master_host"], info["master_port"])
		}
		n.MasterLinkUp = info["master_link_status"] == "up"
		n.ReplOffset, _ = strconv.ParseInt(info["slave_repl_offset"], 10, 64)
	}
	n.ConnectedReplicas, _ = strconv.Atoi(info["connected_slaves"])
	// Redis has said slave_priority since 2.8; accept the newer spelling too.
	for _, key := range []string{"replica_priority", "slave_priority"} {
		if p, err := strconv.Atoi(info[key]); err == nil {
			n.ReplicaPriority = p
			break
		}
	}
}
