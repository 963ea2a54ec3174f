package topology

import (
	"fmt"
	"strings"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// tolerance is the servers able to work tasks (actives and promotable
// standbys) − 1. Unknown while any server's ability is unknown.
func (servers IAPServers) tolerance() (int, judgement) {
	active, standby := 0, 0
	var unsure []string
	for _, s := range servers {
		switch s.WorkState() {
		case Unknown:
			unsure = append(unsure, s.Name)
		case True:
			if s.ObservedState() == StateActive {
				active++
			} else {
				standby++
			}
		}
	}
	switch {
	case len(unsure) > 0:
		return 0, unknown("whether %s can work tasks is unknown (worker state, API or health details not read)", strings.Join(unsure, ", "))
	case active+standby == 0:
		return 0, no("no IAP server can work tasks")
	}
	return active + standby - 1, yes("%d active and %d promotable standby servers", active, standby)
}

// Split flags a declared standby working tasks beside the actives: more
// servers work than the design declares active. A standby that works in
// place of a failed active (after a promotion) is a takeover, not two heads.
func (servers IAPServers) Split() SplitBrain {
	var working, rogueStandby []string
	declaredActive := 0
	for _, s := range servers {
		if s.DeclaredRole != config.RoleStandby {
			declaredActive++
		}
		if s.ObservedState() != StateActive {
			continue
		}
		working = append(working, s.Name)
		if s.DeclaredRole == config.RoleStandby {
			rogueStandby = append(rogueStandby, s.Name)
		}
	}
	sb := SplitBrain{Component: ComponentIAP, Name: IAPPool, Active: len(rogueStandby) > 0 && len(working) > declaredActive}
	if sb.Active {
		sb.Reason = fmt.Sprintf("standby %s works tasks: %d servers work (%s) where %d are declared active",
			strings.Join(rogueStandby, ", "), len(working), strings.Join(working, ", "), declaredActive)
	}
	return sb
}

// TotalDevices is how many devices the gateway manages: the sum over its
// inventories, the top-level (Ansible) device list being one of them. The
// recording rule gateway:iap_ha_gateway_devices:sum is the same sum.
func (g Gateway) TotalDevices() int {
	total := 0
	for _, n := range g.Devices {
		total += n
	}
	return total
}
