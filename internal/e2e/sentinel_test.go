package e2e

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// The Sentinel states of issue 19 brought about for real in lab groups (real
// redis-server and redis-sentinel), read by the built binary and judged by
// the rule pack in a real Prometheus.

// startSentinelGroups starts one lab group per name, each of its own site.
func startSentinelGroups(t *testing.T, names ...string) map[string]*lab.SentinelGroup {
	t.Helper()
	groups := map[string]*lab.SentinelGroup{}
	for _, name := range names {
		g, err := lab.StartSentinelGroup(lab.SentinelOptions{Site: name})
		if err != nil {
			t.Fatalf("Redis lab group %s: %v", name, err)
		}
		t.Cleanup(func() {
			if err := g.Stop(); err != nil {
				t.Error(err)
			}
		})
		groups[name] = g
	}
	return groups
}

// startSentinelExporter runs the binary against the groups, with a lab
// Prometheus scraping it.
func startSentinelExporter(t *testing.T, groups map[string]*lab.SentinelGroup) (*exporter, *prometheus) {
	t.Helper()
	var b strings.Builder
	b.WriteString("sites:\n")
	for name := range groups {
		fmt.Fprintf(&b, "  - name: %s\n", name)
	}
	b.WriteString("redis:\n")
	for name, g := range groups {
		fmt.Fprintf(&b, "  - name: %s\n    master_name: %s\n    site: %s\n    sentinels:\n", name, g.MasterName, g.Site)
		for _, s := range g.SentinelAddrs() {
			fmt.Fprintf(&b, "      - address: %s\n", s)
		}
	}
	file := filepath.Join(t.TempDir(), "exporter.yml")
	writeFile(t, file, b.String())
	e := startExporter(t, "--config.file", file, "--no-collector.iap", "--no-collector.mongodb", "--no-collector.rabbitmq")
	return e, startPrometheus(t, e.addr)
}

// sentinelPID is the process id of the group's running Sentinel i.
func sentinelPID(t *testing.T, g *lab.SentinelGroup, i int) int {
	t.Helper()
	if g.Sentinels[i].PID == 0 {
		t.Fatalf("Sentinel %s is not running", g.Sentinels[i].Addr)
	}
	return g.Sentinels[i].PID
}

// Sentinel's TILT mode (Sentinel documentation, "TILT mode"): a Sentinel
// whose timer ran more than 2 s late enters TILT for 30 s, keeps watching
// but acts on nothing and answers "not down" about the master to its peers.
// Stopping the process with SIGSTOP for 3.5 s makes exactly that happen.
// In group g1 one Sentinel of three is made to TILT: the other two still
// reach the quorum (2) and a majority (2), so a failover can still happen,
// but one more Sentinel lost and none can: failures tolerated 0, and
// IAPRedisSentinelQuorumLost stays silent. In group g2 two of three TILT:
// one Sentinel can say the master is down, fewer than the quorum, and
// IAPRedisSentinelQuorumLost fires while every Sentinel answers.
func TestBinarySentinelTILTTakesASentinelOutOfTheQuorum(t *testing.T) {
	groups := startSentinelGroups(t, "g1", "g2")
	e, prom := startSentinelExporter(t, groups)
	for name := range groups {
		prom.waitSample(t, 60*time.Second, fmt.Sprintf(`master:iap_ha_redis_sentinels_usable:sum{master=%q}`, name), 3)
	}

	g1, g2 := groups["g1"], groups["g2"]
	stalled := []int{sentinelPID(t, g1, 0), sentinelPID(t, g2, 0), sentinelPID(t, g2, 1)}
	for _, pid := range stalled {
		if err := syscall.Kill(pid, syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(3500 * time.Millisecond)
	for _, pid := range stalled {
		if err := syscall.Kill(pid, syscall.SIGCONT); err != nil {
			t.Fatal(err)
		}
	}

	sentinel := func(g *lab.SentinelGroup, i int) string {
		return fmt.Sprintf(`master=%q,sentinel=%q,site=%q`, g.Site, g.Sentinels[i].Addr, g.Site)
	}
	scrapeUntil(t, e, []string{
		`iap_ha_redis_sentinel_tilt{` + sentinel(g1, 0) + `} 1`,
		`iap_ha_redis_sentinel_tilt{` + sentinel(g1, 1) + `} 0`,
		`iap_ha_redis_sentinel_tilt{` + sentinel(g2, 0) + `} 1`,
		`iap_ha_redis_sentinel_tilt{` + sentinel(g2, 1) + `} 1`,
		`iap_ha_redis_sentinel_up{` + sentinel(g1, 0) + `} 1`,
		`iap_ha_redis_sentinel_up{` + sentinel(g2, 0) + `} 1`,
		`iap_ha_redis_sentinel_up{` + sentinel(g2, 1) + `} 1`,
		`iap_ha_component_failures_tolerated{component="redis",name="g1"} 0`,
		`iap_ha_component_failures_tolerated{component="redis",name="g2"} 0`,
	}, nil)

	// Firing with every Sentinel of g2 answering and two of them in TILT:
	// the TILT, not the stall before it, keeps the group from failing over.
	prom.waitSample(t, 25*time.Second, firingWhile("IAPRedisSentinelQuorumLost", `master="g2"`,
		`sum(iap_ha_redis_sentinel_tilt{master="g2"}) == 2`, `sum(iap_ha_redis_sentinel_up{master="g2"}) == 3`), 1)
	// g1 never pages. Pending is allowed: on a loaded machine a scrape can
	// miss one more Sentinel's answer for a moment, which is what the
	// rule's for: is there to absorb.
	prom.neverAlerted(t, 2*time.Minute, "IAPRedisSentinelQuorumLost", `master="g1",alertstate="firing"`)

	// TILT ends by itself after 30 s, and with it g1's loss of margin; g1
	// stays silent throughout.
	scrapeUntil(t, e, []string{
		`iap_ha_redis_sentinel_tilt{` + sentinel(g1, 0) + `} 0`,
		`iap_ha_component_failures_tolerated{component="redis",name="g1"} 1`,
	}, nil)
	prom.neverAlerted(t, 2*time.Minute, "IAPRedisSentinelQuorumLost", `master="g1",alertstate="firing"`)
}

// SENTINEL CKQUORUM (Sentinel documentation) counts the Sentinels this one
// can use: itself and the peers it does not see down. Sentinels find each
// other through the hello messages they publish on the master, which carry
// their announce-ip and announce-port: with announce-port pointing at a
// closed port on every Sentinel, each still answers the exporter and knows
// its two peers, but reaches neither, marks both down and answers NOQUORUM.
// The group cannot fail over: CKQUORUM 0 everywhere, failures tolerated 0,
// IAPRedisSentinelQuorumLost fires.
func TestBinarySentinelsThatCannotSeeEachOtherSayNOQUORUM(t *testing.T) {
	groups := startSentinelGroups(t, "g3")
	g := groups["g3"]
	e, prom := startSentinelExporter(t, groups)
	prom.waitSample(t, 60*time.Second, `master:iap_ha_redis_sentinels_usable:sum{master="g3"}`, 3)

	closed := strings.TrimPrefix(closedAddr(t), "127.0.0.1:")
	for i := range g.Sentinels {
		c := g.Sentinel(i)
		err := c.Process(context.Background(), redis.NewCmd(context.Background(), "sentinel", "config", "set", "announce-port", closed))
		c.Close()
		if err != nil {
			t.Fatalf("SENTINEL CONFIG SET announce-port on %s: %v", g.Sentinels[i].Addr, err)
		}
	}

	var want []string
	for _, s := range g.SentinelAddrs() {
		labels := fmt.Sprintf(`master="g3",sentinel=%q,site="g3"`, s)
		want = append(want,
			`iap_ha_redis_sentinel_up{`+labels+`} 1`,
			`iap_ha_redis_sentinel_ckquorum_ok{`+labels+`} 0`,
			// Each still knows its two peers: nothing was forgotten.
			`iap_ha_redis_sentinel_known_sentinels{`+labels+`} 3`,
		)
	}
	want = append(want, `iap_ha_component_failures_tolerated{component="redis",name="g3"} 0`)
	scrapeUntil(t, e, want, nil)
	prom.waitSample(t, 30*time.Second, firingWhile("IAPRedisSentinelQuorumLost", `master="g3"`,
		`sum(iap_ha_redis_sentinel_up{master="g3"}) == 3`, `sum(iap_ha_redis_sentinel_ckquorum_ok{master="g3"}) == 0`), 1)
}

// An old master cut off from the Sentinels while they fail over keeps
// answering role:master to whoever reaches it: the Sentinels' SLAVEOF, which
// would turn it into a replica when it comes back, never lands. The lab cuts
// it off by denying it SLAVEOF and REPLICAOF (ACL) and stopping it with
// SIGSTOP past down-after-milliseconds, so the Sentinels promote a replica;
// when it runs again it refuses their SLAVEOF. Two data nodes answer
// role:master while the Sentinels agree on one: split brain 1 and
// IAPRedisMultipleMasters fires; IAPRedisSentinelsDisagree does not.
func TestBinaryIsolatedOldMasterBesideTheNewIsSplitBrain(t *testing.T) {
	groups := startSentinelGroups(t, "g4")
	g := groups["g4"]
	e, prom := startSentinelExporter(t, groups)
	prom.waitSample(t, 60*time.Second, `master:iap_ha_redis_sentinels_usable:sum{master="g4"}`, 3)

	old, err := g.Master()
	if err != nil {
		t.Fatal(err)
	}
	c := g.Client(old)
	err = c.Do(context.Background(), "acl", "setuser", "default", "-slaveof", "-replicaof").Err()
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := g.Pause(old); err != nil {
		t.Fatal(err)
	}
	var promoted string
	err = lab.Retry(30*time.Second, 200*time.Millisecond, func() error {
		promoted, err = g.Master()
		if err == nil && promoted == old {
			err = fmt.Errorf("the Sentinels still name %s", old)
		}
		return err
	})
	if resumeErr := g.Resume(old); resumeErr != nil {
		t.Fatal(resumeErr)
	}
	if err != nil {
		t.Fatalf("no failover away from the stopped master: %v", err)
	}

	scrapeUntil(t, e, []string{
		`iap_ha_redis_is_master{master="g4",node="` + old + `",site="g4"} 1`,
		`iap_ha_redis_is_master{master="g4",node="` + promoted + `",site="g4"} 1`,
		`iap_ha_redis_sentinel_distinct_masters{master="g4"} 1`,
		`iap_ha_split_brain{component="redis",name="g4"} 1`,
	}, nil)
	// Firing while two data nodes answer as master; the Sentinels never
	// disagreed long enough to alert: the split is the data nodes', not theirs.
	prom.waitSample(t, 30*time.Second, firingWhile("IAPRedisMultipleMasters", `master="g4"`,
		`sum(iap_ha_redis_is_master{master="g4"}) == 2`), 1)
	prom.neverAlerted(t, 2*time.Minute, "IAPRedisSentinelsDisagree", `master="g4",alertstate="firing"`)
}
