package dashboards

import (
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
	"go.yaml.in/yaml/v3"

	"github.com/iapha/iap_ha_exporter/fixtures/catalog"
)

// Grafana's range variables are substituted with durations no one writes by
// hand, so a rule can tell $__rate_interval from a hard-coded window.
var rangeVariables = map[string]time.Duration{
	"__rate_interval": 7*time.Minute + 13*time.Second,
	"__interval":      2*time.Minute + 17*time.Second,
	"__range":         5*time.Hour + 3*time.Minute + 11*time.Second,
}

// variableRE matches Grafana's variable syntaxes: $var, ${var}, ${var:format}, [[var]].
var variableRE = regexp.MustCompile(`\$(\w+)|\$\{(\w+)(?::\w+)?\}|\[\[(\w+)\]\]`)

// parsePromQL substitutes Grafana's variables the way Grafana would (a range
// variable by a duration, a dashboard variable by a plain value) and parses
// the result. A variable the dashboard does not define is an error, though
// Grafana would leave it as it is and the query would match nothing.
func parsePromQL(expr string, defined map[string]bool) (parser.Expr, error) {
	var undefined []string
	expanded := variableRE.ReplaceAllStringFunc(expr, func(v string) string {
		m := variableRE.FindStringSubmatch(v)
		name := m[1] + m[2] + m[3]
		if d, ok := rangeVariables[name]; ok {
			return model.Duration(d).String()
		}
		if _, err := strconv.Atoi(name); err == nil {
			return v // a capture group of label_replace: Grafana leaves it too
		}
		if !defined[name] {
			undefined = append(undefined, name)
		}
		return "value"
	})
	if len(undefined) > 0 {
		return nil, fmt.Errorf("undefined variables %v", undefined)
	}
	return parser.NewParser(parser.Options{}).ParseExpr(expanded)
}

// inspect calls f for every node of expr with the path from the root.
func inspect(expr parser.Expr, f func(node parser.Node, path []parser.Node) error) error {
	var err error
	parser.Inspect(expr, func(node parser.Node, path []parser.Node) error {
		if node == nil || err != nil {
			return nil
		}
		err = f(node, path)
		return nil
	})
	return err
}

// selectedMetrics names the metrics expr selects.
func selectedMetrics(expr parser.Expr) []string {
	var names []string
	_ = inspect(expr, func(node parser.Node, _ []parser.Node) error {
		if vs, ok := node.(*parser.VectorSelector); ok {
			names = append(names, metricName(vs))
		}
		return nil
	})
	return names
}

func metricName(vs *parser.VectorSelector) string {
	if vs.Name != "" {
		return vs.Name
	}
	for _, m := range vs.LabelMatchers {
		if m.Name == model.MetricNameLabel && m.Type == labels.MatchEqual {
			return m.Value
		}
	}
	return ""
}

// forEachQuery parses every query of d and hands the parsed ones to f.
func forEachQuery(d *lintDashboard, f func(q lintQuery, expr parser.Expr) []string) []string {
	var problems []string
	for _, q := range d.queries() {
		expr, err := parsePromQL(q.expr, d.variables())
		if err != nil {
			continue // target-promql-rule reports it
		}
		problems = append(problems, f(q, expr)...)
	}
	return problems
}

func targetPromQL(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	for _, q := range d.queries() {
		if _, err := parsePromQL(q.expr, d.variables()); err != nil {
			problems = append(problems, fmt.Sprintf("%s: %q: %v", q.where, q.expr, err))
		}
	}
	return problems
}

// targetRateInterval checks that rate and irate take $__rate_interval, and
// that no other window is hard-coded: a fixed window is wrong for someone's
// scrape interval. $__range suits increase and changes over the time range.
func targetRateInterval(d *lintDashboard, _ *knownMetrics) []string {
	return forEachQuery(d, func(q lintQuery, expr parser.Expr) []string {
		var problems []string
		_ = inspect(expr, func(node parser.Node, path []parser.Node) error {
			var window time.Duration
			switch n := node.(type) {
			case *parser.MatrixSelector:
				window = n.Range
			case *parser.SubqueryExpr:
				window = n.Range
			default:
				return nil
			}
			if call, ok := parent(path).(*parser.Call); ok && (call.Func.Name == "rate" || call.Func.Name == "irate") {
				if window != rangeVariables["__rate_interval"] {
					problems = append(problems, fmt.Sprintf("%s: %s without $__rate_interval", q.where, call.Func.Name))
				}
				return nil
			}
			if window != rangeVariables["__rate_interval"] && window != rangeVariables["__range"] {
				problems = append(problems, fmt.Sprintf("%s: hard-coded window %s", q.where, model.Duration(window).String()))
			}
			return nil
		})
		return problems
	})
}

// targetCounterAgg checks that counters are read through rate, irate or
// increase: a raw counter resets with the process and means nothing.
func targetCounterAgg(d *lintDashboard, _ *knownMetrics) []string {
	return forEachQuery(d, func(q lintQuery, expr parser.Expr) []string {
		var problems []string
		_ = inspect(expr, func(node parser.Node, path []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok || !strings.HasSuffix(metricName(vs), "_total") {
				return nil
			}
			if len(path) >= 2 {
				if call, ok := path[len(path)-2].(*parser.Call); ok {
					switch call.Func.Name {
					case "rate", "irate", "increase":
						return nil
					}
				}
			}
			problems = append(problems, fmt.Sprintf("%s: counter %s outside rate, irate or increase", q.where, metricName(vs)))
			return nil
		})
		return problems
	})
}

// targetMetricsExist checks that every metric a query selects is one the
// exporter registers or a recording rule records, and that its label
// matchers name labels the metric has. ALERTS is there when the rule pack has
// alerts; its alertname matchers must match one.
func targetMetricsExist(d *lintDashboard, known *knownMetrics) []string {
	return forEachQuery(d, func(q lintQuery, expr parser.Expr) []string {
		var problems []string
		_ = inspect(expr, func(node parser.Node, _ []parser.Node) error {
			vs, ok := node.(*parser.VectorSelector)
			if !ok {
				return nil
			}
			name := metricName(vs)
			if name == "ALERTS" {
				problems = append(problems, known.checkAlerts(q.where, vs)...)
				return nil
			}
			labelSet, exists := known.labels[name]
			if !exists {
				problems = append(problems, fmt.Sprintf("%s: metric %q is neither registered nor recorded", q.where, name))
				return nil
			}
			for _, m := range vs.LabelMatchers {
				if labelSet != nil && m.Name != model.MetricNameLabel && !labelSet[m.Name] {
					problems = append(problems, fmt.Sprintf("%s: %s has no label %s", q.where, name, m.Name))
				}
			}
			return nil
		})
		return problems
	})
}

// legendLabelRE finds the labels a legend format names: {{site}}, {{ site }}.
var legendLabelRE = regexp.MustCompile(`\{\{\s*(\w+)\s*\}\}`)

// targetLegendLabels checks that a legend names only labels the query's
// series carry: a label aggregated away shows as an empty legend.
func targetLegendLabels(d *lintDashboard, known *knownMetrics) []string {
	var problems []string
	for _, p := range d.panels() {
		for _, t := range p.Targets {
			expr, err := parsePromQL(t.Expr, d.variables())
			if err != nil {
				continue // target-promql-rule reports it
			}
			carried, ok := known.resultLabels(expr)
			if !ok {
				continue
			}
			for _, m := range legendLabelRE.FindAllStringSubmatch(t.LegendFormat, -1) {
				if !carried[m[1]] {
					problems = append(problems, fmt.Sprintf("panel %q target %s: legend names %s, which the series do not carry", p.Title, t.RefID, m[1]))
				}
			}
		}
	}
	return problems
}

// resultLabels infers the labels of the series expr returns from the labels
// of the metrics it selects, following PromQL's rules for aggregations,
// functions and vector matching. ok is false where they cannot be known.
func (k *knownMetrics) resultLabels(node parser.Node) (carried map[string]bool, ok bool) {
	switch n := node.(type) {
	case *parser.VectorSelector:
		set := k.labels[metricName(n)]
		return set, set != nil
	case *parser.MatrixSelector:
		return k.resultLabels(n.VectorSelector)
	case *parser.SubqueryExpr:
		return k.resultLabels(n.Expr)
	case *parser.ParenExpr:
		return k.resultLabels(n.Expr)
	case *parser.UnaryExpr:
		return k.resultLabels(n.Expr)
	case *parser.StepInvariantExpr:
		return k.resultLabels(n.Expr)
	case *parser.NumberLiteral, *parser.StringLiteral:
		return map[string]bool{}, true
	case *parser.Call:
		if n.Func.Name == "label_replace" || n.Func.Name == "label_join" {
			in, ok := k.resultLabels(n.Args[0])
			return with(in, n.Args[1].(*parser.StringLiteral).Val), ok
		}
		for _, a := range n.Args {
			if t := a.Type(); t == parser.ValueTypeVector || t == parser.ValueTypeMatrix {
				return k.resultLabels(a)
			}
		}
		return map[string]bool{}, true // vector(1), time()
	case *parser.AggregateExpr:
		in, ok := k.resultLabels(n.Expr)
		switch n.Op {
		case parser.TOPK, parser.BOTTOMK, parser.LIMITK, parser.LIMIT_RATIO:
			return in, ok
		}
		var out map[string]bool
		if n.Without {
			out = without(in, n.Grouping)
		} else {
			out = map[string]bool{}
			for _, l := range n.Grouping {
				out[l] = in[l] || !ok
			}
		}
		if n.Op == parser.COUNT_VALUES {
			out = with(out, n.Param.(*parser.StringLiteral).Val)
		}
		return out, ok
	case *parser.BinaryExpr:
		return k.binaryLabels(n)
	}
	return nil, false
}

func (k *knownMetrics) binaryLabels(n *parser.BinaryExpr) (map[string]bool, bool) {
	lhs, lok := k.resultLabels(n.LHS)
	rhs, rok := k.resultLabels(n.RHS)
	switch {
	case n.LHS.Type() != parser.ValueTypeVector:
		return rhs, rok
	case n.RHS.Type() != parser.ValueTypeVector:
		return lhs, lok
	}
	m := n.VectorMatching
	switch {
	case n.Op == parser.LOR:
		out := maps.Clone(lhs)
		maps.Copy(out, rhs)
		return out, lok && rok
	case n.Op == parser.LAND || n.Op == parser.LUNLESS:
		return lhs, lok
	case m.Card == parser.CardManyToOne:
		return with(lhs, m.Include...), lok && rok
	case m.Card == parser.CardOneToMany:
		return with(rhs, m.Include...), lok && rok
	case n.Op.IsComparisonOperator() && !n.ReturnBool:
		return lhs, lok // a filter returns the left-hand series as they are
	case m.On:
		out := map[string]bool{}
		for _, l := range m.MatchingLabels {
			out[l] = lhs[l]
		}
		return out, lok
	default:
		return without(lhs, m.MatchingLabels), lok
	}
}

func with(set map[string]bool, names ...string) map[string]bool {
	out := maps.Clone(set)
	if out == nil {
		out = map[string]bool{}
	}
	for _, n := range names {
		out[n] = true
	}
	return out
}

func without(set map[string]bool, names []string) map[string]bool {
	out := maps.Clone(set)
	for _, n := range names {
		delete(out, n)
	}
	return out
}

func parent(path []parser.Node) parser.Node {
	if len(path) == 0 {
		return nil
	}
	return path[len(path)-1]
}

// knownMetrics are the metrics the dashboards may use.
type knownMetrics struct {
	// labels has every metric name; its label set is nil where the labels
	// are not known (recorded series).
	labels map[string]map[string]bool
	// alerts names the rule pack's alerts.
	alerts map[string]bool
}

// targetLabels are added by Prometheus to every scraped series (estate by
// the multi-target job's relabelling, absent with one estate per exporter).
var targetLabels = []string{"job", "instance", "estate"}

func (k *knownMetrics) addRegistered(name string, labelNames []string) {
	set := map[string]bool{}
	for _, l := range append(labelNames, targetLabels...) {
		set[l] = true
	}
	k.labels[name] = set
}

func (k *knownMetrics) checkAlerts(where string, vs *parser.VectorSelector) []string {
	if len(k.alerts) == 0 {
		return []string{where + ": ALERTS without alerting rules"}
	}
	var problems []string
	for _, m := range vs.LabelMatchers {
		if m.Name != "alertname" {
			continue
		}
		matched := false
		for a := range k.alerts {
			matched = matched || m.Matches(a)
		}
		if !matched {
			problems = append(problems, fmt.Sprintf("%s: no alert of the rule pack matches %s", where, m))
		}
	}
	return problems
}

// loadKnownMetrics lists what the exporter registers with the HA-6 example
// configuration (one target of every kind; fixtures/catalog reads them from
// the descriptors), then what the rule pack records and alerts on.
func loadKnownMetrics(t *testing.T) *knownMetrics {
	t.Helper()
	known := &knownMetrics{labels: map[string]map[string]bool{}, alerts: map[string]bool{}}
	registered, err := catalog.Metrics("../examples/ha6.yml")
	if err != nil {
		t.Fatal(err)
	}
	for name, labels := range registered {
		known.addRegistered(name, labels)
	}
	if len(known.labels) < 50 {
		t.Fatalf("only %d metrics registered; the collectors did not build", len(known.labels))
	}

	files, err := filepath.Glob("../rules/*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files in ../rules (%v)", err)
	}
	for _, f := range files {
		records, alerts := readRules(t, f)
		for _, r := range records {
			// A recorded series carries the labels its expression leaves, as
			// far as they can be inferred (earlier records are known by now).
			known.labels[r.name] = nil
			if expr, err := parser.NewParser(parser.Options{}).ParseExpr(r.expr); err == nil {
				if carried, ok := known.resultLabels(expr); ok {
					known.labels[r.name] = carried
				}
			}
		}
		for _, a := range alerts {
			known.alerts[a] = true
		}
	}
	return known
}

type recordingRule struct{ name, expr string }

// readRules lists the recording rules and the names of the alerts of a
// Prometheus rule file.
func readRules(t *testing.T, file string) (records []recordingRule, alerts []string) {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var rf struct {
		Groups []struct {
			Rules []struct {
				Record string `yaml:"record"`
				Alert  string `yaml:"alert"`
				Expr   string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(b, &rf); err != nil {
		t.Fatalf("%s: %v", file, err)
	}
	for _, g := range rf.Groups {
		for _, r := range g.Rules {
			if r.Record != "" {
				records = append(records, recordingRule{r.Record, r.Expr})
			}
			if r.Alert != "" {
				alerts = append(alerts, r.Alert)
			}
		}
	}
	return records, alerts
}
