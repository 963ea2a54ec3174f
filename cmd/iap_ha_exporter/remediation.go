package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/user"
	"strings"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/iapha/iap_ha_exporter/exporter"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
	"github.com/iapha/iap_ha_exporter/internal/view"
	"github.com/iapha/iap_ha_exporter/remediation"
)

// remediationPath is where the webhook listens, on either listen address.
const remediationPath = "/remediation/alertmanager"

// remediationFlags are the remediation receiver's flags and commands.
type remediationFlags struct {
	configFile, listenAddress *string
	insecure                  *bool

	ack                *kingpin.CmdClause
	ackBy, ackNote     *string
	pause, resume      *kingpin.CmdClause
	pauseBy, pauseNote *string
	promote            *kingpin.CmdClause
	promoteFrom        *string
	promoteTo          *string
	promoteDryRun      *bool
	// promoteDryRunSet: --dry-run or --no-dry-run was given; without
	// either, promote follows the remediation file's dry_run.
	promoteDryRunSet bool

	// estate is --estate of the commands: the estate whose journal and
	// lease they act on, in multi-estate mode.
	estate string
	// estates lists the estates of --config.estates, each with its files;
	// nil in single-estate mode. main sets it (internal/config's estates).
	estates func() ([]estateFiles, error)
}

// estateFiles is one estate of --config.estates as the remediation
// commands need it: its configuration file and its remediation file ("":
// none, the estate is never acted on).
type estateFiles struct {
	Name, ConfigFile, RemediationFile string
}

func addRemediationFlags(app *kingpin.Application) *remediationFlags {
	f := &remediationFlags{
		configFile: app.Flag("remediation.config.file", "Remediation receiver configuration; the receiver is off without it.").
			Default("").String(),
		listenAddress: app.Flag("remediation.listen-address", "Serve the remediation webhook on this address of its own, behind the same web config (default: on the metrics listener, path "+remediationPath+").").
			Default("").String(),
		insecure: app.Flag("remediation.insecure-unauthenticated-webhook", "DANGEROUS: serve the remediation webhook although nothing authenticates it, so that anyone who reaches it can have an IAP server promoted.").
			Bool(),
	}
	app.Command("serve", "Serve the metrics, and the remediation webhook with --remediation.config.file (the default command).").Default()
	rem := app.Command("remediation", "Remediation receiver commands.")
	f.ack = rem.Command("ack", "Acknowledge the failed remediation that blocks the receiver and, in the lease's Redis, every receiver of the estate, after checking the servers.")
	f.ackBy = f.ack.Flag("by", "Who acknowledges (default: the user running the command).").String()
	f.ackNote = f.ack.Flag("note", "What was checked or done.").String()
	f.pause = rem.Command("pause", "Pause every receiver of the estate (a key in the lease's Redis) until resume.")
	f.pauseBy = f.pause.Flag("by", "Who pauses (default: the user running the command).").String()
	f.pauseNote = f.pause.Flag("note", "Why.").String()
	f.resume = rem.Command("resume", "End the estate-wide pause.")
	f.promote = app.Command("promote", "Promote a standby IAP server in place of a failed active one, through the receiver's gates.")
	f.promoteFrom = f.promote.Flag("from", "The failed active server.").Required().String()
	f.promoteTo = f.promote.Flag("to", "The standby to promote (default: the one the receiver would choose).").String()
	f.promoteDryRun = f.promote.Flag("dry-run", "Check every gate and print the plan; change nothing. --no-dry-run acts even where the remediation file says dry_run: true. Default: the file's dry_run.").
		IsSetByUser(&f.promoteDryRunSet).Bool()
	for _, c := range []*kingpin.CmdClause{f.ack, f.pause, f.resume, f.promote} {
		c.Flag("estate", "With --config.estates: the estate whose journal and lease the command acts on (required there).").StringVar(&f.estate)
	}
	return f
}

// forEstate is what a command acts on: opts and the remediation file as
// given in single-estate mode; with --config.estates, the configuration
// and remediation files of the estate --estate names.
func (f *remediationFlags) forEstate(opts exporter.Options) (exporter.Options, string, error) {
	if f.estates == nil {
		if f.estate != "" {
			return opts, "", errors.New("--estate names an estate of --config.estates; without it there is one estate")
		}
		if *f.configFile == "" {
			return opts, "", errors.New("--remediation.config.file is required")
		}
		return opts, *f.configFile, nil
	}
	if *f.configFile != "" {
		return opts, "", errors.New("--remediation.config.file is for one estate: with --config.estates each estate's remediation file is listed with it")
	}
	estates, err := f.estates()
	if err != nil {
		return opts, "", err
	}
	var names []string
	for _, e := range estates {
		names = append(names, e.Name)
		if e.Name != f.estate || f.estate == "" {
			continue
		}
		if e.RemediationFile == "" {
			return opts, "", fmt.Errorf("estate %s has no remediation file: none of its alerts is acted on, and it has no journal or lease", e.Name)
		}
		opts.ConfigFile = e.ConfigFile
		return opts, e.RemediationFile, nil
	}
	if f.estate == "" {
		return opts, "", fmt.Errorf("--estate is required with --config.estates: one of %s", strings.Join(names, ", "))
	}
	return opts, "", fmt.Errorf("--estate %s: no such estate in --config.estates (%s)", f.estate, strings.Join(names, ", "))
}

// run handles the remediation commands; handled is false for any other.
func (f *remediationFlags) run(command string, opts exporter.Options, stdout, stderr *os.File) (code int, handled bool) {
	switch command {
	case f.ack.FullCommand():
		return f.runAck(opts, stdout, stderr), true
	case f.promote.FullCommand():
		return f.runPromote(opts, stdout, stderr), true
	case f.pause.FullCommand(), f.resume.FullCommand():
		return f.runPause(command == f.pause.FullCommand(), opts, stdout, stderr), true
	}
	return 0, false
}

func (f *remediationFlags) runAck(opts exporter.Options, stdout, stderr *os.File) int {
	exp, cfg, _, err := f.load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	defer exp.Close()
	local, shared, err := remediation.AckAll(context.Background(), cfg, exp.Config(), whoever(*f.ackBy), *f.ackNote, opts.Logger)
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	if local != "" {
		fmt.Fprintf(stdout, "acknowledged: %s\nthis receiver unblocks within a second\n", local)
	}
	if shared != "" {
		fmt.Fprintf(stdout, "estate-wide block removed: %s\nthe estate's receivers act again; a receiver whose own journal records the failure stays blocked until acknowledged there\n", shared)
	}
	return 0
}

// runPause sets or removes the estate-wide pause in the lease's Redis.
func (f *remediationFlags) runPause(pause bool, opts exporter.Options, stdout, stderr *os.File) int {
	exp, cfg, _, err := f.load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	defer exp.Close()
	shared, err := remediation.OpenShared(cfg, exp.Config())
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	defer shared.Close()
	ctx := context.Background()
	if pause {
		if err := shared.Pause(ctx, whoever(*f.pauseBy), *f.pauseNote); err != nil {
			fmt.Fprintf(stderr, "iap_ha_exporter: the pause was not written in Redis %s: %v\n", cfg.Lease.Redis, err)
			return 1
		}
		fmt.Fprintln(stdout, "paused: every receiver of the estate decides nothing until `iap_ha_exporter remediation resume`")
		return 0
	}
	was, err := shared.Resume(ctx)
	switch {
	case err != nil:
		fmt.Fprintf(stderr, "iap_ha_exporter: the pause was not removed from Redis %s: %v\n", cfg.Lease.Redis, err)
		return 1
	case was == "":
		fmt.Fprintln(stderr, "iap_ha_exporter: the estate is not paused")
		return 1
	}
	fmt.Fprintf(stdout, "resumed (paused by %s)\n", was)
	return 0
}

// whoever is by, or the user running the command.
func whoever(by string) string {
	if u, err := user.Current(); by == "" && err == nil {
		return u.Username
	}
	return by
}

func (f *remediationFlags) runPromote(opts exporter.Options, stdout, stderr *os.File) int {
	exp, cfg, file, err := f.load(opts)
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	defer exp.Close()
	r, err := remediation.New(remediation.Options{Config: cfg, ExporterConfig: exp.Config(), Scrape: scrapeOf(exp), Logger: opts.Logger})
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	defer r.Close()
	dryRun := *cfg.DryRun
	if f.promoteDryRunSet {
		dryRun = *f.promoteDryRun
	}
	outcome, detail, err := r.Promote(context.Background(), *f.promoteFrom, *f.promoteTo, dryRun)
	if err != nil {
		fmt.Fprintf(stderr, "iap_ha_exporter: %v\n", err)
		return 1
	}
	fmt.Fprintf(stdout, "%s: %s\n", outcome, detail)
	if dryRun && !f.promoteDryRunSet {
		fmt.Fprintf(stdout, "nothing was done: %s says dry_run: true; --no-dry-run acts\n", file)
	}
	if outcome != remediation.OutcomePromoted && !(dryRun && outcome == remediation.OutcomeDryRun) {
		return 1
	}
	return 0
}

// load builds the exporter (its configuration and probes) of the estate
// the command acts on and reads its remediation file against that
// configuration.
func (f *remediationFlags) load(opts exporter.Options) (_ *exporter.Exporter, _ *remediation.Config, file string, err error) {
	opts, file, err = f.forEstate(opts)
	if err != nil {
		return nil, nil, "", err
	}
	exp, err := exporter.New(opts)
	if err != nil {
		return nil, nil, "", err
	}
	cfg, err := remediation.Load(file, exp.Config())
	if err != nil {
		exp.Close()
		return nil, nil, "", fmt.Errorf("%s: %w", file, err)
	}
	return exp, cfg, file, nil
}

// loadChecked reads the remediation file against the exporter's
// configuration estate, and refuses a webhook nothing would authenticate.
func (f *remediationFlags) loadChecked(estate *config.Config, webConfigFile string) (*remediation.Config, error) {
	cfg, err := remediation.Load(*f.configFile, estate)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", *f.configFile, err)
	}
	if err := remediation.CheckAuthentication(cfg, webConfigFile, *f.insecure); err != nil {
		return nil, fmt.Errorf("%s: %w", *f.configFile, err)
	}
	return cfg, nil
}

// warnInsecure says what --remediation.insecure-unauthenticated-webhook
// changes: nothing where the remediation file has credentials, the
// check that the web configuration still authenticates where it does, and
// everything where nothing authenticates the webhook.
func (f *remediationFlags) warnInsecure(cfg *remediation.Config, webConfigFile string, logger *slog.Logger) {
	by, err := remediation.Authenticator(cfg, webConfigFile)
	switch {
	case cfg.Auth.Enabled():
		logger.Warn("--remediation.insecure-unauthenticated-webhook has no effect: the webhook requires " + by)
	case err == nil && by != "":
		logger.Warn("--remediation.insecure-unauthenticated-webhook: the webhook is authenticated by " + by +
			" today, but goes on accepting notifications, from anyone, should that file stop authenticating it")
	default:
		logger.Warn("THE REMEDIATION WEBHOOK ACCEPTS UNAUTHENTICATED NOTIFICATIONS: anyone who reaches it can have an IAP server promoted")
	}
}

// check reads the remediation file against estate as a start would, for
// --config.check: its problems, and a webhook nothing would authenticate.
func (f *remediationFlags) check(estate *config.Config, webConfigFile string) error {
	_, err := f.loadChecked(estate, webConfigFile)
	return err
}

// scrapeOf gives the receiver probe rounds of its own: a round a Prometheus
// scrape began earlier may predate what the receiver must see.
func scrapeOf(exp *exporter.Exporter) remediation.ScrapeFunc {
	return func(ctx context.Context) (*topology.Observation, error) {
		s, err := exp.ScrapeFresh(ctx)
		return s, err
	}
}

// serve starts the receiver when configured: on mux, or on a listener of
// its own behind the same web config. The returned func stops it; the
// receiver is nil when remediation is not configured.
func (f *remediationFlags) serve(exp *exporter.Exporter, mux *http.ServeMux, toolkit *web.FlagConfig, lo listenOptions, logger *slog.Logger) (*remediation.Receiver, func(), error) {
	if *f.configFile == "" {
		return nil, func() {}, nil
	}
	cfg, err := f.loadChecked(exp.Config(), *toolkit.WebConfigFile)
	if err != nil {
		return nil, nil, err
	}
	if *f.insecure {
		f.warnInsecure(cfg, *toolkit.WebConfigFile, logger)
	}
	metrics := remediation.NewMetrics()
	if err := exp.Registry().Register(metrics); err != nil {
		return nil, nil, err
	}
	r, err := remediation.New(remediation.Options{
		Config: cfg, ExporterConfig: exp.Config(), Scrape: scrapeOf(exp), Logger: logger, Metrics: metrics,
		WebConfigFile: *toolkit.WebConfigFile, InsecureWebhook: *f.insecure,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := r.Start(); err != nil {
		r.Close()
		return nil, nil, err
	}
	logger.Info("remediation receiver started", "path", remediationPath, "dry_run", *cfg.DryRun, "site", cfg.Site)
	// A reload reads the remediation file again against the exporter's new
	// configuration: both apply, or neither.
	exp.AddReloader(func(estate *config.Config) (apply, discard func(), err error) {
		cfg, err := f.loadChecked(estate, *toolkit.WebConfigFile)
		if err != nil {
			return nil, nil, err
		}
		if apply, discard, err = r.Prepare(cfg, estate); err != nil {
			return nil, nil, fmt.Errorf("%s: %w", *f.configFile, err)
		}
		return apply, discard, nil
	})
	stop := f.mount(r, r.PeerHandler(), mux, toolkit, lo, logger)
	return r, func() { stop(); r.Close() }, nil
}

// serveEstates starts the remediation of a multi-estate exporter: a
// router with one receiver per estate that has a remediation file, on the
// one webhook path. Its own counters go to registry, the exporter's
// (/metrics); each estate's receiver metrics are router.Collector(name),
// registered once in the estate's registry (/probe?estate=NAME). A reload
// of the estates calls router.Reload with them. Every estate's Scrape must follow the
// estate's current instance (see remediation.Estate). The returned func
// stops it.
func (f *remediationFlags) serveEstates(estates []remediation.Estate, mux *http.ServeMux, toolkit *web.FlagConfig, lo listenOptions, registry prometheus.Registerer, logger *slog.Logger) (*remediation.Router, func(), error) {
	if *f.configFile != "" {
		return nil, nil, errors.New("--remediation.config.file is for one estate: with --config.estates each estate's remediation file is listed with it")
	}
	rt, err := remediation.NewRouter(estates, remediation.RouterOptions{
		Logger: logger, WebConfigFile: *toolkit.WebConfigFile, InsecureWebhook: *f.insecure,
	})
	if err != nil {
		return nil, nil, err
	}
	if err := registry.Register(rt); err != nil {
		rt.Close()
		return nil, nil, err
	}
	stop := f.mount(rt, rt.PeerHandler(), mux, toolkit, lo, logger)
	return rt, func() { stop(); rt.Close() }, nil
}

// checkEstates reads every estate's remediation file as a start would,
// for --config.check: every problem, each naming its estate.
func (f *remediationFlags) checkEstates(estates []remediation.Estate, webConfigFile string) []error {
	return remediation.CheckEstates(estates, remediation.RouterOptions{WebConfigFile: webConfigFile, InsecureWebhook: *f.insecure})
}

// mount serves the webhook and the peer endpoint on mux, or on a listener
// of their own behind the same web config; the returned func stops that
// listener.
func (f *remediationFlags) mount(webhook, peer http.Handler, mux *http.ServeMux, toolkit *web.FlagConfig, lo listenOptions, logger *slog.Logger) func() {
	if *f.listenAddress == "" {
		mux.Handle(remediationPath, webhook)
		mux.Handle(remediation.PeerPath, peer)
		return func() {}
	}
	own := http.NewServeMux()
	own.Handle(remediationPath, webhook)
	own.Handle(remediation.PeerPath, peer)
	server := exporter.NewServer(own, lo.defaultScrapeTimeout, logger)
	systemd := false
	go func() {
		err := exporter.ListenAndServe(server, &web.FlagConfig{
			WebListenAddresses: &[]string{*f.listenAddress},
			WebSystemdSocket:   &systemd,
			WebConfigFile:      toolkit.WebConfigFile,
		}, lo.maxConnections, logger)
		if !errors.Is(err, http.ErrServerClosed) {
			// Alertmanager cannot reach a receiver that does not listen:
			// stop, as the exporter does when its own listener fails.
			logger.Error("remediation listener stopped", "err", err)
			os.Exit(1)
		}
	}()
	return func() { server.Close() }
}

// remediationState is a receiver's state as the topology page shows it.
func remediationState(st remediation.Status) view.RemediationState {
	return view.RemediationState{Enabled: true, DryRun: st.DryRun, Paused: st.Paused, Blocked: st.Blocked, BlockedReason: st.BlockedReason,
		SingleVantage: st.SingleVantage, AllowSingleVantage: st.AllowSingleVantage, LastAction: st.LastAction, LastTime: st.LastTime}
}
