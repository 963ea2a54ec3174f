package remediation

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// BenchmarkTimeTo202 posts rounds of 200 concurrent notifications, back to
// back, and reports the median and the 99th percentile of the time to the
// 202 (goal: p99 under 10 ms): every one is fsynced before its answer, the
// concurrent ones together. A first round, not timed, dials the
// connections: with it, 200 dials would be the percentile. The client runs
// in the same process, on the same cores, and is net/http's: the process's
// CPU time per post (cpu-µs/post, once the worker has decided every alert)
// is the client's and the receiver's together. scrapebench measures the
// receiver alone, in a process of its own.
func BenchmarkTimeTo202(b *testing.B) {
	e := startEstate(b)
	cfg := e.config(b, nil)
	r := e.startReceiver(b, remediationYAML(b, "dc1", ""), cfg, cfg)
	// An alert the receiver does not act on: the worker's share stays small.
	body := bytes.Replace(readTestdata(b, "firing.json"), []byte(`"remediate":"promote-standby",`), nil, -1)
	timeTo202(b, r.url, r.Receiver, body)
}

// BenchmarkTimeTo202Routed is BenchmarkTimeTo202 through the router of a
// multi-estate exporter, two estates on their own Redis, the posts for one:
// the router's share is a header check, the estate label and a map lookup.
func BenchmarkTimeTo202Routed(b *testing.B) {
	one := routedEstate(b, "one", redisGroup(b), remediationYAML(b, "dc1", ""))
	other := routedEstate(b, "other", otherRedisGroup(b), remediationYAML(b, "dc1", ""))
	rt := startRouter(b, one, other)
	body := bytes.Replace(readTestdata(b, "firing.json"), []byte(`"remediate":"promote-standby",`), nil, -1)
	body = bytes.ReplaceAll(body, []byte(`"labels":{`), []byte(`"labels":{"estate":"one",`))
	timeTo202(b, rt.url+"/", rt.table.Load().estates["one"].rcv, body)
}

// timeTo202 posts body to url, answered by the receiver r.
func timeTo202(b *testing.B, url string, r *Receiver, body []byte) {
	const concurrency = 200
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: concurrency}}
	defer client.CloseIdleConnections()
	round := func() []time.Duration {
		took := make([]time.Duration, concurrency)
		var wg sync.WaitGroup
		for i := range took {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				start := time.Now()
				resp, err := client.Do(req)
				took[i] = time.Since(start)
				if err != nil {
					b.Error(err)
					return
				}
				resp.Body.Close()
				if resp.StatusCode != http.StatusAccepted {
					b.Errorf("post: %s", resp.Status)
				}
			})
		}
		wg.Wait()
		return took
	}
	round()
	hook, err := decodeWebhook(body)
	if err != nil {
		b.Fatal(err)
	}
	processed := &processedCounter{r: r, alertsPerPost: len(hook.Alerts)}
	processed.wait(b, concurrency)
	cpu := processCPU(b)
	var took []time.Duration
	for b.Loop() {
		took = append(took, round()...)
	}
	processed.wait(b, concurrency+len(took))
	cpu = processCPU(b) - cpu
	slices.Sort(took)
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	b.ReportMetric(ms(took[len(took)/2]), "p50-ms")
	b.ReportMetric(ms(took[len(took)*99/100]), "p99-ms")
	b.ReportMetric(float64(cpu.Microseconds())/float64(len(took)), "cpu-µs/post")
}

// processCPU is the process's CPU time so far, user and system.
func processCPU(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkDecodeWebhook decodes a recorded notification, as the handler
// does before journaling it.
func BenchmarkDecodeWebhook(b *testing.B) {
	body := readTestdata(b, "firing.json")
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := decodeWebhook(body); err != nil {
			b.Fatal(err)
		}
	}
}

// processedCounter counts the notifications the worker has decided, by
// the alerts it declined as not remediable (every alert of the benchmark's
// body): a wait that costs the process next to no CPU, and that a
// compaction of the journal does not disturb.
type processedCounter struct {
	r             *Receiver
	alertsPerPost int
}

func (c *processedCounter) wait(tb testing.TB, want int) {
	tb.Helper()
	deadline := time.Now().Add(time.Minute)
	for n := 0; n < want; n = int(testutil.ToFloat64(c.r.metrics.skipped.WithLabelValues(reasonNotRemediable))) / c.alertsPerPost {
		if time.Now().After(deadline) {
			tb.Fatalf("%d notifications processed after a minute, want %d", n, want)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
