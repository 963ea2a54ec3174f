// Package probe holds what the probes of every component share. The
// probes themselves live in its subpackages, one per component: they talk to
// the world and return typed state, and know nothing of Prometheus.
package probe

import (
	"context"
	"errors"
	"fmt"
)

// Target is one probed instance of a component: a replica set, a Sentinel
// group, a RabbitMQ cluster, a gateway. Probe records a failure in the state
// it returns, never as an error: a target that is down is a fact.
type Target[S any] interface {
	Probe(ctx context.Context) S
	// Unfinished is the state of a target whose probe did not finish by
	// the deadline: what a probe cut at its deadline reports, down with
	// err as the reason.
	Unfinished(err error) S
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
// timeout, and returns their states in configuration order. It returns by
// ctx's end even where a target overruns it: the targets that finished
// report what they found, the others are Unfinished, so that one hung
// target never hides the rest.
func (s *Set[S]) Probe(ctx context.Context) []S {
	out := make([]S, len(s.targets))
	// Each goroutine writes its own slot of results, read only once its
	// index arrives on done; one abandoned at the deadline writes unread.
	results := make([]S, len(s.targets))
	done := make(chan int, len(s.targets))
	for i, t := range s.targets {
		go func() {
			results[i] = t.Probe(ctx)
			done <- i
		}()
	}
	finished := make([]bool, len(s.targets))
	for pending := len(s.targets); pending > 0; pending-- {
		select {
		case i := <-done:
			out[i], finished[i] = results[i], true
		case <-ctx.Done():
			// Those that finished as the deadline came still count.
			for drained := false; !drained; {
				select {
				case i := <-done:
					out[i], finished[i] = results[i], true
				default:
					drained = true
				}
			}
			err := fmt.Errorf("probe did not finish before the scrape deadline: %w", ctx.Err())
			for i, t := range s.targets {
				if !finished[i] {
					out[i] = t.Unfinished(err)
				}
			}
			return out
		}
	}
	return out
}

// Targets are the targets in configuration order.
func (s *Set[S]) Targets() []Target[S] { return s.targets }

// Close releases every target's pooled connections.
func (s *Set[S]) Close() error {
	var errs []error
	for _, t := range s.targets {
		errs = append(errs, t.Close())
	}
	return errors.Join(errs...)
}
