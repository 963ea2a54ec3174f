package remediation

import (
	"errors"
	"fmt"
	"time"

	jsonv2 "github.com/go-json-experiment/json"
	jsonv1 "github.com/go-json-experiment/json/v1"
)

// The alert the receiver acts on, and the label that asks for it.
const (
	RemediateLabel = "remediate"
	PromoteStandby = "promote-standby"
)

// Alert statuses.
const (
	StatusFiring   = "firing"
	StatusResolved = "resolved"
)

// Webhook is an Alertmanager webhook notification (version 4). The journal
// keeps the body as received; fields the receiver does not use are decoded
// all the same, so that a body of the wrong shape is refused (400), not
// journaled for the worker to fail on.
type Webhook struct {
	Version         string            `json:"version"`
	GroupKey        string            `json:"groupKey"`
	TruncatedAlerts int               `json:"truncatedAlerts"`
	Status          string            `json:"status"`
	Receiver        string            `json:"receiver"`
	GroupLabels     map[string]string `json:"groupLabels"`
	CommonLabels    map[string]string `json:"commonLabels"`
	ExternalURL     string            `json:"externalURL"`
	Alerts          []Alert           `json:"alerts"`
}

// Alert is one alert of a notification.
type Alert struct {
	Status       string            `json:"status"`
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt"`
	EndsAt       time.Time         `json:"endsAt"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
	Fingerprint  string            `json:"fingerprint"`
}

// Incident identifies one occurrence of an alert: Alertmanager keeps the
// fingerprint (a hash of the labels) and Prometheus the start time across
// resends, retries and both members of an HA Alertmanager pair.
func (a Alert) Incident() string {
	return a.Fingerprint + "@" + a.StartsAt.UTC().Format(time.RFC3339Nano)
}

// errPayload marks a notification the receiver refuses (400): a resend would
// be refused again, so Alertmanager must not retry it.
var errPayload = errors.New("bad notification")

// decodeWebhook parses a notification strictly: version "4", known statuses,
// and in every alert the fields the receiver keys on. Unknown fields are
// allowed: Alertmanager adds fields without changing the version.
func decodeWebhook(b []byte) (*Webhook, error) {
	w := new(Webhook)
	if err := w.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %v", errPayload, err)
	}
	if w.Version != "4" {
		return nil, fmt.Errorf("%w: version %q, want \"4\"", errPayload, w.Version)
	}
	if !validStatus(w.Status) {
		return nil, fmt.Errorf("%w: status %q", errPayload, w.Status)
	}
	if w.TruncatedAlerts < 0 {
		return nil, fmt.Errorf("%w: truncatedAlerts %d", errPayload, w.TruncatedAlerts)
	}
	for i, a := range w.Alerts {
		switch {
		case !validStatus(a.Status):
			return nil, fmt.Errorf("%w: alerts[%d].status %q", errPayload, i, a.Status)
		case a.Fingerprint == "":
			return nil, fmt.Errorf("%w: alerts[%d] has no fingerprint", errPayload, i)
		case a.StartsAt.IsZero():
			return nil, fmt.Errorf("%w: alerts[%d] has no startsAt", errPayload, i)
		case a.Labels["alertname"] == "":
			return nil, fmt.Errorf("%w: alerts[%d] has no alertname label", errPayload, i)
		}
	}
	return w, nil
}

// webhookOptions make encoding/json/v2's decoder (github.com/go-json-experiment/json)
// read as encoding/json does (names in any case, a name twice, invalid UTF-8
// replaced, RFC 3339 times read loosely, …), at half encoding/json's CPU
// (PERFORMANCE.md).
var webhookOptions = jsonv1.DefaultOptionsV1()

// webhookFields is Webhook without its UnmarshalJSON.
type webhookFields Webhook

// UnmarshalJSON reads a notification, one JSON object and nothing after it,
// nested at most maxWebhookDepth deep. The handler and the journal's replay
// read it the same way, so that what the handler accepts, the journal
// replays.
func (w *Webhook) UnmarshalJSON(b []byte) error {
	*w = Webhook{}
	if err := checkDepth(b, maxWebhookDepth); err != nil {
		return err
	}
	return jsonv2.Unmarshal(b, (*webhookFields)(w), webhookOptions)
}

// maxWebhookDepth bounds how deep a notification nests objects and arrays.
// Alertmanager's nest three deep (alerts, an alert, its labels); the JSON
// decoders' own limit (10,000) is far too deep for the journal line that
// wraps the notification in one more level to stay readable.
const maxWebhookDepth = 32

// checkDepth refuses JSON text nesting objects and arrays deeper than
// limit. It only counts brackets outside strings: the decoder that follows
// checks the rest.
func checkDepth(b []byte, limit int) error {
	depth, inString := 0, false
	for i := 0; i < len(b); i++ {
		switch c := b[i]; {
		case inString && c == '\\':
			i++ // the escaped byte cannot end the string
		case c == '"':
			inString = !inString
		case inString:
		case c == '{' || c == '[':
			if depth++; depth > limit {
				return fmt.Errorf("nested deeper than %d levels", limit)
			}
		case c == '}' || c == ']':
			depth--
		}
	}
	return nil
}

func validStatus(s string) bool { return s == StatusFiring || s == StatusResolved }
