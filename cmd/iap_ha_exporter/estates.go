package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/exporter"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
	"github.com/iapha/iap_ha_exporter/internal/view"
	"github.com/iapha/iap_ha_exporter/remediation"
)

// serveEstates puts the multi-estate handlers on mux: /metrics the
// process's own, /probe?estate=NAME each estate's, the topology page per
// estate and the index of estates.
func serveEstates(mux *http.ServeMux, es *exporter.Estates, viewOpts view.Options) {
	mux.Handle(viewOpts.MetricsPath, es.MetricsHandler())
	mux.Handle(exporter.ProbePath, es.ProbeHandler())
	mux.Handle("/-/reload", es.ReloadHandler())
	viewOpts.Estates = estateSources{es}
	view.Register(mux, viewOpts)
}

// estateSources gives the view each estate's instance in force.
type estateSources struct{ *exporter.Estates }

func (s estateSources) Source(name string) view.Source {
	if e := s.Estate(name); e != nil {
		return e
	}
	return nil // not a nil *Exporter in an interface
}

// estatesLinks are the landing page's links in multi-estate mode; the
// index of estates under them links each estate's probe and page.
func estatesLinks(metricsPath string) []web.LandingLinks {
	return []web.LandingLinks{
		{Address: "topology", Text: "Estates", Description: "each estate's class and degradation, with its probe and topology page"},
		{Address: "api/v1/estates", Text: "Estates (JSON)"},
		{Address: metricsPath, Text: "Metrics", Description: "the exporter's own; an estate's are at " + exporter.ProbePath + "?estate=NAME"},
		{Address: "/-/healthy", Text: "Health"},
	}
}

// checkEstates checks every estate of --config.estates the way a start
// would, and each remediation file as the receiver reads it, printing
// every problem it finds.
func checkEstates(path, webConfigFile string, insecure bool, stdout, stderr *os.File) int {
	estates, err := config.LoadEstates(path)
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	code := 0
	var remediated []remediation.Estate
	for _, e := range estates {
		if e.Err == nil {
			var s *collector.Scraper
			if s, err = collector.NewScraper(e.Config, promslog.NewNopLogger()); err == nil {
				s.Close()
			} else {
				e.Err = fmt.Errorf("estate %s (%s): %w", e.Name, e.ConfigFile, err)
			}
		}
		if e.Err != nil {
			fmt.Fprintf(stderr, "%v\n", e.Err)
			code = 1
			continue
		}
		for _, w := range e.Config.Warnings {
			fmt.Fprintf(stdout, "estate %s (%s): warning: %s\n", e.Name, e.ConfigFile, w)
		}
		fmt.Fprintf(stdout, "estate %s (%s): OK\n", e.Name, e.ConfigFile)
		if e.RemediationFile != "" {
			remediated = append(remediated, remediation.Estate{Name: e.Name, File: e.RemediationFile, Config: e.Config})
		}
	}
	// The receivers are checked together, as the router starts them: no
	// two estates on one journal or one lease.
	for _, err := range remediation.CheckEstates(remediated, remediation.RouterOptions{WebConfigFile: webConfigFile, InsecureWebhook: insecure}) {
		fmt.Fprintf(stderr, "%v\n", err)
		code = 1
	}
	if code == 0 {
		for _, e := range remediated {
			fmt.Fprintf(stdout, "estate %s (%s): OK\n", e.Name, e.File)
		}
	}
	return code
}

// followEstates starts the remediation router of a multi-estate exporter
// (one receiver per estate with a remediation file), puts each estate's
// receiver metrics in the estate's registry and its state on the estate's
// page, and has every reload of the estates reload the router. The
// returned func stops it.
func (f *remediationFlags) followEstates(es *exporter.Estates, mux *http.ServeMux, toolkit *web.FlagConfig, lo listenOptions, viewOpts *view.Options, logger *slog.Logger) (func(), error) {
	current := func() []remediation.Estate {
		var estates []remediation.Estate
		for _, name := range es.Names() {
			e := es.Estate(name)
			estates = append(estates, remediation.Estate{
				Name: name, File: es.RemediationFile(name), Config: e.Config(),
				// The instance in force at each call: a reload may replace it.
				Scrape: func(ctx context.Context) (*topology.Observation, error) {
					if e := es.Estate(name); e != nil {
						return e.ScrapeFresh(ctx)
					}
					return nil, fmt.Errorf("estate %s is no longer served", name)
				},
			})
		}
		return estates
	}
	rt, stop, err := f.serveEstates(current(), mux, toolkit, lo, es.Registry(), logger)
	if err != nil {
		return nil, err
	}
	// An estate's registry lasts as long as the estate; one removed and
	// listed again has a new one.
	registered := map[string]*prometheus.Registry{}
	register := func() {
		for _, name := range es.Names() {
			reg := es.Estate(name).Registry()
			if registered[name] == reg {
				continue
			}
			if err := reg.Register(rt.Collector(name)); err != nil {
				logger.Error("remediation metrics of an estate", "estate", name, "err", err)
			}
			registered[name] = reg
		}
	}
	register()
	es.AddFollower(func() map[string]error {
		problems := rt.Reload(current())
		register()
		return problems
	})
	viewOpts.EstateRemediation = func(name string) (view.RemediationState, bool) {
		st, ok := rt.Status(name)
		if !ok {
			return view.RemediationState{}, false
		}
		return remediationState(st), true
	}
	return stop, nil
}
