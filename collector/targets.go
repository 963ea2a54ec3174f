package collector

import (
	"log/slog"
	"sync"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// targetLog logs a target's failure once when it starts failing and once
// when it answers again, at info: the operator's first scrape against a
// wrong address or password says why, and a target down for a day does not
// fill the log at every scrape. The metrics carry the state between.
type targetLog struct {
	logger *slog.Logger
	mu     sync.Mutex
	// failing holds the targets whose last report was a failure.
	failing map[targetKey]bool
}

type targetKey struct{ component, name string }

// targetReport is one target's outcome in a scrape; err is empty when it
// answered.
type targetReport struct {
	targetKey
	err string
}

func newTargetLog(logger *slog.Logger) *targetLog {
	return &targetLog{logger: logger, failing: map[targetKey]bool{}}
}

// observe logs the targets of snap whose state changed since the previous
// scrape. A target a scrape did not report (its probe failed as a whole,
// logged as such) keeps its state.
func (l *targetLog) observe(snap *topology.Snapshot) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, t := range targetReports(snap) {
		was := l.failing[t.targetKey]
		switch {
		case t.err != "" && !was:
			l.failing[t.targetKey] = true
			l.logger.Info("target failed", "component", t.component, "target", t.name, "err", t.err)
		case t.err == "" && was:
			delete(l.failing, t.targetKey)
			l.logger.Info("target answers again", "component", t.component, "target", t.name)
		}
	}
}

// carryOver takes old's failing targets as this log's own.
func (l *targetLog) carryOver(old *targetLog) {
	old.mu.Lock()
	defer old.mu.Unlock()
	l.mu.Lock()
	defer l.mu.Unlock()
	for k := range old.failing {
		l.failing[k] = true
	}
}

// targetReports lists every target a snapshot reports on: each IAP server,
// replica set, Sentinel, Redis data node, RabbitMQ cluster and gateway.
func targetReports(snap *topology.Snapshot) []targetReport {
	var out []targetReport
	add := func(component, name string, up bool, err string) {
		if !up && err == "" {
			err = "not answering"
		}
		out = append(out, targetReport{targetKey{component, name}, err})
	}
	for _, s := range snap.IAP {
		add("iap", s.Name, s.Up, s.Error)
	}
	for _, rs := range snap.MongoDB {
		add("mongodb", rs.Name, rs.Up, rs.Error)
	}
	for _, g := range snap.Redis {
		for _, v := range g.Sentinels {
			add("sentinel", g.Name+"/"+v.Address, v.Up, v.Error)
		}
		for _, n := range g.Nodes {
			add("redis", g.Name+"/"+n.Address, n.Up, n.Error)
		}
	}
	for _, c := range snap.RabbitMQ {
		add("rabbitmq", c.Name, c.Up, c.Error)
	}
	for _, g := range snap.Gateways {
		add("gateway", g.Name, g.Up, g.Error)
	}
	return out
}
