// Package probe holds what the probes of every component share. The
// probes themselves live in its subpackages, one per component: they talk to
// the world and return typed state, and know nothing of Prometheus.
package probe

import (
	"context"
	"errors"
	"sync"
)

// Target is one probed instance of a component: a replica set, a Sentinel
// group, a RabbitMQ cluster, a gateway. Probe records a failure in the state
// it returns, never as an error: a target that is down is a fact.
type Target[S any] interface {
	Probe(ctx context.Context) S
	Close() error
}

// Set probes every configured instance of one component.
type Set[S any] struct {
	targets []Target[S]
}

// NewSet builds one target per configuration; on an error it closes what it
// had built.
func NewSet[C, S any](configs []C, build func(C) (Target[S], error)) (*Set[S], error) {
	s := &Set[S]{}
	for _, c := range configs {
		t, err := build(c)
		if err != nil {
			s.Close()
			return nil, err
		}
		s.targets = append(s.targets, t)
	}
	return s, nil
}

// Probe probes every target concurrently, each within ctx and its own
// timeout, and returns their states in configuration order.
func (s *Set[S]) Probe(ctx context.Context) []S {
	out := make([]S, len(s.targets))
	var wg sync.WaitGroup
	for i, t := range s.targets {
		wg.Go(func() { out[i] = t.Probe(ctx) })
	}
	wg.Wait()
	return out
}

// Close releases every target's pooled connections.
func (s *Set[S]) Close() error {
	var errs []error
	for _, t := range s.targets {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}
