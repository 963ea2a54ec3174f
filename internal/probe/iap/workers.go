package iap

import (
	"context"
	"fmt"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// Health is one direct /health/status check of a server.
type Health struct {
	// Answered: the server sent an HTTP answer at all (a 503 is an answer).
	Answered bool
	// Up: the answer was a 200 with a readable body.
	Up bool
	// Reason says why the server is not up.
	Reason string
}

// CheckHealth asks the named server's /health/status alone, under the health
// timeout. The remediation receiver makes this check itself rather than
// trusting a snapshot, and uses Answered to know whether fencing can reach it.
func (p *Client) CheckHealth(ctx context.Context, name string) (Health, error) {
	s, err := p.server(name)
	if err != nil {
		return Health{}, err
	}
	var out topology.IAPServer
	answered := p.health(ctx, s, &out)
	return Health{Answered: answered, Up: out.Up, Reason: out.Error}, nil
}

// Workers reads whether the named server's task and job workers run now
// (the job worker is Unknown on releases before 2023.1).
func (p *Client) Workers(ctx context.Context, name string) (task, job topology.Tristate, err error) {
	s, err := p.server(name)
	if err != nil {
		return topology.Unknown, topology.Unknown, err
	}
	if s.session == nil {
		return topology.Unknown, topology.Unknown, fmt.Errorf("iap server %s: the worker routes need credentials, none configured", name)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	w, err := s.workers(ctx)
	if err != nil {
		return topology.Unknown, topology.Unknown, fmt.Errorf("iap server %s: %w", name, err)
	}
	return w.Task, w.Job, nil
}
