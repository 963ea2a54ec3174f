package topology

import (
	"fmt"
	"maps"
	"os"
	"reflect"
	"slices"
	"sort"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// The scenario corpus (testdata/scenarios.yaml) is a table of compact
// estates and the verdicts the databases' documented behaviour gives them.
// This file only turns its notation into a Snapshot and compares.

type corpus struct {
	Bases     map[string]estateSpec `yaml:"bases"`
	Scenarios []scenario            `yaml:"scenarios"`
}

type estateSpec struct {
	Architecture string                `yaml:"architecture"`
	Sites        map[string]string     `yaml:"sites"` // name → role
	IAP          []string              `yaml:"iap"`
	MongoDB      map[string][]string   `yaml:"mongodb"`
	Redis        map[string]redisSpec  `yaml:"redis"`
	RabbitMQ     map[string]rabbitSpec `yaml:"rabbitmq"`
	Gateways     []string              `yaml:"gateways"`
	Balancers    []string              `yaml:"balancers"`
	// Unread lists components configured but whose probe reported nothing.
	Unread []string `yaml:"unread"`
}

type redisSpec struct {
	Quorum    int      `yaml:"quorum"`
	Sentinels []string `yaml:"sentinels"`
	Nodes     []string `yaml:"nodes"`
}

type rabbitSpec struct {
	Down              bool     `yaml:"down"`
	PartitionHandling string   `yaml:"partition_handling"`
	Mirroring         *bool    `yaml:"mirroring"`
	Nodes             []string `yaml:"nodes"`
	Queues            []string `yaml:"queues"`
}

type scenario struct {
	Name string `yaml:"name"`
	Base string `yaml:"base"`
	// Drop removes whole components of the base (mongodb, redis, rabbitmq).
	Drop       []string `yaml:"drop"`
	estateSpec `yaml:",inline"`
	Want       expectation `yaml:"want"`
}

type expectation struct {
	Tolerated   map[string]int    `yaml:"tolerated"`
	Absent      []string          `yaml:"absent"`
	Sites       map[string]bool   `yaml:"sites"`
	SiteUnknown []string          `yaml:"site_unknown"`
	SiteReason  map[string]string `yaml:"site_reason"`
	Observed    string            `yaml:"observed"`
	Reason      string            `yaml:"reason"`
	Split       []string          `yaml:"split"`
	Unknown     []string          `yaml:"unknown"`
	Devices     map[string]int    `yaml:"devices_without_gateway"`
	// SPOF is the exact set of members ("component/member") whose loss
	// alone stops the estate; MemberReason substrings of members' reasons.
	SPOF         *[]string         `yaml:"spof"`
	MemberReason map[string]string `yaml:"member_reason"`
	// BelowClass counts, per component, the members whose loss alone drops
	// the class below the declared one (exact: a component not named has
	// none); NoClassVerdict says no member has that verdict.
	BelowClass     map[string]int    `yaml:"below_class"`
	NoClassVerdict bool              `yaml:"no_class_verdict"`
	ClassReason    map[string]string `yaml:"class_reason"`
	// Balancers: per balancer "routed_working routed_idle"; Promoted and
	// Disagree list "balancer/server" with the verdict set.
	Balancers map[string]string `yaml:"balancers"`
	Promoted  []string          `yaml:"promoted_unrouted"`
	Disagree  []string          `yaml:"disagree"`
}

func (base estateSpec) with(s scenario) estateSpec {
	e := base
	for _, d := range s.Drop {
		switch d {
		case "mongodb":
			e.MongoDB = nil
		case "redis":
			e.Redis = nil
		case "rabbitmq":
			e.RabbitMQ = nil
		}
	}
	if s.Architecture != "" {
		e.Architecture = s.Architecture
	}
	if s.Sites != nil {
		e.Sites = s.Sites
	}
	if s.IAP != nil {
		e.IAP = s.IAP
	}
	e.MongoDB = merge(e.MongoDB, s.MongoDB)
	e.Redis = merge(e.Redis, s.Redis)
	e.RabbitMQ = merge(e.RabbitMQ, s.RabbitMQ)
	if s.Gateways != nil {
		e.Gateways = s.Gateways
	}
	if s.Balancers != nil {
		e.Balancers = s.Balancers
	}
	e.Unread = s.Unread
	return e
}

func merge[V any](base, over map[string]V) map[string]V {
	out := map[string]V{}
	for k, v := range base {
		out[k] = v
	}
	for k, v := range over {
		out[k] = v
	}
	return out
}

// fields splits "WORD a b=c" into the first word, bare flags and key=value options.
func fields(s string) (head string, flags map[string]bool, opts map[string]string) {
	f := strings.Fields(s)
	flags, opts = map[string]bool{}, map[string]string{}
	for _, w := range f[1:] {
		if k, v, ok := strings.Cut(w, "="); ok {
			opts[k] = v
		} else {
			flags[w] = true
		}
	}
	return f[0], flags, opts
}

func atoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatalf("not a number: %q", s)
	}
	return n
}

func (e estateSpec) build(t *testing.T) (*config.Config, *Snapshot) {
	cfg := &config.Config{Architecture: e.Architecture}
	for _, name := range sortedMapKeys(e.Sites) {
		cfg.Sites = append(cfg.Sites, config.Site{Name: name, Role: e.Sites[name]})
	}
	s := &Snapshot{}
	unread := map[string]bool{}
	for _, u := range e.Unread {
		unread[u] = true
	}

	for _, line := range e.IAP {
		// name site role state flags
		f := strings.Fields(line)
		if len(f) < 4 {
			t.Fatalf("iap %q: want name site role state", line)
		}
		_, flags, opts := fields(strings.Join(f[3:], " "))
		srv := IAPServer{Name: f[0], Site: f[1], DeclaredRole: f[2], Redis: f[1], RabbitMQ: f[1],
			Services: []IAPService{{"mongo", true}, {"redis", true}}, AppsHealthy: True, AdaptersHealthy: True, APIUp: True,
			Adapters: []IAPModule{{Name: "ServiceNow", State: "RUNNING", Connection: "ONLINE", Healthy: true}}}
		switch f[3] {
		case StateActive:
			srv.Up, srv.TaskWorker, srv.JobWorker = true, True, True
		case StateStandby:
			srv.Up, srv.TaskWorker, srv.JobWorker = true, False, False
		case StateUnknown:
			srv.Up = true
		case StateDown:
			srv = IAPServer{Name: f[0], Site: f[1], DeclaredRole: f[2], Redis: f[1], RabbitMQ: f[1]}
		default:
			t.Fatalf("iap %q: unknown state %q", line, f[3])
		}
		if v, ok := opts["redis"]; ok {
			srv.Redis = v
		}
		if v, ok := opts["rabbitmq"]; ok {
			srv.RabbitMQ = v
		}
		for flag := range flags {
			switch flag {
			case "no-credentials":
				srv.APIUp, srv.Applications, srv.Adapters = Unknown, nil, nil
			case "api-down":
				srv.APIUp, srv.Applications, srv.Adapters = False, nil, nil
			case "apps-degraded":
				srv.AppsHealthy = False
			case "adapters-offline":
				srv.AdaptersHealthy = False
				srv.Adapters[0].Connection, srv.Adapters[0].Healthy = "OFFLINE", false
			case "mongo-failing":
				srv.Services[0].Running = false
			default:
				t.Fatalf("iap %q: unknown flag %q", line, flag)
			}
		}
		s.IAP = append(s.IAP, srv)
	}

	for _, name := range sortedMapKeys(e.MongoDB) {
		cfg.MongoDB = append(cfg.MongoDB, config.ReplicaSet{Name: name})
		rs := ReplicaSet{Name: name, Up: true}
		states := map[string]int{"P": MongoPrimary, "S": MongoSecondary, "A": MongoArbiter, "REC": MongoRecovering,
			"STARTUP2": MongoStartup2, "ROLLBACK": MongoRollback, "DOWN": MongoDown}
		for i, line := range e.MongoDB[name] {
			head, flags, opts := fields(line)
			st, ok := states[head]
			if !ok {
				t.Fatalf("mongodb %q: unknown state %q", line, head)
			}
			site := strings.Fields(line)[1]
			if site == "-" {
				site = ""
			}
			delete(flags, strings.Fields(line)[1])
			m := MongoMember{ID: i, Name: fmt.Sprintf("%s-%d:27017", name, i), Site: site, State: st,
				Healthy: st != MongoDown, Votes: 1, Priority: 1}
			if st == MongoArbiter {
				m.ArbiterOnly, m.Priority = true, 0
			}
			if v, ok := opts["prio"]; ok {
				m.Priority = float64(atoi(t, v))
			}
			if v, ok := opts["votes"]; ok {
				m.Votes = atoi(t, v)
			}
			if flags["hidden"] {
				m.Hidden = true
			}
			if st == MongoPrimary {
				rs.Primaries++
			}
			rs.Members = append(rs.Members, m)
		}
		s.MongoDB = append(s.MongoDB, rs)
	}
	if unread["mongodb"] {
		s.MongoDB = nil
	}

	for _, name := range sortedMapKeys(e.Redis) {
		spec := e.Redis[name]
		cfg.Redis = append(cfg.Redis, config.SentinelGroup{Name: name})
		g := SentinelGroup{Name: name, MasterName: "itentialmaster", Quorum: 2}
		if spec.Quorum > 0 {
			g.Quorum = spec.Quorum
		}
		master := ""
		for i, line := range spec.Nodes {
			head, flags, opts := fields(line)
			n := RedisNode{Address: fmt.Sprintf("%s-r%d:6379", name, i), Site: strings.Fields(line)[1], Up: !flags["down"], ReplicaPriority: 100}
			switch head {
			case "M":
				n.Role = RedisMaster
				if master == "" {
					master = n.Address
				}
			case "R":
				n.Role, n.MasterLinkUp = RedisReplica, !flags["nolink"] && n.Up
			default:
				t.Fatalf("redis node %q: M or R", line)
			}
			if v, ok := opts["prio"]; ok {
				n.ReplicaPriority = atoi(t, v)
			}
			g.Nodes = append(g.Nodes, n)
		}
		for i, line := range spec.Sentinels {
			_, flags, opts := fields("x " + line)
			site := strings.Fields(line)[0]
			v := SentinelView{Address: fmt.Sprintf("%s-s%d:26379", name, i), Site: site}
			if !flags["down"] {
				v.Up, v.MasterAddress, v.Quorum, v.KnownSentinels = true, master, g.Quorum, len(spec.Sentinels)
				v.TILT, v.CKQuorumOK = flags["tilt"], !flags["noquorum"]
				if m, ok := opts["master"]; ok {
					v.MasterAddress = m
				}
				if k, ok := opts["known"]; ok {
					v.KnownSentinels = atoi(t, k)
				}
			}
			g.Sentinels = append(g.Sentinels, v)
		}
		s.Redis = append(s.Redis, g)
	}
	if unread["redis"] {
		s.Redis = nil
	}

	for _, name := range sortedMapKeys(e.RabbitMQ) {
		spec := e.RabbitMQ[name]
		cfg.RabbitMQ = append(cfg.RabbitMQ, config.RabbitCluster{Name: name})
		c := RabbitCluster{Name: name, Up: !spec.Down, PartitionHandling: spec.PartitionHandling, MirroringSupported: true}
		if spec.Mirroring != nil {
			c.MirroringSupported = *spec.Mirroring
		}
		for i, line := range spec.Nodes {
			_, flags, _ := fields("x " + line)
			n := RabbitNode{Name: fmt.Sprintf("rabbit@%s-%d", name, i), Site: strings.Fields(line)[0], Running: !flags["stopped"]}
			if flags["partitioned"] {
				n.Partitions = []string{"rabbit@elsewhere"}
			}
			c.Nodes = append(c.Nodes, n)
		}
		for _, line := range spec.Queues {
			head, _, opts := fields(line)
			q := QueueGroup{VHost: "/", Type: head}
			for k, v := range opts {
				switch k {
				case "count":
					q.Count = atoi(t, v)
				case "unsync":
					q.Unsynchronised = atoi(t, v)
				case "noquorum":
					q.WithoutQuorum = atoi(t, v)
				case "spare":
					q.QuorumSpare = atoi(t, v)
				default:
					t.Fatalf("queue %q: unknown option %q", line, k)
				}
			}
			c.Queues = append(c.Queues, q)
		}
		if len(c.Queues) == 0 {
			c.Queues = []QueueGroup{{VHost: "/", Type: "classic", Count: 10}}
		}
		if !c.Up {
			c = RabbitCluster{Name: name}
		}
		s.RabbitMQ = append(s.RabbitMQ, c)
	}

	for _, line := range e.Gateways {
		f := strings.Fields(line)
		_, _, opts := fields(strings.Join(f[1:], " "))
		g := Gateway{Name: f[0], Site: f[1], Up: true, Devices: map[string]int{}}
		for k, v := range opts {
			g.Devices[k] = atoi(t, v)
		}
		s.Gateways = append(s.Gateways, g)
	}
	for _, line := range e.Balancers {
		// name site kind [down] server=STATUS[:backup][:routed] …
		f := strings.Fields(line)
		if len(f) < 3 {
			t.Fatalf("balancer %q: want name site kind", line)
		}
		cfg.LoadBalancers = append(cfg.LoadBalancers, config.LoadBalancer{Name: f[0], Site: f[1], Kind: f[2]})
		lb := LoadBalancer{Name: f[0], Site: f[1], Kind: f[2], Up: true}
		for _, w := range f[3:] {
			if w == "down" {
				lb = LoadBalancer{Name: f[0], Site: f[1], Kind: f[2]}
				break
			}
			name, spec, ok := strings.Cut(w, "=")
			if !ok {
				t.Fatalf("balancer %q: %q is not server=STATUS", line, w)
			}
			parts := strings.Split(spec, ":")
			bs := BalancerServer{Name: name, IAPServer: name, Status: parts[0]}
			switch parts[0] {
			case "UP", "DRAIN", "NOLB":
				bs.Reaches = True
			case "DOWN":
				bs.Reaches = False
			case "MAINT":
			case "answered": // vip: the server named itself in an answer
				bs = BalancerServer{IAPServer: name, Reaches: True, Routed: true, Answers: 1}
			default:
				t.Fatalf("balancer %q: unknown status %q", line, parts[0])
			}
			for _, flag := range parts[1:] {
				switch flag {
				case "backup":
					bs.Backup = true
				case "routed":
					bs.Routed = true
				case "unmapped":
					bs.IAPServer = ""
				default:
					t.Fatalf("balancer %q: unknown flag %q", line, flag)
				}
			}
			lb.Servers = append(lb.Servers, bs)
		}
		s.LoadBalancers = append(s.LoadBalancers, lb)
	}
	if unread["balancers"] {
		s.LoadBalancers = nil
	}
	// Servers depend on no RabbitMQ where none is configured.
	for i := range s.IAP {
		if _, ok := e.RabbitMQ[s.IAP[i].RabbitMQ]; !ok {
			s.IAP[i].RabbitMQ = ""
		}
		if _, ok := e.Redis[s.IAP[i].Redis]; !ok {
			s.IAP[i].Redis = ""
		}
	}
	for _, srv := range s.IAP {
		cfg.IAP.Servers = append(cfg.IAP.Servers, config.IAPServer{Name: srv.Name, Site: srv.Site, Role: srv.DeclaredRole})
	}
	if unread["iap"] {
		s.IAP = nil
	}
	return cfg, s
}

func sortedMapKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestScenarioCorpus(t *testing.T) {
	raw, err := os.ReadFile("testdata/scenarios.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var c corpus
	dec := yaml.NewDecoder(strings.NewReader(string(raw)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, sc := range c.Scenarios {
		if names[sc.Name] {
			t.Errorf("scenario %q appears twice", sc.Name)
		}
		names[sc.Name] = true
		t.Run(sc.Name, func(t *testing.T) {
			spec := sc.estateSpec
			if sc.Base != "" {
				base, ok := c.Bases[sc.Base]
				if !ok {
					t.Fatalf("no base %q", sc.Base)
				}
				spec = base.with(sc)
			}
			cfg, s := spec.build(t)
			check(t, cfg, Evaluate(cfg, s), sc.Want)
		})
	}
	if len(c.Scenarios) < 55 {
		t.Errorf("the corpus has %d scenarios; the issue asks for every item and 40 more", len(c.Scenarios))
	}
}

func check(t *testing.T, cfg *config.Config, v *Verdict, w expectation) {
	t.Helper()
	got := map[string]int{}
	for _, cv := range v.Components {
		got[cv.Component+"/"+cv.Name] = cv.FailuresTolerated
	}
	for k, n := range w.Tolerated {
		if g, ok := got[k]; !ok || g != n {
			t.Errorf("failures tolerated %s = %d (present %v), want %d; components %+v", k, g, ok, n, v.Components)
		}
	}
	for _, k := range w.Absent {
		if _, ok := got[k]; ok {
			t.Errorf("failures tolerated %s = %d, want no verdict (unknown)", k, got[k])
		}
	}
	gotSites := map[string]bool{}
	for _, sv := range v.Sites {
		gotSites[sv.Site] = sv.Survivable
		if want, ok := w.SiteReason[sv.Site]; ok && !strings.Contains(sv.Reason, want) {
			t.Errorf("site %s reason %q does not contain %q", sv.Site, sv.Reason, want)
		}
	}
	for site, want := range w.Sites {
		if g, ok := gotSites[site]; !ok || g != want {
			t.Errorf("site %s survivable = %v (known %v), want %v; sites %+v, unknown %q", site, g, ok, want, v.Sites, v.Unknown)
		}
	}
	for _, site := range w.SiteUnknown {
		if _, ok := gotSites[site]; ok {
			t.Errorf("site %s has a verdict %+v, want none (unknown)", site, v.Sites)
		}
	}
	if w.Observed != "" && v.Architecture.Observed != w.Observed {
		t.Errorf("observed class = %s (%s), want %s", v.Architecture.Observed, v.Architecture.Reason, w.Observed)
	}
	if !strings.Contains(v.Architecture.Reason, w.Reason) {
		t.Errorf("class reason %q does not contain %q", v.Architecture.Reason, w.Reason)
	}
	if want := cfg.Architecture; want != "" && v.Architecture.Expected != want {
		t.Errorf("expected class = %s, want %s", v.Architecture.Expected, want)
	}
	var split []string
	for _, sb := range v.SplitBrain {
		if sb.Active {
			split = append(split, sb.Component+"/"+sb.Name)
			if sb.Reason == "" {
				t.Errorf("split brain %s/%s without a reason", sb.Component, sb.Name)
			}
		}
	}
	sort.Strings(split)
	sort.Strings(w.Split)
	if !reflect.DeepEqual(split, w.Split) && (len(split) > 0 || len(w.Split) > 0) {
		t.Errorf("split brain = %v, want %v", split, w.Split)
	}
	for _, u := range w.Unknown {
		if !strings.Contains(strings.Join(v.Unknown, "\n"), u) {
			t.Errorf("unknown = %q, want it to say %q", v.Unknown, u)
		}
	}
	checkMembers(t, v, w)
	if w.Balancers != nil {
		got := map[string]string{}
		for _, b := range v.Balancers {
			if b.Up {
				got[b.Balancer] = fmt.Sprintf("%d %d", b.RoutedWorking, b.RoutedIdle)
			}
		}
		if !reflect.DeepEqual(got, w.Balancers) {
			t.Errorf("balancers (routed_working routed_idle) = %v, want %v", got, w.Balancers)
		}
	}
	var promoted, disagree []string
	for _, b := range v.Balancers {
		for _, sv := range b.Servers {
			if sv.PromotedUnrouted {
				promoted = append(promoted, b.Balancer+"/"+sv.Server)
			}
			if sv.Disagrees == True {
				disagree = append(disagree, b.Balancer+"/"+sv.Server)
				if sv.Reason == "" {
					t.Errorf("disagreement %s/%s without a reason", b.Balancer, sv.Server)
				}
			}
		}
	}
	if !reflect.DeepEqual(promoted, w.Promoted) && (len(promoted) > 0 || len(w.Promoted) > 0) {
		t.Errorf("promoted standbys without traffic = %v, want %v", promoted, w.Promoted)
	}
	if !reflect.DeepEqual(disagree, w.Disagree) && (len(disagree) > 0 || len(w.Disagree) > 0) {
		t.Errorf("vantage disagreements = %v, want %v", disagree, w.Disagree)
	}
	if w.Devices != nil {
		devices := map[string]int{}
		for _, sv := range v.Sites {
			devices[sv.Site] = sv.DevicesWithoutGateway
		}
		if !reflect.DeepEqual(devices, w.Devices) {
			t.Errorf("devices without gateway = %v, want %v", devices, w.Devices)
		}
	}
}

func checkMembers(t *testing.T, v *Verdict, w expectation) {
	t.Helper()
	members := map[string]MemberVerdict{}
	var spof []string
	below := map[string]int{}
	for _, mv := range v.Members {
		key := mv.Component + "/" + mv.Name
		members[key] = mv
		if mv.Stops == True {
			spof = append(spof, key)
			if mv.Reason == "" {
				t.Errorf("%s stops the estate without a reason", key)
			}
		}
		if mv.BelowClass == True {
			below[mv.Component]++
		}
		if w.NoClassVerdict && mv.BelowClass != Unknown {
			t.Errorf("%s has a class verdict %v (%s), want none", key, mv.BelowClass, mv.ClassReason)
		}
	}
	if w.SPOF != nil {
		want := slices.Clone(*w.SPOF)
		sort.Strings(spof)
		sort.Strings(want)
		if !slices.Equal(spof, want) {
			t.Errorf("single points of failure = %q, want %q", spof, want)
		}
	}
	for key, want := range w.MemberReason {
		if mv, ok := members[key]; !ok || !strings.Contains(mv.Reason, want) {
			t.Errorf("%s reason %q (present %v) does not contain %q", key, mv.Reason, ok, want)
		}
	}
	if w.BelowClass != nil && !maps.Equal(below, w.BelowClass) {
		t.Errorf("members whose loss drops the class, per component = %v, want %v", below, w.BelowClass)
	}
	for key, want := range w.ClassReason {
		if mv, ok := members[key]; !ok || !strings.Contains(mv.ClassReason, want) {
			t.Errorf("%s class reason %q (present %v) does not contain %q", key, mv.ClassReason, ok, want)
		}
	}
}
