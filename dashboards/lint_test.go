package dashboards

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
)

// The useful subset of grafana/dashboard-linter's rules, rewritten here
// because the linter cannot be fetched, plus the checks the issue asks for
// (unique panel ids, stable uids, queries that parse and use metrics that
// exist). They read the JSON Grafana receives, not the SDK's types, so they
// catch whatever the SDK does on the way.

// lintDashboard is the part of a Classic dashboard the rules read.
type lintDashboard struct {
	UID        string     `json:"uid"`
	Title      string     `json:"title"`
	Editable   *bool      `json:"editable"`
	Tags       []string   `json:"tags"`
	Links      []lintLink `json:"links"`
	Templating struct {
		List []lintVariable `json:"list"`
	} `json:"templating"`
	Panels []lintPanel `json:"panels"`
}

type lintLink struct {
	Type string   `json:"type"`
	Tags []string `json:"tags"`
}

type lintVariable struct {
	Name       string          `json:"name"`
	Type       string          `json:"type"`
	Label      string          `json:"label"`
	Query      json.RawMessage `json:"query"`
	Refresh    int             `json:"refresh"`
	Datasource *lintDatasource `json:"datasource"`
}

type lintPanel struct {
	ID          int             `json:"id"`
	Type        string          `json:"type"`
	Title       string          `json:"title"`
	Description string          `json:"description"`
	Datasource  *lintDatasource `json:"datasource"`
	GridPos     struct {
		X, Y, W, H int
	} `json:"gridPos"`
	Targets     []lintTarget `json:"targets"`
	FieldConfig struct {
		Defaults struct {
			Unit string `json:"unit"`
		} `json:"defaults"`
	} `json:"fieldConfig"`
	Panels []lintPanel `json:"panels"` // a collapsed row's
}

type lintTarget struct {
	RefID        string          `json:"refId"`
	Expr         string          `json:"expr"`
	LegendFormat string          `json:"legendFormat"`
	Datasource   *lintDatasource `json:"datasource"`
}

type lintDatasource struct {
	Type string `json:"type"`
	UID  string `json:"uid"`
}

func parseDashboard(b []byte) (*lintDashboard, error) {
	var d lintDashboard
	if err := json.Unmarshal(b, &d); err != nil {
		return nil, err
	}
	return &d, nil
}

// panels lists every panel, those inside collapsed rows included.
func (d *lintDashboard) panels() []lintPanel {
	var out []lintPanel
	for _, p := range d.Panels {
		out = append(out, p)
		out = append(out, p.Panels...)
	}
	return out
}

// query is a PromQL expression of the dashboard and where it stands.
type lintQuery struct {
	where string
	expr  string
}

// labelValuesRE reads a Prometheus query variable: label_values(selector, label).
var labelValuesRE = regexp.MustCompile(`^label_values\((.+),\s*(\w+)\)$`)

// queries lists every PromQL expression: the panels' targets and the
// selectors of the query variables.
func (d *lintDashboard) queries() []lintQuery {
	var out []lintQuery
	for _, p := range d.panels() {
		for _, t := range p.Targets {
			out = append(out, lintQuery{fmt.Sprintf("panel %q target %s", p.Title, t.RefID), t.Expr})
		}
	}
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if m := labelValuesRE.FindStringSubmatch(v.query()); m != nil {
			out = append(out, lintQuery{fmt.Sprintf("variable %s", v.Name), m[1]})
		}
	}
	return out
}

// query is the variable's query, a string or Grafana's {"query": …} form.
func (v lintVariable) query() string {
	var s string
	if json.Unmarshal(v.Query, &s) == nil {
		return s
	}
	var m struct {
		Query string `json:"query"`
	}
	_ = json.Unmarshal(v.Query, &m)
	return m.Query
}

// variables names the dashboard's variables.
func (d *lintDashboard) variables() map[string]bool {
	out := map[string]bool{}
	for _, v := range d.Templating.List {
		out[v.Name] = true
	}
	return out
}

// A lintRule returns one problem per violation, empty when the dashboard
// passes.
type lintRule struct {
	name  string
	check func(d *lintDashboard, known *knownMetrics) []string
}

var lintRules = []lintRule{
	{"template-datasource-rule", templateDatasource},
	{"template-on-time-change-reload-rule", templateOnTimeChangeReload},
	{"template-label-promql-rule", templateLabelPromQL},
	{"panel-datasource-rule", panelDatasource},
	{"panel-title-description-rule", panelTitleDescription},
	{"panel-units-rule", panelUnits},
	{"panel-targets-rule", panelTargets},
	{"panel-unique-ids-rule", panelUniqueIDs},
	{"panel-grid-rule", panelGrid},
	{"dashboard-uid-rule", dashboardUID},
	{"dashboard-links-rule", dashboardLinks},
	{"uneditable-dashboard-rule", uneditable},
	{"target-promql-rule", targetPromQL},
	{"target-rate-interval-rule", targetRateInterval},
	{"target-counter-agg-rule", targetCounterAgg},
	{"target-metrics-exist-rule", targetMetricsExist},
	{"target-legend-labels-rule", targetLegendLabels},
}

// datasourceVariable is the one data source variable of every dashboard,
// named and labelled as the linter wants it.
const datasourceVariable = "datasource"

func templateDatasource(d *lintDashboard, _ *knownMetrics) []string {
	var found []lintVariable
	for _, v := range d.Templating.List {
		if v.Type == "datasource" {
			found = append(found, v)
		}
	}
	if len(found) != 1 {
		return []string{fmt.Sprintf("%d data source variables, want 1", len(found))}
	}
	v := found[0]
	var problems []string
	if v.Name != datasourceVariable || v.Label != "Data source" {
		problems = append(problems, fmt.Sprintf("data source variable %q labelled %q, want %q labelled %q", v.Name, v.Label, datasourceVariable, "Data source"))
	}
	if q := v.query(); q != "prometheus" {
		problems = append(problems, fmt.Sprintf("data source variable lists %q data sources, want prometheus", q))
	}
	return problems
}

func templateOnTimeChangeReload(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	for _, v := range d.Templating.List {
		if v.Type == "query" && v.Refresh != 2 {
			problems = append(problems, fmt.Sprintf("variable %s refreshes %d, want 2 (on time range change)", v.Name, v.Refresh))
		}
	}
	return problems
}

// templateLabelPromQL checks that query variables read label_values of a
// label their metric has, through the data source variable.
func templateLabelPromQL(d *lintDashboard, known *knownMetrics) []string {
	var problems []string
	for _, v := range d.Templating.List {
		if v.Type != "query" {
			continue
		}
		if !usesDatasourceVariable(v.Datasource) {
			problems = append(problems, fmt.Sprintf("variable %s does not query ${%s}", v.Name, datasourceVariable))
		}
		m := labelValuesRE.FindStringSubmatch(v.query())
		if m == nil {
			problems = append(problems, fmt.Sprintf("variable %s: query %q is not label_values(selector, label)", v.Name, v.query()))
			continue
		}
		expr, err := parsePromQL(m[1], d.variables())
		if err != nil {
			continue // target-promql-rule reports it
		}
		for _, name := range selectedMetrics(expr) {
			if labels := known.labels[name]; labels != nil && !labels[m[2]] {
				problems = append(problems, fmt.Sprintf("variable %s: %s has no label %s", v.Name, name, m[2]))
			}
		}
	}
	return problems
}

func usesDatasourceVariable(ds *lintDatasource) bool {
	return ds != nil && ds.Type == "prometheus" && (ds.UID == "${"+datasourceVariable+"}" || ds.UID == "$"+datasourceVariable)
}

func panelDatasource(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	for _, p := range d.panels() {
		if p.Type == "row" {
			continue
		}
		if !usesDatasourceVariable(p.Datasource) {
			problems = append(problems, fmt.Sprintf("panel %q does not use ${%s}", p.Title, datasourceVariable))
		}
		for _, t := range p.Targets {
			if !usesDatasourceVariable(t.Datasource) {
				problems = append(problems, fmt.Sprintf("panel %q target %s does not use ${%s}", p.Title, t.RefID, datasourceVariable))
			}
		}
	}
	return problems
}

func panelTitleDescription(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	for _, p := range d.panels() {
		switch {
		case strings.TrimSpace(p.Title) == "":
			problems = append(problems, fmt.Sprintf("panel %d has no title", p.ID))
		case p.Type != "row" && strings.TrimSpace(p.Description) == "":
			problems = append(problems, fmt.Sprintf("panel %q has no description", p.Title))
		}
	}
	return problems
}

// validUnits are Grafana's unit ids the dashboards may use (the linter's
// list, trimmed to the categories that make sense for this exporter).
var validUnits = []string{
	"none", "short", "percent", "percentunit",
	"bytes", "decbytes", "bits", "decbits",
	"ns", "µs", "ms", "s", "m", "h", "d", "dtdurationms", "dtdurations", "dthms", "dtdhms",
	"dateTimeAsIso", "dateTimeAsIsoNoDateIfToday", "dateTimeAsLocal", "dateTimeAsLocalNoDateIfToday", "dateTimeAsSystem", "dateTimeFromNow",
	"cps", "ops", "reqps", "rps", "wps", "iops", "cpm", "opm", "rpm", "wpm",
	"bool", "bool_yes_no", "bool_on_off",
}

// panelUnits checks every panel that draws numbers has a unit; the linter
// skips state timelines, but theirs shows in the tooltip.
func panelUnits(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	for _, p := range d.panels() {
		switch p.Type {
		case "stat", "gauge", "bargauge", "table", "timeseries", "state-timeline":
			if u := p.FieldConfig.Defaults.Unit; !slices.Contains(validUnits, u) {
				problems = append(problems, fmt.Sprintf("panel %q has no or an invalid unit %q", p.Title, u))
			}
		}
	}
	return problems
}

// panelTargets checks that every panel that is not a row or text queries
// something, and that its queries have distinct refIds.
func panelTargets(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	for _, p := range d.panels() {
		if p.Type == "row" || p.Type == "text" {
			continue
		}
		if len(p.Targets) == 0 {
			problems = append(problems, fmt.Sprintf("panel %q has no targets", p.Title))
		}
		seen := map[string]bool{}
		for _, t := range p.Targets {
			if t.RefID == "" || seen[t.RefID] {
				problems = append(problems, fmt.Sprintf("panel %q has a missing or repeated refId %q", p.Title, t.RefID))
			}
			seen[t.RefID] = true
			if strings.TrimSpace(t.Expr) == "" {
				problems = append(problems, fmt.Sprintf("panel %q target %s has no expression", p.Title, t.RefID))
			}
		}
	}
	return problems
}

func panelUniqueIDs(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	seen := map[int]string{}
	for _, p := range d.panels() {
		if p.ID <= 0 {
			problems = append(problems, fmt.Sprintf("panel %q has no id", p.Title))
			continue
		}
		if other, dup := seen[p.ID]; dup {
			problems = append(problems, fmt.Sprintf("panels %q and %q share id %d", other, p.Title, p.ID))
		}
		seen[p.ID] = p.Title
	}
	return problems
}

// panelGrid checks that panels fit the 24 columns and do not overlap.
func panelGrid(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	ps := d.Panels // a collapsed row's panels are laid out when it opens
	for i, p := range ps {
		g := p.GridPos
		if g.W <= 0 || g.H <= 0 || g.X < 0 || g.Y < 0 || g.X+g.W > 24 {
			problems = append(problems, fmt.Sprintf("panel %q lies outside the grid: %+v", p.Title, g))
		}
		for _, q := range ps[:i] {
			o := q.GridPos
			if g.X < o.X+o.W && o.X < g.X+g.W && g.Y < o.Y+o.H && o.Y < g.Y+g.H {
				problems = append(problems, fmt.Sprintf("panels %q and %q overlap", q.Title, p.Title))
			}
		}
	}
	return problems
}

// uidRE is what Grafana accepts in a uid, at most 40 characters.
var uidRE = regexp.MustCompile(`^[a-zA-Z0-9_-]{1,40}$`)

func dashboardUID(d *lintDashboard, _ *knownMetrics) []string {
	if !uidRE.MatchString(d.UID) {
		return []string{fmt.Sprintf("uid %q is not 1 to 40 letters, digits, - or _", d.UID)}
	}
	return nil
}

// dashboardLinks checks that the dashboard carries the set's tag and links
// to the others through it.
func dashboardLinks(d *lintDashboard, _ *knownMetrics) []string {
	var problems []string
	if !slices.Contains(d.Tags, Tag) {
		problems = append(problems, fmt.Sprintf("dashboard lacks the tag %q", Tag))
	}
	linked := slices.ContainsFunc(d.Links, func(l lintLink) bool {
		return l.Type == "dashboards" && slices.Contains(l.Tags, Tag)
	})
	if !linked {
		problems = append(problems, fmt.Sprintf("dashboard does not link to the dashboards tagged %q", Tag))
	}
	return problems
}

// uneditable: a generated dashboard edited in Grafana loses the edit at the
// next import, so it says so by being read-only.
func uneditable(d *lintDashboard, _ *knownMetrics) []string {
	if d.Editable == nil || *d.Editable {
		return []string{"dashboard is editable"}
	}
	return nil
}
