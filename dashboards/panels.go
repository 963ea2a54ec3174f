package dashboards

import (
	"strconv"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
	"github.com/grafana/grafana-foundation-sdk/go/dashboard"
	"github.com/grafana/grafana-foundation-sdk/go/prometheus"
	"github.com/grafana/grafana-foundation-sdk/go/stat"
	"github.com/grafana/grafana-foundation-sdk/go/statetimeline"
	"github.com/grafana/grafana-foundation-sdk/go/table"
	"github.com/grafana/grafana-foundation-sdk/go/timeseries"
)

// Units the panels use (Grafana's unit ids).
const (
	unitCount   = "none"
	unitSeconds = "s"
	unitBytes   = "bytes"
	unitRatio   = "percentunit"
	unitPerMin  = "opm"
	unitAgo     = "dateTimeFromNow"
)

// query is one PromQL target; legend names its series ("" keeps Grafana's).
func query(expr, legend string) *prometheus.DataqueryBuilder {
	q := prometheus.NewDataqueryBuilder().Datasource(datasource).Expr(expr)
	if legend != "" {
		q.LegendFormat(legend)
	}
	return q
}

// targets gives the queries of a panel their refIds, A, B, C… in order: the
// SDK does not, and Grafana needs them to tell the queries apart.
func targets(queries []*prometheus.DataqueryBuilder) []cog.Builder[variants.Dataquery] {
	out := make([]cog.Builder[variants.Dataquery], len(queries))
	for i, q := range queries {
		out[i] = q.RefId(string(rune('A' + i)))
	}
	return out
}

// statPanel shows the value of each series now: its queries are instant, so
// a series that is gone shows as gone, not as its last value.
func statPanel(title, description, unit string, queries ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	for _, q := range queries {
		q.Instant()
	}
	return stat.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource).
		Targets(targets(queries)).
		Unit(unit).
		Height(5).
		GraphMode(common.BigValueGraphModeNone).
		ColorMode(common.BigValueColorModeBackground).
		TextMode(common.BigValueTextModeValueAndName).
		Orientation(common.VizOrientationAuto).
		ReduceOptions(common.NewReduceDataOptionsBuilder().Calcs([]string{"lastNotNull"}).Values(false))
}

// namesPanel is a stat panel that shows the series' names instead of their
// values: one tile per weak point, or a label such as the architecture.
func namesPanel(title, description string, queries ...*prometheus.DataqueryBuilder) *stat.PanelBuilder {
	return statPanel(title, description, unitCount, queries...).
		TextMode(common.BigValueTextModeName)
}

// timeseriesPanel draws series over the time range, with a legend table of
// their last and highest values.
func timeseriesPanel(title, description, unit string, queries ...*prometheus.DataqueryBuilder) *timeseries.PanelBuilder {
	return timeseries.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource).
		Targets(targets(queries)).
		Unit(unit).
		Height(8).
		FillOpacity(10).
		Tooltip(tooltip()).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeTable).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true).
			Calcs([]string{"lastNotNull", "max"}))
}

// timelinePanel shows how a state moved over time, one lane per series.
func timelinePanel(title, description string, states []dashboard.ValueMapping, queries ...*prometheus.DataqueryBuilder) *statetimeline.PanelBuilder {
	return statetimeline.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource).
		Targets(targets(queries)).
		Unit(unitCount).
		Mappings(states).
		Height(8).
		ShowValue(common.VisibilityModeNever).
		MergeValues(true).
		Tooltip(tooltip()).
		Legend(common.NewVizLegendOptionsBuilder().
			DisplayMode(common.LegendDisplayModeList).
			Placement(common.LegendPlacementBottom).
			ShowLegend(true))
}

// tooltip lists every series under the cursor, largest first.
func tooltip() *common.VizTooltipOptionsBuilder {
	return common.NewVizTooltipOptionsBuilder().Mode(common.TooltipDisplayModeMulti).Sort(common.SortOrderDescending)
}

// tablePanel lists series now, one row per series and one column per label;
// hide names the columns to leave out.
func tablePanel(title, description string, hide []string, queries ...*prometheus.DataqueryBuilder) *table.PanelBuilder {
	for _, q := range queries {
		q.Instant().Format(prometheus.PromQueryFormatTable)
	}
	excluded := map[string]bool{"Time": true, "__name__": true, "job": true, "instance": true}
	for _, h := range hide {
		excluded[h] = true
	}
	t := table.NewPanelBuilder().
		Title(title).
		Description(description).
		Datasource(datasource).
		Targets(targets(queries)).
		Unit(unitCount).
		Footer(common.NewTableFooterOptionsBuilder().Show(false).Reducer([]string{"sum"})).
		Height(8)
	if len(queries) > 1 {
		// One row per series with a value column per query.
		t.WithTransformation(dashboard.DataTransformerConfig{Id: "merge", Options: map[string]any{}})
	}
	return t.WithTransformation(dashboard.DataTransformerConfig{
		Id:      "organize",
		Options: map[string]any{"excludeByName": excluded},
	})
}

// row starts a section; the panels added after it belong to it.
func row(title string) *dashboard.RowBuilder { return dashboard.NewRowBuilder(title) }

// state is one value of a gauge that encodes a state, as the panels show it.
type state struct {
	value float64
	text  string
	color string
}

// states maps the values of a state gauge to words and colours.
func states(ss ...state) []dashboard.ValueMapping {
	options := make(map[string]dashboard.ValueMappingResult, len(ss))
	for i, s := range ss {
		options[strconv.FormatFloat(s.value, 'f', -1, 64)] = dashboard.ValueMappingResult{
			Text: cog.ToPtr(s.text), Color: cog.ToPtr(s.color), Index: cog.ToPtr(int32(i)),
		}
	}
	return []dashboard.ValueMapping{{ValueMap: &dashboard.ValueMap{Type: dashboard.MappingTypeValueToText, Options: options}}}
}

// okWhen maps a 0/1 gauge: ok is the word for the healthy value.
func okWhen(healthy float64, ok, bad string) []dashboard.ValueMapping {
	return states(state{healthy, ok, "green"}, state{1 - healthy, bad, "red"})
}

// step colours values from value up; the first colour covers everything
// below the first step.
type step struct {
	value float64
	color string
}

func thresholds(base string, steps ...step) *dashboard.ThresholdsConfigBuilder {
	out := []dashboard.Threshold{{Color: base}}
	for _, s := range steps {
		out = append(out, dashboard.Threshold{Value: cog.ToPtr(s.value), Color: s.color})
	}
	return dashboard.NewThresholdsConfigBuilder().Mode(dashboard.ThresholdsModeAbsolute).Steps(out)
}

// tolerance colours a count of failures survivable: none is red, any is
// green (one is what HA-3 is built for).
func tolerance() *dashboard.ThresholdsConfigBuilder {
	return thresholds("red", step{1, "green"})
}

// fixedColor paints every value one colour: for panels whose values are
// names, where a threshold colour would mean nothing.
func fixedColor(color string) *dashboard.FieldColorBuilder {
	return dashboard.NewFieldColorBuilder().Mode(dashboard.FieldColorModeIdFixed).FixedColor(color)
}

// renameColumns renames table columns, such as the "Value #A" of each query.
func renameColumns(names map[string]string) dashboard.DataTransformerConfig {
	return dashboard.DataTransformerConfig{Id: "organize", Options: map[string]any{"renameByName": names}}
}
