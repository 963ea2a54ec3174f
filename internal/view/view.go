// Package view draws the estate for people: the topology page (one column
// per site, one row per component, every member a box coloured by its
// state, the HA model's verdicts on top) and the same data as JSON at
// /api/v1/topology. It shows the latest scrape while it is younger than the
// page's refresh interval, and otherwise takes one (joining a scrape under
// way, under the usual deadline), so the page stays live without Prometheus.
package view

import (
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Source gives the scrapes to show; *exporter.Exporter is one.
type Source interface {
	Latest() *topology.Observation
	Scrape(ctx context.Context) (*topology.Observation, error)
}

// Estates finds the estates of a multi-estate exporter; *exporter.Estates,
// adapted by the binary, is one.
type Estates interface {
	// Names are the running estates' names, sorted.
	Names() []string
	// Source is the estate's, nil for an estate that does not run.
	Source(name string) Source
}

// RemediationState is what the page shows of the remediation receiver.
type RemediationState struct {
	Enabled bool `json:"enabled"`
	DryRun  bool `json:"dry_run"`
	Paused  bool `json:"paused"`
	Blocked bool `json:"blocked"`
	// BlockedReason says why it is blocked and what unblocks it.
	BlockedReason string `json:"blocked_reason,omitempty"`
	// SingleVantage: failed servers are checked from the receiver's host
	// alone; AllowSingleVantage: it promotes even when it cannot fence.
	SingleVantage      bool      `json:"single_vantage"`
	AllowSingleVantage bool      `json:"allow_single_vantage"`
	LastAction         string    `json:"last_action,omitempty"`
	LastTime           time.Time `json:"last_action_time,omitzero"`
}

// Options configure the handlers.
type Options struct {
	// Source is the estate in single-estate mode.
	Source Source
	// Estates, in multi-estate mode instead of Source: the pages take
	// ?estate=NAME, and /topology without it is the index of estates.
	Estates Estates
	// Remediation reports the receiver's state; nil when it is not enabled.
	Remediation func() RemediationState
	// EstateRemediation reports an estate's receiver in multi-estate mode;
	// nil, or false for an estate, when it is not enabled.
	EstateRemediation func(estate string) (RemediationState, bool)
	// Timeout bounds the scrape the page takes.
	Timeout time.Duration
	// Refresh is how often the page reloads itself, and the age past which
	// a snapshot is taken anew.
	Refresh time.Duration
	// MetricsPath is --web.telemetry-path, for the page's link.
	MetricsPath string
	Logger      *slog.Logger
	// Now is the clock; time.Now when nil.
	Now func() time.Time
}

// Document is the JSON answer of /api/v1/topology.
type Document struct {
	// Estate is the estate shown, "" in single-estate mode.
	Estate string    `json:"estate,omitempty"`
	Time   time.Time `json:"time"`
	// AgeSeconds is how old the snapshot was when this answer was made.
	AgeSeconds  float64            `json:"age_seconds"`
	Snapshot    *topology.Snapshot `json:"snapshot"`
	Verdict     *topology.Verdict  `json:"verdict"`
	Collectors  map[string]Status  `json:"collectors"`
	Remediation RemediationState   `json:"remediation"`
	Sites       []config.Site      `json:"sites"`
}

// Status is how one collector's probes went.
type Status struct {
	Success         bool    `json:"success"`
	DurationSeconds float64 `json:"duration_seconds"`
	Error           string  `json:"error,omitempty"`
}

type handlers struct{ opts Options }

// Register adds /topology and /api/v1/topology to mux.
func Register(mux *http.ServeMux, opts Options) {
	if opts.Timeout <= 0 {
		opts.Timeout = 10 * time.Second
	}
	if opts.Refresh <= 0 {
		opts.Refresh = 10 * time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.MetricsPath == "" {
		opts.MetricsPath = "/metrics"
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	h := &handlers{opts: opts}
	mux.HandleFunc("GET /topology", h.page)
	mux.HandleFunc("GET /api/v1/topology", h.api)
	if opts.Estates != nil {
		mux.HandleFunc("GET /api/v1/estates", h.estatesAPI)
	}
}

// source is the estate a request asks for: Source in single-estate mode
// (where ?estate= is ignored), the named estate otherwise. It answers the
// request itself when there is none to show.
func (h *handlers) source(w http.ResponseWriter, r *http.Request) (src Source, estate string, ok bool) {
	if h.opts.Estates == nil {
		return h.opts.Source, "", true
	}
	estate = r.URL.Query().Get("estate")
	if estate == "" {
		http.Error(w, "missing the estate parameter: ?estate=NAME; /api/v1/estates lists them", http.StatusBadRequest)
		return nil, "", false
	}
	if src = h.opts.Estates.Source(estate); src == nil {
		http.Error(w, "unknown estate "+strconv.Quote(estate), http.StatusNotFound)
		return nil, "", false
	}
	return src, estate, true
}

// observation is the source's latest round while it is younger than the
// page's refresh, else a new one (joining a round under way) within the
// page's timeout; the older one when that fails, its age saying so.
func (h *handlers) observation(ctx context.Context, src Source) (*topology.Observation, error) {
	scrape := src.Latest()
	if scrape == nil || h.opts.Now().Sub(scrape.Snapshot.Time) >= h.opts.Refresh {
		ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
		defer cancel()
		fresh, err := src.Scrape(ctx)
		switch {
		case err == nil:
			scrape = fresh
		case scrape == nil:
			return nil, err
		}
	}
	return scrape, nil
}

func (h *handlers) document(r *http.Request, src Source, estate string) (*Document, error) {
	scrape, err := h.observation(r.Context(), src)
	if err != nil {
		return nil, err
	}
	doc := &Document{
		Estate:     estate,
		Time:       scrape.Snapshot.Time,
		AgeSeconds: h.opts.Now().Sub(scrape.Snapshot.Time).Seconds(),
		Snapshot:   scrape.Snapshot,
		Verdict:    scrape.Verdict,
		Collectors: map[string]Status{},
		Sites:      scrape.Config.Sites,
	}
	for name, r := range scrape.Results {
		st := Status{Success: r.Err == nil, DurationSeconds: r.Duration.Seconds()}
		if r.Err != nil {
			st.Error = r.Err.Error()
		}
		doc.Collectors[name] = st
	}
	switch {
	case estate != "" && h.opts.EstateRemediation != nil:
		doc.Remediation, _ = h.opts.EstateRemediation(estate)
	case estate == "" && h.opts.Remediation != nil:
		doc.Remediation = h.opts.Remediation()
	}
	return doc, nil
}

func (h *handlers) api(w http.ResponseWriter, r *http.Request) {
	src, estate, ok := h.source(w, r)
	if !ok {
		return
	}
	doc, err := h.document(r, src, estate)
	if err != nil {
		http.Error(w, "no scrape available: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(doc); err != nil {
		h.opts.Logger.Debug("writing /api/v1/topology", "err", err)
	}
}

//go:embed topology.html
var pageSource string

var pageTemplate = template.Must(template.New("topology").Funcs(template.FuncMap{
	"seconds": func(d time.Duration) int { return int(d.Seconds()) },
}).Parse(pageSource))

func (h *handlers) page(w http.ResponseWriter, r *http.Request) {
	if h.opts.Estates != nil && r.URL.Query().Get("estate") == "" {
		h.index(w, r)
		return
	}
	src, estate, ok := h.source(w, r)
	if !ok {
		return
	}
	doc, err := h.document(r, src, estate)
	if err != nil {
		http.Error(w, "no scrape available: "+err.Error(), http.StatusServiceUnavailable)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := pageTemplate.Execute(w, newPage(doc, h.opts)); err != nil {
		h.opts.Logger.Debug("rendering /topology", "err", err)
	}
}

// Box classes: the colour of a member.
const (
	ClassHead     = "head"     // primary, master, active
	ClassFollower = "follower" // secondary, replica, standby, arbiter, running
	ClassDown     = "down"
	ClassUnknown  = "unknown"
)

// Box is one member drawn on the page.
type Box struct {
	Component string // iap, mongodb, redis, sentinel, rabbitmq, gateway, loadbalancer
	Group     string // the instance: replica set, Sentinel group, cluster
	Name      string
	State     string // what the member is: active, primary, replica, down, …
	Class     string
	Detail    string
	// SinglePoint: losing this member alone would stop the estate;
	// BelowClass: it would leave the class below the declared one. Why says
	// what would break.
	SinglePoint bool
	BelowClass  bool
	Why         string
}

// Row is one component across every site.
type Row struct {
	Title string
	Cells [][]Box // one cell per site column
}

type page struct {
	Doc     *Document
	Columns []string
	Rows    []Row
	Refresh time.Duration
	// MetricsLink is the telemetry path relative to the page, so that it
	// holds behind a proxy's path prefix too (the estate's probe in
	// multi-estate mode); JSONLink the same page as JSON; IndexLink the
	// index of estates, "" in single-estate mode.
	MetricsLink, JSONLink, IndexLink string
	Degraded                         bool
	Components                       []topology.ComponentVerdict
	// SinglePoints are the members whose loss alone stops the estate;
	// BelowClass those whose loss alone drops the declared class.
	SinglePoints, BelowClass []topology.MemberVerdict
}

func newPage(doc *Document, opts Options) page {
	p := page{Doc: doc, Refresh: opts.Refresh, MetricsLink: strings.TrimPrefix(opts.MetricsPath, "/"), JSONLink: "api/v1/topology",
		Degraded: doc.Verdict.Architecture.Degraded(), Components: doc.Verdict.Components, SinglePoints: doc.Verdict.SinglePoints()}
	if doc.Estate != "" {
		q := "?estate=" + url.QueryEscape(doc.Estate)
		p.MetricsLink, p.JSONLink, p.IndexLink = probeLink+q, p.JSONLink+q, "topology"
	}
	members := map[string]topology.MemberVerdict{}
	for _, mv := range doc.Verdict.Members {
		members[mv.Component+"/"+mv.Name] = mv
		if mv.BelowClass == topology.True {
			p.BelowClass = append(p.BelowClass, mv)
		}
	}
	col := map[string]int{}
	for _, s := range doc.Sites {
		col[s.Name] = len(p.Columns)
		p.Columns = append(p.Columns, s.Name)
	}
	boxes := Boxes(doc.Snapshot)
	rowIndex := map[string]int{}
	for _, b := range boxes {
		if _, ok := col[siteOf(b)]; !ok {
			col[siteOf(b)] = len(p.Columns)
			p.Columns = append(p.Columns, siteOf(b))
		}
	}
	for _, b := range boxes {
		i, ok := rowIndex[b.Component]
		if !ok {
			i = len(p.Rows)
			rowIndex[b.Component] = i
			p.Rows = append(p.Rows, Row{Title: rowTitles[b.Component]})
		}
		for len(p.Rows[i].Cells) < len(p.Columns) {
			p.Rows[i].Cells = append(p.Rows[i].Cells, nil)
		}
		if mv, ok := members[b.Component+"/"+b.Name]; ok {
			b.SinglePoint, b.BelowClass = mv.Stops == topology.True, mv.BelowClass == topology.True
			switch {
			case b.SinglePoint:
				b.Why = "single point of failure: " + mv.Reason
			case b.BelowClass:
				b.Why = "its loss alone leaves the estate " + mv.ClassReason
			}
		}
		c := col[siteOf(b)]
		p.Rows[i].Cells[c] = append(p.Rows[i].Cells[c], b.Box)
	}
	for i := range p.Rows {
		for len(p.Rows[i].Cells) < len(p.Columns) {
			p.Rows[i].Cells = append(p.Rows[i].Cells, nil)
		}
	}
	sort.SliceStable(p.Components, func(i, j int) bool { return p.Components[i].Component < p.Components[j].Component })
	return p
}

var rowTitles = map[string]string{
	"iap": "IAP servers", "mongodb": "MongoDB members", "redis": "Redis data nodes",
	"sentinel": "Redis Sentinels", "rabbitmq": "RabbitMQ nodes", "gateway": "Automation Gateways",
	"loadbalancer": "Load balancers",
}

type sitedBox struct {
	Box
	site string
}

func siteOf(b sitedBox) string {
	if b.site == "" {
		return "(no site)"
	}
	return b.site
}
