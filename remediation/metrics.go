package remediation

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/iapha/iap_ha_exporter/internal/namespace"
)

// Reasons an alert led to no action: the values of skipped_total's reason.
const (
	reasonTruncated          = "truncated"                 // Alertmanager left alerts out of the notification
	reasonResolved           = "resolved"                  // the alert is resolved (or was before its firing arrived)
	reasonNotRemediable      = "not_remediable"            // no remediate="promote-standby" label
	reasonDedup              = "dedup"                     // the incident was already decided
	reasonNotOptedIn         = "not_opted_in"              // the failed server's cluster is not listed
	reasonPaused             = "paused"                    // the pause file exists
	reasonCooldown           = "cooldown"                  // an action in the cluster started less than cooldown ago
	reasonBlocked            = "blocked"                   // a failed action awaits acknowledgement
	reasonInProgress         = "in_progress"               // an action of the cluster runs (another process)
	reasonVerificationFailed = "verification_failed"       // the fresh view does not show a safe promotion
	reasonUnreachableHere    = "unreachable_from_receiver" // down only from here: a person must look
	reasonAlreadyRemediated  = "already_remediated"        // a standby was already promoted
	reasonCrossSite          = "cross_site_not_approved"   // the standby is in another site, not approved
	reasonDryRun             = "dry_run"                   // the plan was logged, nothing done
	reasonLeaseHeld          = "lease_held"                // another receiver holds the lease
	reasonLeaseUnavailable   = "lease_unavailable"         // the lease could not be asked for
	reasonVeto               = "pre_check_veto"            // a pre-check script exited non-zero
	reasonSingleVantage      = "single_vantage"            // the fence cannot reach the failed server, seen down from one vantage point
	reasonPeerSeesUp         = "peer_sees_up"              // the fence cannot reach the failed server, and another site's receiver sees it up
)

var skipReasons = []string{
	reasonTruncated, reasonResolved, reasonNotRemediable, reasonDedup, reasonNotOptedIn, reasonPaused,
	reasonCooldown, reasonBlocked, reasonInProgress, reasonVerificationFailed, reasonUnreachableHere,
	reasonAlreadyRemediated, reasonCrossSite, reasonDryRun, reasonLeaseHeld, reasonLeaseUnavailable, reasonVeto,
	reasonSingleVantage, reasonPeerSeesUp, reasonBalancerReaches,
}

// Actions (the action label) and their results.
const (
	actionPromote       = "promote"        // the whole promotion
	actionPreCheck      = "pre_check"      // the pre-check scripts
	actionFence         = "fence"          // deactivating the failed server's workers
	actionActivate      = "activate"       // activating the standby's workers
	actionConfirm       = "confirm"        // workers/status shows the standby working
	actionPostPromotion = "post_promotion" // the site's post-promotion scripts

	resultUnreachable = "unreachable" // fence only: the failed server did not answer
)

var actionResults = map[string][]string{
	actionPromote:       {ResultSuccess, ResultFailure, ResultInterrupted},
	actionPreCheck:      {ResultSuccess, ResultFailure},
	actionFence:         {ResultSuccess, ResultFailure, resultUnreachable},
	actionActivate:      {ResultSuccess, ResultFailure},
	actionConfirm:       {ResultSuccess, ResultFailure},
	actionPostPromotion: {ResultSuccess, ResultFailure},
	actionVerifyRouting: {ResultSuccess, ResultFailure},
}

// Metrics are the receiver's metrics, served with the exporter's.
type Metrics struct {
	actions    *prometheus.CounterVec
	skipped    *prometheus.CounterVec
	blocked    prometheus.Gauge
	declined   *prometheus.GaugeVec
	lastAction prometheus.Gauge
	// vantagePoints is how many independent places the receiver checks a
	// failed server from: its own host and each peer.
	vantagePoints prometheus.Gauge

	compactions  prometheus.Counter
	journalBytes prometheus.Gauge
}

// NewMetrics builds the metrics with every series at zero, so that rules
// see them before the first incident.
func NewMetrics() *Metrics {
	m := &Metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "actions_total",
			Help: "Remediation steps taken, by action (promote, pre_check, fence, activate, confirm, post_promotion) and result.",
		}, []string{"action", "result"}),
		skipped: prometheus.NewCounterVec(prometheus.CounterOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "skipped_total",
			Help: "Alerts the receiver did not act on, by the reason it gave.",
		}, []string{"reason"}),
		blocked: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "blocked",
			Help: "1 while the receiver acts on nothing until a person looks: after a failed remediation (until `iap_ha_exporter remediation ack`), or while its journal cannot be trusted (replaced under it, a line it cannot read, a record it could not write; until repaired and restarted).",
		}),
		declined: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "declined",
			Help: "Incidents still open (not acted on, not resolved) whose last decision declined them for a reason that lasts a while, by reason: each resend is decided again.",
		}, []string{"reason"}),
		lastAction: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "last_action_timestamp_seconds",
			Help: "When a remediation action last started or ended (0: never).",
		}),
		vantagePoints: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "vantage_points",
			Help: "Independent vantage points the receiver checks a failed server from before a promotion whose fence cannot reach it: its own host and each peer receiver; 1 is its own host alone, which cannot tell a failed server from a partition.",
		}),
		compactions: prometheus.NewCounter(prometheus.CounterOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "journal_compactions_total",
			Help: "Times the receiver rewrote its journal as what it still needs.",
		}),
		journalBytes: prometheus.NewGauge(prometheus.GaugeOpts{
			Namespace: namespace.Namespace, Subsystem: "remediation", Name: "journal_bytes",
			Help: "Size of the remediation journal when the receiver last read it.",
		}),
	}
	for action, results := range actionResults {
		for _, r := range results {
			m.actions.WithLabelValues(action, r)
		}
	}
	for _, r := range skipReasons {
		m.skipped.WithLabelValues(r)
	}
	for _, r := range declineReasons {
		m.declined.WithLabelValues(r)
	}
	m.vantagePoints.Set(1)
	return m
}

// Describe implements prometheus.Collector.
func (m *Metrics) Describe(ch chan<- *prometheus.Desc) {
	m.actions.Describe(ch)
	m.skipped.Describe(ch)
	m.blocked.Describe(ch)
	m.declined.Describe(ch)
	m.lastAction.Describe(ch)
	m.vantagePoints.Describe(ch)
	m.compactions.Describe(ch)
	m.journalBytes.Describe(ch)
}

// Collect implements prometheus.Collector.
func (m *Metrics) Collect(ch chan<- prometheus.Metric) {
	m.actions.Collect(ch)
	m.skipped.Collect(ch)
	m.blocked.Collect(ch)
	m.declined.Collect(ch)
	m.lastAction.Collect(ch)
	m.vantagePoints.Collect(ch)
	m.compactions.Collect(ch)
	m.journalBytes.Collect(ch)
}

// show sets the gauges from the journal's state; faulted is true while
// the journal itself blocks the receiver.
func (m *Metrics) show(s *state, faulted bool) {
	m.blocked.Set(map[bool]float64{true: 1}[s.blockedBy != nil || faulted])
	declined := s.declined()
	for _, r := range declineReasons {
		m.declined.WithLabelValues(r).Set(float64(declined[r]))
	}
	if !s.lastActionAt.IsZero() {
		m.lastAction.Set(float64(s.lastActionAt.UnixNano()) / 1e9)
	}
}
