//go:build crashtest

package remediation

import (
	"os"
	"syscall"
)

// With the tag crashtest, IAP_HA_CRASH_AT=<step> makes the process kill
// itself with SIGKILL (kill -9: no deferred call, no flush) the first time
// it reaches that step, so that a test can crash the real receiver at each
// step of an action. Never built into a release.
func init() {
	if at := os.Getenv("IAP_HA_CRASH_AT"); at != "" {
		crashAt = func(step string) {
			if step == at {
				_ = syscall.Kill(os.Getpid(), syscall.SIGKILL)
				select {}
			}
		}
	}
}
