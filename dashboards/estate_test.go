package dashboards

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"testing"

	"github.com/prometheus/prometheus/model/labels"
	"github.com/prometheus/prometheus/promql/parser"
)

// estateMark stands for the estate variable in a parsed query, so that the
// check can tell estate=~"$estate" from a matcher on another variable.
const estateMark = "__estate_variable__"

// estateProblems checks that every query of d, panels' targets and the
// other variables' selectors alike, keeps to the estates the estate
// variable picks: every selector matches estate=~"$estate", and every
// aggregation keeps the estate label, so that a panel over several estates
// shows each apart instead of merging them (the multi-target job gives
// every estate's series the same job and instance).
func estateProblems(d *lintDashboard) []string {
	var problems []string
	for _, q := range d.queries() {
		if q.where == "variable estate" {
			continue
		}
		marked := variableRE.ReplaceAllStringFunc(q.expr, func(v string) string {
			if m := variableRE.FindStringSubmatch(v); m[1]+m[2]+m[3] == "estate" {
				return estateMark
			}
			return v
		})
		expr, err := parsePromQL(marked, d.variables())
		if err != nil {
			continue // target-promql-rule reports it
		}
		_ = inspect(expr, func(node parser.Node, _ []parser.Node) error {
			switch n := node.(type) {
			case *parser.VectorSelector:
				if !slices.ContainsFunc(n.LabelMatchers, func(m *labels.Matcher) bool {
					return m.Name == "estate" && m.Type == labels.MatchRegexp && m.Value == estateMark
				}) {
					problems = append(problems, fmt.Sprintf("%s: %s is not filtered by estate=~\"$estate\"", q.where, n))
				}
			case *parser.AggregateExpr:
				if n.Without == slices.Contains(n.Grouping, "estate") {
					problems = append(problems, fmt.Sprintf("%s: %s merges the estates", q.where, strings.ReplaceAll(n.String(), estateMark, "$estate")))
				}
			}
			return nil
		})
	}
	return problems
}

// Every dashboard has the estate variable (several estates or all, All
// being .*, which also matches series without the label) and every query
// keeps to the estates it picks.
func TestEveryQueryFiltersTheEstate(t *testing.T) {
	for name, b := range generated(t) {
		d, err := parseDashboard(b)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		var variables struct {
			Templating struct {
				List []struct {
					Name, Type, AllValue string
					Query                json.RawMessage
					Multi, IncludeAll    bool
				}
			}
		}
		if err := json.Unmarshal(b, &variables); err != nil {
			t.Fatal(err)
		}
		found := false
		for i, v := range variables.Templating.List {
			if v.Name != "estate" {
				continue
			}
			found = true
			query := d.Templating.List[i].query()
			if v.Type != "query" || !v.Multi || !v.IncludeAll || v.AllValue != ".*" || query != "label_values(iap_ha_architecture_info, estate)" {
				t.Errorf("%s: estate variable %+v (query %q), want a multi-value query variable of label_values(iap_ha_architecture_info, estate) with All as .*", name, v, query)
			}
		}
		if !found {
			t.Errorf("%s: no estate variable", name)
		}
		for _, p := range estateProblems(d) {
			t.Errorf("%s: %s", name, p)
		}
		if n := len(d.queries()); n < 5 {
			t.Errorf("%s: only %d queries checked", name, n)
		}
	}
}

// The check finds a selector without the estate filter, one filtered by
// another variable, an aggregation that merges the estates, in panels and
// in variables; and passes one that keeps them.
func TestEstateProblemsFound(t *testing.T) {
	base := generated(t)["iap-ha-overview.json"]
	const filter = `job="$job", estate=~"$estate"`
	for _, tc := range []struct {
		name, expr, variable string
		want                 bool
	}{
		{"as generated", "", "", false},
		{"kept by estate", `sum by (estate, site) (iap_ha_iap_up{` + filter + `})`, "", false},
		{"kept without other labels", `sum without (server) (iap_ha_iap_up{` + filter + `})`, "", false},
		{"no estate filter", `iap_ha_iap_up{job="$job"}`, "", true},
		{"estate filtered by another variable", `iap_ha_iap_up{job="$job", estate=~"$site"}`, "", true},
		{"one side of a join unfiltered", `iap_ha_iap_up{` + filter + `} and on (job, instance, estate) iap_ha_iap_declared_active{job="$job"}`, "", true},
		{"aggregated by other labels", `sum by (site) (iap_ha_iap_up{` + filter + `})`, "", true},
		{"aggregated without estate", `sum without (estate) (iap_ha_iap_up{` + filter + `})`, "", true},
		{"aggregated to one number", `max(iap_ha_iap_up{` + filter + `})`, "", true},
		{"variable without the filter", "", `label_values(iap_ha_site_loss_survivable{job="$job"}, site)`, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d, err := parseDashboard(base)
			if err != nil {
				t.Fatal(err)
			}
			if tc.expr != "" {
				for i := range d.Panels {
					if d.Panels[i].Type == "stat" {
						d.Panels[i].Targets[0].Expr = tc.expr
						break
					}
				}
			}
			if tc.variable != "" {
				for i := range d.Templating.List {
					if d.Templating.List[i].Name == "site" {
						d.Templating.List[i].Query, _ = json.Marshal(tc.variable)
					}
				}
			}
			problems := estateProblems(d)
			if got := len(problems) > 0; got != tc.want {
				t.Errorf("problems %q, want some: %v", problems, tc.want)
			}
		})
	}
}
