package remediation

import (
	"context"
	"testing"
	"time"
)

// The worker waits for a burst of notifications to end, and never longer
// than the bound however long the burst lasts.
func TestBurstWait(t *testing.T) {
	const quiet, maxDelay = 50 * time.Millisecond, 300 * time.Millisecond
	tests := []struct {
		name string
		// lastAgo is how long before the wait the last notification came
		// (none: 0); feed keeps notifications coming every millisecond.
		lastAgo     time.Duration
		feed        bool
		cancelAfter time.Duration
		// The wait must take at least min and less than max (a generous
		// bound: the machine is shared; an unbounded wait never returns).
		min, max time.Duration
	}{
		{name: "none lately", lastAgo: time.Hour, max: quiet},
		{name: "one just now", lastAgo: time.Nanosecond, min: quiet, max: maxDelay},
		{name: "one a while ago", lastAgo: quiet - 20*time.Millisecond, min: 10 * time.Millisecond, max: quiet},
		{name: "a burst that does not end", feed: true, min: maxDelay, max: maxDelay + 2*time.Second},
		{name: "shutdown during a burst", feed: true, cancelAfter: 20 * time.Millisecond, min: 20 * time.Millisecond, max: maxDelay},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := &burst{quiet: quiet, maxDelay: maxDelay}
			if tt.lastAgo > 0 {
				b.last.Store(time.Now().Add(-tt.lastAgo).UnixNano())
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancelAfter > 0 {
				time.AfterFunc(tt.cancelAfter, cancel)
			}
			if tt.feed {
				b.received()
				go func() {
					tick := time.NewTicker(time.Millisecond)
					defer tick.Stop()
					for {
						select {
						case <-tick.C:
							b.received()
						case <-ctx.Done():
							return
						}
					}
				}()
			}
			start := time.Now()
			returned := make(chan time.Duration, 1)
			go func() {
				b.wait(ctx)
				returned <- time.Since(start)
			}()
			select {
			case took := <-returned:
				if took < tt.min || took >= tt.max {
					t.Errorf("waited %s, want at least %s and less than %s", took, tt.min, tt.max)
				}
			case <-time.After(tt.max + 5*time.Second):
				t.Fatalf("still waiting after %s", tt.max+5*time.Second)
			}
		})
	}
}
