// Command iap_ha_exporter exports the HA state of an Itential Automation
// Platform estate to Prometheus. This file only wires flags to the packages
// that do the work.
package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	"github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
	"github.com/prometheus/exporter-toolkit/web"
	"github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/iapha/iap_ha_exporter/collector"
	"github.com/iapha/iap_ha_exporter/exporter"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/view"
)

// defaultPort is reserved for this exporter's use in the range of the
// Prometheus default port allocations (9100–9999) and unclaimed there.
const defaultPort = ":9894"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr *os.File) int {
	app := kingpin.CommandLine
	app.Name = "iap_ha_exporter"
	app.Help = "Prometheus exporter for highly available Itential Automation Platform estates."
	var (
		configFile = app.Flag("config.file", "Path to the configuration file; without it, an all-in-one (HA-0) node on localhost.").
				Default("").String()
		estatesPath = app.Flag("config.estates", "Many estates in one process: a directory of estate files (NAME.yml in --config.file's format, NAME.remediation.yml beside it for its receiver) or a file listing them; each estate is served at /probe?estate=NAME. Excludes --config.file.").
				Default("").String()
		configCheck = app.Flag("config.check", "Check the configuration file (or every estate's files), print every problem and exit (non-zero on any).").
				Bool()
		metricsPath = app.Flag("web.telemetry-path", "Path under which to expose metrics.").
				Default("/metrics").String()
		maxRequests = app.Flag("web.max-requests", "Maximum number of concurrent scrape requests; 0 disables the limit.").
				Default("40").Int()
		enableReload = app.Flag("web.enable-reload", "Serve POST /-/reload (SIGHUP reloads either way). Anyone who reaches it can have the configuration read again and the targets logged in to: put it behind --web.config.file's basic auth or TLS client certificates, or turn it off with --no-web.enable-reload.").
				Default("true").Bool()
		maxConnections = app.Flag("web.max-connections", "Maximum number of open connections on each listener (at most half the open-file limit); 0 disables the limit.").
				Default(strconv.Itoa(exporter.DefaultMaxConnections)).Int()
		timeoutOffset = app.Flag("scrape.timeout-offset", "Subtracted from Prometheus's scrape timeout so the answer arrives in time.").
				Default(exporter.DefaultTimeoutOffset.String()).Duration()
		defaultTimeout = app.Flag("scrape.default-timeout", "Scrape deadline when the request carries no X-Prometheus-Scrape-Timeout-Seconds header.").
				Default(exporter.DefaultTimeout.String()).Duration()
		toolkitFlags = kingpinflag.AddFlags(app, defaultPort)
		remFlags     = addRemediationFlags(app)
	)
	promslogConfig := &promslog.Config{}
	flag.AddFlags(app, promslogConfig)
	app.Version(version.Print("iap_ha_exporter"))
	app.HelpFlag.Short('h')
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	command, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 2
	}

	if *configFile != "" && *estatesPath != "" {
		fmt.Fprintln(stderr, "iap_ha_exporter: --config.file and --config.estates exclude each other: give one estate's file, or the estates")
		return 2
	}
	if *estatesPath != "" && *remFlags.configFile != "" {
		fmt.Fprintln(stderr, "iap_ha_exporter: with --config.estates each estate's remediation file is NAME.remediation.yml beside it (or remediation_file in the list), not --remediation.config.file")
		return 2
	}
	if *configCheck {
		if *estatesPath != "" {
			return checkEstates(*estatesPath, *toolkitFlags.WebConfigFile, *remFlags.insecure, stdout, stderr)
		}
		return checkConfig(*configFile, remFlags, *toolkitFlags.WebConfigFile, stdout, stderr)
	}

	promslogConfig.Writer = stderr
	logger := promslog.New(promslogConfig)
	logger.Info("starting iap_ha_exporter", "version", version.Info(), "build_context", version.BuildContext())

	opts := exporter.Options{
		ConfigFile:             *configFile,
		EstatesPath:            *estatesPath,
		DefaultTimeout:         *defaultTimeout,
		TimeoutOffset:          *timeoutOffset,
		MaxRequestsInFlight:    *maxRequests,
		ReloadEndpointDisabled: !*enableReload,
		Logger:                 logger,
	}
	if *estatesPath != "" {
		remFlags.estates = func() ([]estateFiles, error) {
			estates, err := config.LoadEstates(*estatesPath)
			files := make([]estateFiles, 0, len(estates))
			for _, e := range estates {
				files = append(files, estateFiles{Name: e.Name, ConfigFile: e.ConfigFile, RemediationFile: e.RemediationFile})
			}
			return files, err
		}
	}
	if code, handled := remFlags.run(command, opts, stdout, stderr); handled {
		return code
	}
	mux := http.NewServeMux()
	var (
		reload func() error
		links  []web.LandingLinks
	)
	if *estatesPath != "" {
		es, err := exporter.NewEstates(opts)
		if err != nil {
			logger.Error("cannot start", "err", err)
			return 1
		}
		defer es.Close()
		reload = es.Reload
		viewOpts := view.Options{Timeout: *defaultTimeout, MetricsPath: *metricsPath, Logger: logger}
		stopRemediation, err := remFlags.followEstates(es, mux, toolkitFlags, listenOptions{*defaultTimeout, *maxConnections}, &viewOpts, logger)
		if err != nil {
			logger.Error("cannot start the remediation receivers", "err", err)
			return 1
		}
		defer stopRemediation()
		serveEstates(mux, es, viewOpts)
		links = estatesLinks(*metricsPath)
	} else {
		exp, err := exporter.New(opts)
		if err != nil {
			logger.Error("cannot start", "err", err)
			return 1
		}
		defer exp.Close()
		reload = exp.Reload
		mux.Handle(*metricsPath, exp.MetricsHandler())
		mux.Handle("/-/reload", exp.ReloadHandler())
		receiver, stopRemediation, err := remFlags.serve(exp, mux, toolkitFlags, listenOptions{*defaultTimeout, *maxConnections}, logger)
		if err != nil {
			logger.Error("cannot start the remediation receiver", "err", err)
			return 1
		}
		defer stopRemediation()
		viewOpts := view.Options{Source: exp, Timeout: *defaultTimeout, MetricsPath: *metricsPath, Logger: logger}
		if receiver != nil {
			viewOpts.Remediation = func() view.RemediationState { return remediationState(receiver.Status()) }
		}
		view.Register(mux, viewOpts)
		links = []web.LandingLinks{
			{Address: *metricsPath, Text: "Metrics"},
			{Address: "topology", Text: "Topology", Description: "the estate per site and the HA model's verdicts"},
			{Address: "api/v1/topology", Text: "Topology (JSON)"},
			{Address: "/-/healthy", Text: "Health"},
		}
	}

	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	go func() {
		for range hup {
			_ = reload() // logged by Reload; the old configuration stays on error
		}
	}()
	mux.HandleFunc("/-/healthy", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Healthy") })
	mux.HandleFunc("/-/ready", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprintln(w, "Ready") })
	if *metricsPath != "/" {
		landing, err := web.NewLandingPage(web.LandingConfig{
			Name:        "IAP HA Exporter",
			Description: "Prometheus exporter for highly available Itential Automation Platform estates",
			Version:     version.Info(),
			// No /debug/pprof here: the toolkit's profiling links would 404.
			Profiling: "false",
			// The live topology view, on the landing page itself.
			ExtraHTML: `<iframe src="topology" title="topology" style="width:100%;height:80vh;border:0"></iframe>`,
			Links:     links,
		})
		if err != nil {
			logger.Error("cannot build the landing page", "err", err)
			return 1
		}
		mux.Handle("/", landing)
	}

	server := exporter.NewServer(mux, *defaultTimeout, logger)
	// SIGTERM (systemd, Kubernetes) and SIGINT end the process through the
	// deferred closes, so that the receiver's worker returns the lease it
	// holds instead of leaving it to expire (a restarted receiver would
	// refuse promotions with lease_held for a whole TTL).
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		sig := <-term
		logger.Info("stopping", "signal", sig.String())
		ctx, cancel := context.WithTimeout(context.Background(), shutdownGrace)
		defer cancel()
		_ = server.Shutdown(ctx)
	}()
	if err := exporter.ListenAndServe(server, toolkitFlags, *maxConnections, logger); err != nil && !errors.Is(err, http.ErrServerClosed) {
		logger.Error("server stopped", "err", err)
		return 1
	}
	return 0
}

// shutdownGrace is how long a stop waits for requests under way (a scrape
// is bounded by its own timeout) before the receiver and the probes close.
const shutdownGrace = 5 * time.Second

// listenOptions are what every listener of the binary shares.
type listenOptions struct {
	defaultScrapeTimeout time.Duration
	maxConnections       int
}

// checkConfig validates a configuration file the way a start or a reload
// would, and the remediation file when one is given, printing every
// problem it finds.
func checkConfig(path string, rem *remediationFlags, webConfigFile string, stdout, stderr *os.File) int {
	if path == "" {
		fmt.Fprintln(stderr, "--config.check needs --config.file")
		return 2
	}
	cfg, err := config.Load(path)
	if err == nil {
		var s *collector.Scraper
		if s, err = collector.NewScraper(cfg, promslog.NewNopLogger()); err == nil {
			s.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", path, err)
		return 1
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stdout, "%s: warning: %s\n", path, w)
	}
	fmt.Fprintf(stdout, "%s: OK\n", path)
	if *rem.configFile == "" {
		return 0
	}
	if err := rem.check(cfg, webConfigFile); err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: OK\n", *rem.configFile)
	return 0
}
