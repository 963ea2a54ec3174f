package gateway

import (
	"context"
	"errors"
	"log/slog"
	"sync"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Prober probes every configured gateway.
type Prober struct {
	clients []*Client
}

// New builds the clients of the configured gateways.
func New(gateways []config.Gateway, logger *slog.Logger) (*Prober, error) {
	p := &Prober{}
	for _, g := range gateways {
		c, err := NewClient(g, logger)
		if err != nil {
			p.Close()
			return nil, err
		}
		p.clients = append(p.clients, c)
	}
	return p, nil
}

// Probe probes every gateway concurrently, each within its own timeout and
// ctx, and returns them in configuration order.
func (p *Prober) Probe(ctx context.Context) topology.Gateways {
	out := make(topology.Gateways, len(p.clients))
	var wg sync.WaitGroup
	for i, c := range p.clients {
		wg.Go(func() { out[i] = c.Probe(ctx) })
	}
	wg.Wait()
	return out
}

// Close releases every client's pooled connections.
func (p *Prober) Close() error {
	var errs []error
	for _, c := range p.clients {
		errs = append(errs, c.Close())
	}
	return errors.Join(errs...)
}
