package topology

import "github.com/iapha/iap_ha_exporter/internal/config"

// Verdict is the HA model's judgement of one Snapshot.
type Verdict struct {
	Components   []ComponentVerdict  `json:"components"`
	Sites        []SiteVerdict       `json:"sites"`
	Architecture ArchitectureVerdict `json:"architecture"`
	SplitBrain   []SplitBrain        `json:"split_brain"`
}

// ComponentVerdict says how many more failures one instance of a component survives.
type ComponentVerdict struct {
	Component         string `json:"component"`
	Name              string `json:"name"`
	FailuresTolerated int    `json:"failures_tolerated"`
	Reason            string `json:"reason,omitempty"`
}

// SiteVerdict says whether losing a whole site leaves the estate working.
type SiteVerdict struct {
	Site       string `json:"site"`
	Survivable bool   `json:"survivable"`
	Reason     string `json:"reason,omitempty"`
}

// ArchitectureVerdict compares the observed architecture class with the declared one.
type ArchitectureVerdict struct {
	Observed string `json:"observed"`
	Expected string `json:"expected"`
	Reason   string `json:"reason,omitempty"`
}

// SplitBrain flags one instance of a component with two heads.
type SplitBrain struct {
	Component string `json:"component"`
	Name      string `json:"name"`
	Active    bool   `json:"active"`
	Reason    string `json:"reason,omitempty"`
}

// Evaluate runs the HA model over one Snapshot.
func Evaluate(cfg *config.Config, s *Snapshot) *Verdict {
	return &Verdict{}
}
