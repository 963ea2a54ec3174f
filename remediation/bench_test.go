package remediation

import (
	"bytes"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"
)

// BenchmarkTimeTo202 posts rounds of 200 concurrent notifications and
// reports the 99th percentile of the time to the 202 (goal: under 10 ms):
// every one is fsynced before its answer, the concurrent ones together.
func BenchmarkTimeTo202(b *testing.B) {
	e := startEstate(b)
	cfg := e.config(b, nil)
	r := e.startReceiver(b, remediationYAML(b, "dc1", ""), cfg, cfg)
	// An alert the receiver does not act on: the worker's share stays small.
	body := bytes.Replace(readTestdata(b, "firing.json"), []byte(`"remediate":"promote-standby",`), nil, -1)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 200}}
	const concurrency = 200
	var latencies []time.Duration
	var mu sync.Mutex
	b.ResetTimer()
	for b.Loop() {
		var wg sync.WaitGroup
		for range concurrency {
			wg.Go(func() {
				req, _ := http.NewRequest(http.MethodPost, r.url, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+testToken)
				start := time.Now()
				resp, err := client.Do(req)
				took := time.Since(start)
				if err != nil || resp.StatusCode != http.StatusAccepted {
					b.Errorf("post: %v %v", err, resp)
					return
				}
				resp.Body.Close()
				mu.Lock()
				latencies = append(latencies, took)
				mu.Unlock()
			})
		}
		wg.Wait()
	}
	b.StopTimer()
	slices.Sort(latencies)
	p99 := latencies[len(latencies)*99/100]
	b.ReportMetric(float64(p99.Microseconds())/1000, "p99-ms")
	b.ReportMetric(float64(latencies[len(latencies)/2].Microseconds())/1000, "p50-ms")
}
