package probe

import (
	"context"
	"errors"
	"slices"
	"testing"
	"testing/synctest"
	"time"
)

type fakeTarget struct {
	name   string
	delay  time.Duration
	closed *[]string
}

func (f fakeTarget) Probe(ctx context.Context) string {
	select {
	case <-time.After(f.delay):
		return f.name
	case <-ctx.Done():
		return f.name + " cut"
	}
}

// Unfinished is what Probe says when cut.
func (f fakeTarget) Unfinished(error) string { return f.name + " cut" }

func (f fakeTarget) Close() error {
	*f.closed = append(*f.closed, f.name)
	return nil
}

// On synctest's clock: the delays and the deadline are exact, so b and c
// finish before the deadline however busy the machine, if they run at once.
func TestSetKeepsOrderAndRunsConcurrently(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		var closed []string
		build := func(name string) (Target[string], error) {
			// The first target is the slowest: its result must still come first.
			delay := 60 * time.Millisecond
			if name == "a" {
				delay = 300 * time.Millisecond
			}
			return fakeTarget{name: name, delay: delay, closed: &closed}, nil
		}
		s, err := NewSet([]string{"a", "b", "c"}, build)
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		got := s.Probe(ctx)
		// Run in turn, b and c would have been probed after a was cut (or c
		// after b, 120 ms); run together they finish before the deadline.
		if want := []string{"a cut", "b", "c"}; !slices.Equal(got, want) {
			t.Errorf("Probe = %v, want %v", got, want)
		}
		s.Close()
		if want := []string{"a", "b", "c"}; !slices.Equal(closed, want) {
			t.Errorf("closed %v, want %v", closed, want)
		}
	})
}

func TestNewSetClosesWhatItBuiltOnError(t *testing.T) {
	var closed []string
	_, err := NewSet([]string{"a", "b", "bad"}, func(name string) (Target[string], error) {
		if name == "bad" {
			return nil, errors.New("bad target")
		}
		return fakeTarget{name: name, closed: &closed}, nil
	})
	if err == nil || !slices.Equal(closed, []string{"a", "b"}) {
		t.Fatalf("err %v, closed %v; want an error and a, b closed", err, closed)
	}
}

// hungTarget ignores its context: a probe stuck where no deadline reaches.
type hungTarget struct{ release chan struct{} }

func (h hungTarget) Probe(context.Context) string { <-h.release; return "hung" }
func (h hungTarget) Unfinished(err error) string  { return "unfinished: " + err.Error() }
func (h hungTarget) Close() error                 { return nil }

// TestSetReportsWhatFinishedAtTheDeadline: a target that overruns the
// deadline (here one that ignores it altogether) is reported unfinished and
// never hides the targets that did finish.
func TestSetReportsWhatFinishedAtTheDeadline(t *testing.T) {
	var closed []string
	hung := hungTarget{release: make(chan struct{})}
	defer close(hung.release)
	s := &Set[string]{targets: []Target[string]{fakeTarget{name: "a", closed: &closed}, hung, fakeTarget{name: "c", closed: &closed}}}
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	got := s.Probe(ctx)
	want := []string{"a", "unfinished: probe did not finish before the scrape deadline: context deadline exceeded", "c"}
	if !slices.Equal(got, want) {
		t.Errorf("Probe = %q, want %q", got, want)
	}
}
