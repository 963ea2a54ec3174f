package main

import (
	"fmt"
	"net/http"
	"os"

	"github.com/prometheus/common/promslog"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/exporter"
	"github.com/iapha/iap_ha_exporter/internal/config"
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
	journals := map[string]string{} // journal file → the estate whose receiver writes it
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
		if e.RemediationFile == "" {
			continue
		}
		rc, err := remediation.Load(e.RemediationFile, e.Config)
		if err == nil {
			err = remediation.CheckAuthentication(rc, webConfigFile, insecure)
		}
		if err == nil {
			if other, dup := journals[rc.JournalFile]; dup {
				err = fmt.Errorf("journal_file: %s is estate %s's journal too: each estate's receiver keeps its own", rc.JournalFile, other)
			}
			journals[rc.JournalFile] = e.Name
		}
		if err != nil {
			fmt.Fprintf(stderr, "estate %s (%s): %v\n", e.Name, e.RemediationFile, err)
			code = 1
			continue
		}
		fmt.Fprintf(stdout, "estate %s (%s): OK\n", e.Name, e.RemediationFile)
	}
	return code
}
