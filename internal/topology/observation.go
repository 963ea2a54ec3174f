package topology

import (
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// ProbeResult is how one collector's probe went in one scrape.
type ProbeResult struct {
	Duration time.Duration
	Err      error
}

// Observation is everything one scrape learned: the configuration it ran
// under, the Snapshot all probes filled, the Verdict of the HA model over it,
// and how each collector's probe went. It is plain data: the metrics, the
// topology page and the remediation receiver all read the same Observation.
type Observation struct {
	Config   *config.Config
	Snapshot *Snapshot
	Verdict  *Verdict
	Results  map[string]ProbeResult
}
