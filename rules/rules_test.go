package rules

import (
	"os"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/iapha/iap_ha_exporter/fixtures/catalog"
)

// scrapeLabels are added by Prometheus to every series it scrapes.
var scrapeLabels = []string{"job", "instance"}

// scrapeSeries are the series Prometheus records of each scrape itself
// (up: 1 if the target answered), with the labels they have.
var scrapeSeries = map[string][]string{"up": scrapeLabels}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []struct {
			Record, Alert, Expr string
		}
	}
}

// TestRulesUseRegisteredMetrics parses every rule expression and checks that
// each series it selects is a metric the exporter registers, with label
// names it has, or a recording rule of the pack.
func TestRulesUseRegisteredMetrics(t *testing.T) {
	registered := registeredMetrics(t)
	recorded := map[string]bool{}
	var exprs []struct{ rule, expr string }
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					recorded[r.Record] = true
				}
				exprs = append(exprs, struct{ rule, expr string }{r.Record + r.Alert, r.Expr})
			}
		}
	}
	if len(exprs) < 40 {
		t.Fatalf("only %d rules read from %v", len(exprs), ruleFiles)
	}

	p := parser.NewParser(parser.Options{})
	for _, e := range exprs {
		expr, err := p.ParseExpr(e.expr)
		if err != nil {
			t.Errorf("%s: %v", e.rule, err)
			continue
		}
		parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			labels, ok := registered[vs.Name]
			if !ok {
				labels, ok = scrapeSeries[vs.Name]
			}
			switch {
			case recorded[vs.Name]:
			case !ok:
				t.Errorf("%s uses %s, which neither the exporter registers, nor a recording rule records, nor Prometheus records of a scrape", e.rule, vs.Name)
			default:
				for _, m := range vs.LabelMatchers {
					if m.Name != "__name__" && !slices.Contains(labels, m.Name) && !slices.Contains(scrapeLabels, m.Name) {
						t.Errorf("%s selects %s by label %q; it has only %v", e.rule, vs.Name, m.Name, labels)
					}
				}
			}
			return nil
		})
	}
}

// registeredMetrics maps every iap_ha_ metric the binary can serve to its
// label names (fixtures/catalog reads them from the descriptors).
func registeredMetrics(t *testing.T) map[string][]string {
	t.Helper()
	metrics, err := catalog.Metrics("../examples/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	names := make([]string, 0, len(metrics))
	for n := range metrics {
		names = append(names, n)
	}
	sort.Strings(names)
	t.Logf("%d metrics registered: %v", len(names), names)
	return metrics
}

// catalogue is the alert catalogue of the design: the names are a contract
// that Alertmanager routes, dashboards and the remediation receiver rely on.
// Added since: IAPServerAPIDown, IAPTaskWorkerConfigMismatch,
// IAPMongoStatusUnreadable, IAPMongoFrequentElections, IAPRedisMultipleMasters,
// IAPSinglePointOfFailure, and the load balancer's five (issue 21).
var catalogue = []string{
	"IAPServerDown", "IAPNoActiveServer", "IAPServerAPIDown", "IAPActiveServerDownStandbyAvailable",
	"IAPStandbyNotReady", "IAPStandbyWorkingTasks", "IAPTaskWorkerConfigMismatch", "IAPDependencyDown", "IAPAdapterDown", "IAPApplicationDown",
	"IAPMongoNoPrimary", "IAPMongoStatusUnreadable", "IAPMongoFrequentElections", "IAPMongoMultiplePrimaries", "IAPMongoMemberUnhealthy", "IAPMongoReplicationLagHigh", "IAPMongoNoFailureTolerance",
	"IAPRedisSentinelQuorumLost", "IAPRedisSentinelsDisagree", "IAPRedisNoMaster", "IAPRedisMultipleMasters", "IAPRedisReplicaDown", "IAPRedisNoFailureTolerance",
	"IAPRabbitmqNodeDown", "IAPRabbitmqPartition", "IAPRabbitmqAlarm", "IAPRabbitmqUnsynchronisedMirrors", "IAPRabbitmqQuorumQueueAtRisk", "IAPRabbitmqFederationLinkDown",
	"IAPGatewayDown", "IAPGatewayNearCapacity", "IAPGatewayAdapterDisagrees",
	"IAPLoadBalancerDown", "IAPLoadBalancerRoutesToIdleServer", "IAPLoadBalancerRoutesToNoWorkingServer",
	"IAPPromotedStandbyWithoutTraffic", "IAPLoadBalancerVantageDisagreement",
	"IAPHAArchitectureDegraded", "IAPSiteLossNotSurvivable", "IAPSinglePointOfFailure", "IAPHAExporterCollectorFailing", "IAPRemediationFailed", "IAPRemediationBlocked",
	"IAPHAExporterDown", "IAPHAWatchdog",
}

const runbookURL = "https://github.com/iapha/iap_ha_exporter/blob/main/rules/runbook.md#"

// TestAlertsFollowCatalogue checks every catalogue alert exists, and that
// every alert has a severity, the three annotations, a description that uses
// $labels and $value, and a runbook section its runbook_url points at. Only
// the alert the remediation receiver acts on carries the remediate label.
func TestAlertsFollowCatalogue(t *testing.T) {
	b, err := os.ReadFile("iap_ha.alerts.yml")
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Alert, Expr string
				Labels      map[string]string
				Annotations map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("runbook.md")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			seen[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" && s != "info" {
				t.Errorf("%s: severity %q", r.Alert, s)
			}
			if r.Annotations["summary"] == "" {
				t.Errorf("%s: no summary", r.Alert)
			}
			// absent() and vector() return one sample without labels to name.
			labelless := strings.HasPrefix(r.Expr, "absent(") || strings.HasPrefix(r.Expr, "vector(")
			if d := r.Annotations["description"]; !strings.Contains(d, "$value") || !labelless && !strings.Contains(d, "$labels.") {
				t.Errorf("%s: the description does not use both $labels and $value: %q", r.Alert, d)
			}
			if got, want := r.Annotations["runbook_url"], runbookURL+strings.ToLower(r.Alert); got != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, got, want)
			}
			if !strings.Contains(string(runbook), "\n### "+r.Alert+"\n") {
				t.Errorf("%s: no section \"### %s\" in runbook.md", r.Alert, r.Alert)
			}
			wantRemediate := ""
			if r.Alert == "IAPActiveServerDownStandbyAvailable" {
				wantRemediate = "promote-standby"
			}
			if got := r.Labels["remediate"]; got != wantRemediate {
				t.Errorf("%s: remediate label %q, want %q", r.Alert, got, wantRemediate)
			}
		}
	}
	for _, name := range catalogue {
		if !seen[name] {
			t.Errorf("catalogue alert %s is not in iap_ha.alerts.yml", name)
		}
	}
}

// TestRulesKeepEstatesApart checks that every rule keeps the estate label
// that the multi-target job (examples/prometheus-estates.yml) adds to each
// estate's series, which share job and instance there: an aggregation by
// named labels or a join on named labels without estate would merge
// estates, or match one estate's series with another's. Without the label
// (one estate per exporter) `estate` matches the empty value on both sides,
// so the rules are the same as before.
func TestRulesKeepEstatesApart(t *testing.T) {
	p := parser.NewParser(parser.Options{})
	checked := 0
	for _, f := range ruleFiles {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var rf ruleFile
		if err := yaml.Unmarshal(b, &rf); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, g := range rf.Groups {
			for _, r := range g.Rules {
				expr, err := p.ParseExpr(r.Expr)
				if err != nil {
					t.Errorf("%s: %v", r.Record+r.Alert, err)
					continue
				}
				parser.Inspect(expr, func(node parser.Node, _ []parser.Node) error {
					switch n := node.(type) {
					case *parser.AggregateExpr:
						if n.Without && slices.Contains(n.Grouping, "estate") {
							t.Errorf("%s: %s drops the estate", r.Record+r.Alert, n)
						}
						if !n.Without && !slices.Contains(n.Grouping, "estate") {
							t.Errorf("%s: %s merges the estates (by without estate)", r.Record+r.Alert, n)
						}
						checked++
					case *parser.BinaryExpr:
						if m := n.VectorMatching; m != nil && m.On && !slices.Contains(m.MatchingLabels, "estate") {
							t.Errorf("%s: %s matches one estate's series with another's (on without estate)", r.Record+r.Alert, n)
						}
						if m := n.VectorMatching; m != nil && !m.On && slices.Contains(m.MatchingLabels, "estate") {
							t.Errorf("%s: %s ignores the estate", r.Record+r.Alert, n)
						}
						checked++
					}
					return nil
				})
			}
		}
	}
	if checked < 30 {
		t.Fatalf("only %d aggregations and joins checked", checked)
	}
}
