package gateway

import (
	"log/slog"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// New builds one Client per configured gateway, probed together as a
// probe.Set.
func New(gateways []config.Gateway, logger *slog.Logger) (*probe.Set[topology.Gateway], error) {
	return probe.NewSet(gateways, func(g config.Gateway) (probe.Target[topology.Gateway], error) {
		return NewClient(g, logger)
	})
}

// KeepLogins gives each gateway of p the token of the gateway of old with
// the same settings.
func KeepLogins(p, old *probe.Set[topology.Gateway]) {
	for _, t := range p.Targets() {
		c, ok := t.(*Client)
		if !ok {
			continue
		}
		for _, o := range old.Targets() {
			if oc, ok := o.(*Client); ok && oc.cfg.Name == c.cfg.Name {
				c.KeepLogin(oc)
			}
		}
	}
}
