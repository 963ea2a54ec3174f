package remediation

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe/loadbalancer"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// The load balancer is the receiver's second vantage point: its health
// checks come from where users come in, not from the receiver's host.
const (
	// reasonBalancerReaches: a balancer's checks still reach the server
	// the receiver sees down: a partition between them, not a failure.
	reasonBalancerReaches = "balancer_reaches"
	// actionVerifyRouting: after the promotion, every balancer that
	// answers routes to the promoted server.
	actionVerifyRouting = "verify_routing"
)

// balancers is the load balancers' view as a vantage point: their health
// checks come from where users come in. One whose checks still reach the
// failed server sees it up: a partition between this host and a live
// server, and no standby is started beside it. One whose checks fail on it
// confirms the failure. Balancers that do not know the server, or run no
// check on it (MAINT, a vip it did not answer), say nothing.
type balancers struct {
	exporterCfg *config.Config
	logger      *slog.Logger
}

func newBalancers(exporterCfg *config.Config, logger *slog.Logger) *balancers {
	return &balancers{exporterCfg: exporterCfg, logger: logger}
}

func (b *balancers) String() string {
	names := make([]string, 0, len(b.exporterCfg.LoadBalancers))
	for _, lb := range b.exporterCfg.LoadBalancers {
		names = append(names, lb.Name)
	}
	return "the load balancers (" + strings.Join(names, ", ") + ")"
}

func (b *balancers) seesUpReason() string { return reasonBalancerReaches }

// sees probes every balancer afresh, once.
func (b *balancers) sees(ctx context.Context, server string) (sighting, error) {
	probes, err := loadbalancer.New(b.exporterCfg.LoadBalancers, b.exporterCfg.IAP.Servers, b.logger)
	if err != nil {
		return sighting{}, err
	}
	defer probes.Close()
	var reach, fail, silent []string
	for _, v := range topology.Balancers(&topology.Snapshot{IAP: configuredServers(b.exporterCfg), LoadBalancers: probes.Probe(ctx)}) {
		i := slices.IndexFunc(v.Servers, func(s topology.BalancerServerVerdict) bool { return s.Server == server })
		switch {
		case !v.Up:
			silent = append(silent, v.Balancer+" did not answer")
		case i < 0 || v.Servers[i].Reaches == topology.Unknown:
			silent = append(silent, v.Balancer+" runs no check on "+server)
		case v.Servers[i].Reaches == topology.True:
			reach = append(reach, v.Balancer)
		default:
			fail = append(fail, v.Balancer)
		}
	}
	switch {
	case len(reach) > 0:
		return sighting{Up: true, Detail: "the health check of " + strings.Join(reach, ", ") + " passes"}, nil
	case len(fail) > 0:
		return sighting{Detail: "the health check of " + strings.Join(fail, ", ") + " fails"}, nil
	}
	return sighting{}, errors.New(strings.Join(silent, "; "))
}

// configuredServers are the configured IAP servers by name, for the model
// to map the balancers' servers to (a vip's answers by host name).
func configuredServers(cfg *config.Config) []topology.IAPServer {
	out := make([]topology.IAPServer, 0, len(cfg.IAP.Servers))
	for _, s := range cfg.IAP.Servers {
		out = append(out, topology.IAPServer{Name: s.Name})
	}
	return out
}

// verifyRouting waits, up to the confirm timeout, until every balancer that
// answers routes to the promoted server, probing the balancers afresh every
// half second. A balancer sends traffic to a backup only once every normal
// server is down, so this usually follows the post-promotion scripts that
// move the server into the pool. Without configured balancers there is
// nothing to verify.
func (r *Receiver) verifyRouting(ctx context.Context, plan *Plan) error {
	estate := r.cur.exporterCfg
	if len(estate.LoadBalancers) == 0 {
		return nil
	}
	// The model maps the balancer's servers to the configured ones; a vip's
	// answers name them by serverId, which only the IAP probe reads.
	iap := configuredServers(estate)
	if slices.ContainsFunc(estate.LoadBalancers, func(b config.LoadBalancer) bool { return b.Kind == config.BalancerVIP }) {
		scrape, err := r.scrape(ctx)
		if err != nil {
			return fmt.Errorf("fresh probes for the vip's server ids: %w", err)
		}
		iap = scrape.Snapshot.IAP
	}
	probes, err := loadbalancer.New(estate.LoadBalancers, estate.IAP.Servers, r.logger)
	if err != nil {
		return err
	}
	defer probes.Close()
	ctx, cancel := context.WithTimeout(ctx, time.Duration(r.cur.cfg.ConfirmTimeout))
	defer cancel()
	for {
		notYet := routesTo(probes.Probe(ctx), iap, plan.To)
		if notYet == nil {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("no load balancer routes to %s within %s: %w", plan.To, r.cur.cfg.ConfirmTimeout, notYet)
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// routesTo is nil when at least one balancer answered and every one that
// did routes to server; iap maps a vip's answers to servers.
func routesTo(balancers []topology.LoadBalancer, iap []topology.IAPServer, server string) error {
	var missing []string
	answered := 0
	for _, b := range topology.Balancers(&topology.Snapshot{IAP: iap, LoadBalancers: balancers}) {
		if !b.Up {
			continue
		}
		answered++
		i := slices.IndexFunc(b.Servers, func(s topology.BalancerServerVerdict) bool { return s.Server == server && s.Routed })
		if i < 0 {
			missing = append(missing, b.Balancer)
		}
	}
	switch {
	case answered == 0:
		return fmt.Errorf("no load balancer answered")
	case len(missing) > 0:
		return fmt.Errorf("%s do(es) not route to %s", strings.Join(missing, ", "), server)
	}
	return nil
}

// verifyRoutingStep runs verifyRouting as an audited step of the promotion.
func (r *Receiver) verifyRoutingStep(ctx context.Context, incident string, plan *Plan) error {
	if len(r.cur.exporterCfg.LoadBalancers) == 0 {
		return nil
	}
	err := r.verifyRouting(ctx, plan)
	result := ResultSuccess
	if err != nil {
		result = ResultFailure
	}
	r.metrics.actions.WithLabelValues(actionVerifyRouting, result).Inc()
	r.cur.audit.step(incident, actionVerifyRouting, result, "server", plan.To, "error", err)
	return err
}
