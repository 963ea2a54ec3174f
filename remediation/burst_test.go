package remediation

import (
	"context"
	"testing"
	"testing/synctest"
	"time"
)

// The worker waits for a burst of notifications to end, and never longer
// than the bound however long the burst lasts. The wait runs on synctest's
// clock, which moves only when every goroutine of the test waits: the
// durations are exact whatever else the machine runs.
func TestBurstWait(t *testing.T) {
	const quiet, maxDelay = 50 * time.Millisecond, 300 * time.Millisecond
	tests := []struct {
		name string
		// notified: a notification came lastAgo before the wait; feed keeps
		// them coming every millisecond; cancelAfter ends the context.
		notified    bool
		lastAgo     time.Duration
		feed        bool
		cancelAfter time.Duration
		want        time.Duration
	}{
		{name: "none yet", want: 0},
		{name: "none lately", notified: true, lastAgo: time.Hour, want: 0},
		{name: "one just now", notified: true, want: quiet},
		{name: "one a while ago: the rest of quiet", notified: true, lastAgo: quiet - 20*time.Millisecond, want: 20 * time.Millisecond},
		{name: "a burst that does not end", feed: true, want: maxDelay},
		{name: "shutdown during a burst", feed: true, cancelAfter: 20 * time.Millisecond, want: 20 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				b := &burst{}
				if tt.notified {
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
					b.wait(ctx, quiet, maxDelay)
					returned <- time.Since(start)
				}()
				select {
				case took := <-returned:
					if took != tt.want {
						t.Errorf("waited %s, want %s", took, tt.want)
					}
				case <-time.After(time.Hour):
					t.Fatal("still waiting after an hour")
				}
			})
		})
	}
}
