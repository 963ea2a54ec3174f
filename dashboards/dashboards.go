// Package dashboards builds the Grafana dashboards of iap_ha_exporter as Go
// code with grafana-foundation-sdk. `make dashboards` writes them as Classic
// dashboard JSON into this directory, where they are committed; a test fails
// when the committed JSON and the code disagree, so edit the Go, never the
// JSON.
package dashboards

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
)

// Tag marks every dashboard of the set; the dashboards link to each other
// through it.
const Tag = "iap-ha"

// builders lists every dashboard in the order of the links menu.
var builders = []func() *dashboard.DashboardBuilder{
	overviewDashboard,
	iapDashboard,
	mongodbDashboard,
	redisDashboard,
	rabbitmqDashboard,
	remediationDashboard,
}

// MinGrafana is the oldest Grafana the dashboards import into, and
// MinGrafanaSchema its dashboard schema version. The SDK writes its own
// latest schema (42 in v0.0.22), which an older Grafana does not migrate
// and may misread; a newer one migrates 38 up by itself when it loads.
const (
	MinGrafana       = "10.0"
	MinGrafanaSchema = 38
)

// MinGrafanaPanels are the panel types the dashboards may use: each ships
// with Grafana since MinGrafana or before.
var MinGrafanaPanels = []string{"row", "stat", "state-timeline", "table", "timeseries"}

// All builds every dashboard.
func All() ([]dashboard.Dashboard, error) {
	out := make([]dashboard.Dashboard, 0, len(builders))
	for _, b := range builders {
		d, err := b().Build()
		if err != nil {
			return nil, err
		}
		d.SchemaVersion = MinGrafanaSchema
		numberPanels(&d)
		out = append(out, d)
	}
	return out, nil
}

// FileName is where the generator writes a dashboard.
func FileName(d dashboard.Dashboard) string { return *d.Uid + ".json" }

// JSON renders a dashboard as the generator writes it: indented, HTML
// characters (PromQL's < and >) left as they are, a final newline.
func JSON(d dashboard.Dashboard) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "  ")
	if err := enc.Encode(d); err != nil {
		return nil, fmt.Errorf("dashboard %s: %w", *d.Uid, err)
	}
	return buf.Bytes(), nil
}

// numberPanels gives every panel and row an id, top to bottom: the SDK
// leaves them 0, and Grafana needs them unique to link to a panel.
func numberPanels(d *dashboard.Dashboard) {
	for i, p := range d.Panels {
		id := uint32(i + 1)
		switch {
		case p.Panel != nil:
			p.Panel.Id = cog.ToPtr(id)
		case p.RowPanel != nil:
			p.RowPanel.Id = id
		}
	}
}

// datasource is the data source of every panel and query: the dashboard's
// variable, so one import serves any Prometheus.
var datasource = common.DataSourceRef{Type: cog.ToPtr("prometheus"), Uid: cog.ToPtr("${datasource}")}

// newDashboard starts a dashboard with what every one of the set shares:
// the data source and estate variables first, the links to the others,
// read-only (changes belong in the Go code).
func newDashboard(uid, title, description string) *dashboard.DashboardBuilder {
	return dashboard.NewDashboardBuilder(title).
		Uid(uid).
		Description(description).
		Tags([]string{Tag}).
		Readonly().
		Time("now-6h", "now").
		Refresh("1m").
		Timezone(common.TimeZoneBrowser).
		Tooltip(dashboard.DashboardCursorSyncCrosshair).
		Link(dashboard.NewDashboardLinkBuilder("IAP HA dashboards").
			Icon("external link").
			Type(dashboard.DashboardLinkTypeDashboards).
			Tags([]string{Tag}).
			AsDropdown(true).
			IncludeVars(true).
			KeepTime(true)).
		WithVariable(dashboard.NewDatasourceVariableBuilder("datasource").
			Label("Data source").
			Type("prometheus")).
		WithVariable(estateVariable())
}

// estateFilter is in every selector of every dashboard: the estates the
// estate variable picks.
const estateFilter = `estate=~"$estate"`

// estateVariable picks estates of the multi-target job, which adds the
// estate label to each estate's series (docs/fleet.md); several or all at
// once. Where the exporters watch one estate each there is no estate label:
// the variable offers only All, and estate=~".*" matches the series
// without it.
func estateVariable() *dashboard.QueryVariableBuilder {
	return labelVariable("estate", "Estate", "iap_ha_architecture_info", true)
}

// labelVariable offers the values of label on the series selector matches,
// reloaded when the time range changes. The variable is named after the
// label. A multi-value variable matches with =~ and "All" means ".*".
func labelVariable(label, title, selector string, multi bool) *dashboard.QueryVariableBuilder {
	v := dashboard.NewQueryVariableBuilder(label).
		Label(title).
		Datasource(datasource).
		Query(dashboard.StringOrMap{String: cog.ToPtr(fmt.Sprintf("label_values(%s, %s)", selector, label))}).
		Refresh(dashboard.VariableRefreshOnTimeRangeChanged).
		Sort(dashboard.VariableSortAlphabeticalAsc)
	if multi {
		v.Multi(true).IncludeAll(true).AllValue(".*")
	}
	return v
}

// jobVariable picks the Prometheus job that scrapes one estate's exporter,
// among those that scrape the estates picked; metric names the series to
// read it from.
func jobVariable(metric string) *dashboard.QueryVariableBuilder {
	return labelVariable("job", "Job", metric+"{"+estateFilter+"}", false)
}
