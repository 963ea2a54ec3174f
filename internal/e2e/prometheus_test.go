package e2e

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/estate"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

// prometheus is a real Prometheus scraping one exporter every second and
// evaluating the lab's copy of the rule pack (every wait divided by
// estate.RuleSpeedup): an alert's verdict on the series the built binary
// serves, not on series written by hand.
type prometheus struct {
	url string
}

func startPrometheus(t *testing.T, target string) *prometheus {
	t.Helper()
	dir := t.TempDir()
	rules, err := estate.LabRules("../../rules/iap_ha.*.yml", dir)
	if err != nil {
		t.Fatal(err)
	}
	p, err := lab.StartPrometheus(lab.PrometheusOptions{Dir: dir, Targets: []string{target}, RuleFiles: rules})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := p.Stop(); err != nil {
			t.Error(err)
		}
	})
	return &prometheus{url: p.URL()}
}

var promClient = &http.Client{Timeout: 5 * time.Second}

// query runs an instant PromQL query.
func (p *prometheus) query(q string) (model.Vector, error) {
	res, err := promClient.Get(p.url + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		return nil, err
	}
	defer res.Body.Close()
	var answer struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			ResultType string       `json:"resultType"`
			Result     model.Vector `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(res.Body).Decode(&answer); err != nil {
		return nil, fmt.Errorf("%s: %s: %w", q, res.Status, err)
	}
	if answer.Status != "success" || answer.Data.ResultType != "vector" {
		return nil, fmt.Errorf("%s: %s %s (result type %q)", q, answer.Status, answer.Error, answer.Data.ResultType)
	}
	return answer.Data.Result, nil
}

// waitSample waits until q gives exactly one sample of value want.
func (p *prometheus) waitSample(t *testing.T, timeout time.Duration, q string, want float64) {
	t.Helper()
	var last error
	for deadline := time.Now().Add(timeout); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		vec, err := p.query(q)
		if err == nil && len(vec) == 1 && float64(vec[0].Value) == want {
			return
		}
		last = err
		if err == nil {
			last = fmt.Errorf("got %v", vec)
		}
	}
	t.Fatalf("Prometheus never answered %s with one sample of %v within %s: %v", q, want, timeout, last)
}

// firingWhile is a query giving 1 when alertname fires with the given label
// matchers (`master="g1"`, say) at an evaluation where every condition (a
// filtering PromQL comparison) holds as well: the alert and the state that
// should cause it, seen at one instant.
func firingWhile(alertname, matchers string, conditions ...string) string {
	q := fmt.Sprintf(`count(ALERTS{alertname=%q,alertstate="firing",%s})`, alertname, matchers)
	for _, c := range conditions {
		q += " and on () (" + c + ")"
	}
	return q
}

// neverAlerted checks that alertname was not even pending, with the given
// matchers, at any evaluation in the last window: an alert is pending from
// the first evaluation its expression holds, so this is silence for the
// whole window, not at one instant.
func (p *prometheus) neverAlerted(t *testing.T, window time.Duration, alertname, matchers string) {
	t.Helper()
	q := fmt.Sprintf(`count_over_time(ALERTS{alertname=%q,%s}[%s])`, alertname, matchers, model.Duration(window))
	vec, err := p.query(q)
	if err != nil {
		t.Fatal(err)
	}
	if len(vec) != 0 {
		t.Errorf("%s{%s} was in ALERTS in the last %s: %v", alertname, matchers, window, vec)
	}
}
