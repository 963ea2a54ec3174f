package collector

import (
	"fmt"
	"slices"
	"testing"

	"github.com/alecthomas/kingpin/v2"
)

// TestFormerSentinelFlagsStillSetTheRedisCollector: the Redis collector was
// called sentinel before 0.2.0. Its old flags must keep working as hidden
// aliases, so that a unit file with --no-collector.sentinel still turns it
// off after an upgrade, and the last flag given wins as for any kingpin flag.
func TestFormerSentinelFlagsStillSetTheRedisCollector(t *testing.T) {
	t.Cleanup(func() {
		if err := setEnabled("redis", true); err != nil {
			t.Fatal(err)
		}
	})
	for _, tc := range []struct {
		args []string
		want bool
	}{
		{nil, true},
		{[]string{"--no-collector.redis"}, false},
		{[]string{"--no-collector.sentinel"}, false},
		{[]string{"--no-collector.redis", "--collector.sentinel"}, true},
		{[]string{"--no-collector.sentinel", "--collector.redis"}, true},
		{[]string{"--collector.redis", "--no-collector.sentinel"}, false},
	} {
		if _, err := kingpin.CommandLine.Parse(tc.args); err != nil {
			t.Fatalf("%q: %v", tc.args, err)
		}
		if got := Enabled("redis"); got != tc.want {
			t.Errorf("%q: redis collector enabled = %v, want %v", tc.args, got, tc.want)
		}
	}
	if slices.Contains(Names(), "sentinel") {
		t.Errorf("Names() = %v: an alias is no collector", Names())
	}
	for _, f := range kingpin.CommandLine.Model().Flags {
		if f.Name == "collector.sentinel" && !f.Hidden {
			t.Error("--collector.sentinel is listed in --help; the alias should be hidden")
		}
	}
}

// setEnabled overrides the flag of a collector.
func setEnabled(name string, on bool) error {
	registryMu.Lock()
	defer registryMu.Unlock()
	r, ok := factories[name]
	if !ok {
		return fmt.Errorf("unknown collector %q", name)
	}
	*r.enabled = on
	return nil
}
