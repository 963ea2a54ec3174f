package view

import (
	"context"
	_ "embed"
	"encoding/json"
	"html/template"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// probeLink is where a multi-estate exporter serves one estate's metrics
// (exporter.ProbePath, which this package may not import), relative to
// the page.
const probeLink = "probe"

// indexParallel bounds the estates the index probes at once when their
// latest rounds are too old: a page view must not start a hundred rounds
// together.
const indexParallel = 8

// EstateSummary is one estate on the index of estates.
type EstateSummary struct {
	Name string `json:"name"`
	// Observed and Expected are the estate's architecture class, as the HA
	// model judges it and as its file declares it; Degraded that the
	// observed class is below the expected one.
	Observed   string  `json:"observed,omitempty"`
	Expected   string  `json:"expected,omitempty"`
	Degraded   bool    `json:"degraded"`
	AgeSeconds float64 `json:"age_seconds"`
	// Error says why no round of the estate could be shown.
	Error string `json:"error,omitempty"`
	// Topology and Probe are the estate's page and metrics, relative to
	// the exporter's root.
	Topology string `json:"topology"`
	Probe    string `json:"probe"`
}

// EstatesDocument is the JSON answer of /api/v1/estates.
type EstatesDocument struct {
	Estates []EstateSummary `json:"estates"`
}

// summaries are the running estates, each from its latest round while it
// is younger than the page's refresh, else from a new one, all within the
// page's timeout: a hung estate shows its error, never holds the others
// back, and a hundred of them cost one timeout, not a hundred.
func (h *handlers) summaries(ctx context.Context) []EstateSummary {
	ctx, cancel := context.WithTimeout(ctx, h.opts.Timeout)
	defer cancel()
	names := h.opts.Estates.Names()
	out := make([]EstateSummary, len(names))
	slots := make(chan struct{}, indexParallel)
	var wg sync.WaitGroup
	for i, name := range names {
		q := "?estate=" + url.QueryEscape(name)
		out[i] = EstateSummary{Name: name, Topology: "topology" + q, Probe: probeLink + q}
		src := h.opts.Estates.Source(name)
		if src == nil {
			out[i].Error = "removed by a reload"
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case slots <- struct{}{}:
				defer func() { <-slots }()
			case <-ctx.Done():
			}
			if err := ctx.Err(); err != nil { // a slot and the end may come together
				out[i].Error = "no round available: " + err.Error()
				return
			}
			o, err := h.observation(ctx, src)
			if err != nil {
				out[i].Error = "no round available: " + err.Error()
				return
			}
			a := o.Verdict.Architecture
			out[i].Observed, out[i].Expected, out[i].Degraded = a.Observed, a.Expected, a.Degraded()
			out[i].AgeSeconds = h.opts.Now().Sub(o.Snapshot.Time).Seconds()
		}()
	}
	wg.Wait()
	return out
}

func (h *handlers) estatesAPI(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	if err := enc.Encode(EstatesDocument{Estates: h.summaries(r.Context())}); err != nil {
		h.opts.Logger.Debug("writing /api/v1/estates", "err", err)
	}
}

//go:embed estates.html
var indexSource string

var indexTemplate = template.Must(template.New("estates").Funcs(template.FuncMap{
	"seconds": func(d time.Duration) int { return int(d.Seconds()) },
}).Parse(indexSource))

type indexPage struct {
	Estates  []EstateSummary
	Degraded int
	Refresh  time.Duration
}

func (h *handlers) index(w http.ResponseWriter, r *http.Request) {
	p := indexPage{Estates: h.summaries(r.Context()), Refresh: h.opts.Refresh}
	for _, e := range p.Estates {
		if e.Degraded {
			p.Degraded++
		}
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	if err := indexTemplate.Execute(w, p); err != nil {
		h.opts.Logger.Debug("rendering the index of estates", "err", err)
	}
}
