package remediation

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// webhookCases are notifications of Alertmanager's shape, and odd ones:
// the receiver must read each as encoding/json does, or refuse what
// encoding/json refuses.
func webhookCases(t testing.TB) []struct {
	name string
	body string
} {
	firing := string(readTestdata(t, "firing.json"))
	var indented bytes.Buffer
	if err := json.Indent(&indented, []byte(firing), "\t", "  "); err != nil {
		t.Fatal(err)
	}
	// one alert, in the shape of the recorded ones, where %s goes
	alert := func(s string) string {
		return `{"version":"4","status":"firing","alerts":[{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-11-25T20:51:14Z","fingerprint":"f"` + s + `}]}`
	}
	deep := strings.Repeat("[", 100) + strings.Repeat("]", 100)
	return []struct {
		name string
		body string
	}{
		{"recorded firing", firing},
		{"recorded mixed", string(readTestdata(t, "mixed.json"))},
		{"recorded truncated", string(readTestdata(t, "truncated.json"))},
		{"indented, with space around", "\r\n " + indented.String() + "\n\t"},
		{"escapes in values", alert(`,"annotations":{"summary":"a \"b\" \\ \/ \b\f\n\r\t \u00e9\u20ac\u0000 é"}`)},
		{"escapes in label names", alert(`,"annotations":{"sum\u006dary":"x","\"":"y"}`)},
		{"unknown fields of every kind", alert(`,"x":{"a":[1,-2.5e+3,0,0.1,1E-2,true,false,null,"s\u0041\n",{},[]]},"y":"` + "\xff" + `"`)},
		{"a label twice: the last one", alert(`,"annotations":{"a":"1","a":"2"}`)},
		{"no alerts", `{"version":"4","status":"resolved","alerts":[]}`},
		{"alerts left out", `{"version":"4","status":"resolved"}`},
		{"empty maps", `{"version":"4","status":"firing","groupLabels":{},"commonLabels":{},"alerts":[]}`},
		{"a time with an offset", alert(`,"endsAt":"2026-11-25T22:51:14.123456789+02:00"`)},
		{"negative truncation", `{"version":"4","status":"firing","truncatedAlerts":-3,"alerts":[]}`},
		{"wrong version", strings.Replace(firing, `"version":"4"`, `"version":"3"`, 1)},
		{"empty object", `{}`},
		{"a key in another case", strings.Replace(firing, `"version"`, `"Version"`, 1)},
		{"a key of an alert in another case", alert(`,"Labels":{"alertname":"B"}`)},
		{"a key twice", strings.Replace(firing, `"receiver"`, `"status":"resolved","receiver"`, 1)},
		{"labels twice (encoding/json merges them)", alert(`,"labels":{"server":"s"}`)},
		{"an escaped key", strings.Replace(firing, `"version"`, `"vers\u0069on"`, 1)},
		{"a key not ASCII", alert(`,"ĸey":1`)},
		{"null labels", alert(`,"annotations":null`)},
		{"null time", alert(`,"endsAt":null`)},
		{"null alert", `{"version":"4","status":"firing","alerts":[null]}`},
		{"a surrogate pair", alert(`,"annotations":{"summary":"\ud83d\ude00"}`)},
		{"invalid UTF-8", alert(`,"annotations":{"summary":"` + "\xff" + `"}`)},
		{"a number for a string", alert(`,"generatorURL":1`)},
		{"a string for a number", `{"version":"4","status":"firing","truncatedAlerts":"0"}`},
		{"a fraction", `{"version":"4","status":"firing","truncatedAlerts":1.0}`},
		{"an exponent", `{"version":"4","status":"firing","truncatedAlerts":1e2}`},
		{"too large a number", `{"version":"4","status":"firing","truncatedAlerts":99999999999999999999}`},
		{"a bad time", alert(`,"endsAt":"yesterday"`)},
		{"deep unknown field", alert(`,"x":` + deep)},
		{"unknown field as deep as allowed", alert(`,"x":` + strings.Repeat("[", maxWebhookDepth-3) + strings.Repeat("]", maxWebhookDepth-3))},
		{"unknown field one level too deep", alert(`,"x":` + strings.Repeat("[", maxWebhookDepth-2) + strings.Repeat("]", maxWebhookDepth-2))},
		{"brackets in strings do not nest", alert(`,"x":"` + strings.Repeat("[{", 100) + `\"` + strings.Repeat("[", 100) + `"`)},
		{"two objects", firing + firing},
		{"not an object", `[]`},
		{"cut short", firing[:len(firing)/2]},
		{"a control character", alert(`,"generatorURL":"a` + "\x01" + `"`)},
		{"a trailing comma", `{"version":"4","status":"firing",}`},
		{"a leading zero", alert(`,"x":01`)},
		{"a bad escape", alert(`,"generatorURL":"\x"`)},
		{"a short \\u", alert(`,"generatorURL":"\u12"`)},
	}
}

// The receiver reads a notification as encoding/json reads it, and
// refuses what encoding/json refuses: the journal's readers and any tool
// reading it agree with the handler.
func TestDecodeWebhookAsEncodingJSON(t *testing.T) {
	for _, tc := range webhookCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			sameAsEncodingJSON(t, []byte(tc.body))
		})
	}
}

// sameAsEncodingJSON fails unless Webhook.UnmarshalJSON and encoding/json
// (without that method) both refuse body, or both read it alike; a body
// nested deeper than maxWebhookDepth, which encoding/json reads, must be
// refused.
func sameAsEncodingJSON(t *testing.T, body []byte) {
	t.Helper()
	var got Webhook
	gotErr := got.UnmarshalJSON(body)
	var want webhookFields
	wantErr := json.Unmarshal(body, &want)
	if wantErr == nil {
		var tree any
		if err := json.Unmarshal(body, &tree); err == nil && depthOf(tree) > maxWebhookDepth {
			if gotErr == nil {
				t.Fatalf("read a notification nested %d deep, over the limit of %d", depthOf(tree), maxWebhookDepth)
			}
			return
		}
	}
	switch {
	case gotErr != nil && wantErr != nil:
	case gotErr != nil:
		t.Fatalf("refused (%v), encoding/json reads it as\n%#v", gotErr, want)
	case wantErr != nil:
		t.Fatalf("read as\n%#v\nencoding/json refuses it: %v", got, wantErr)
	case !reflect.DeepEqual(got, Webhook(want)):
		t.Fatalf("read as\n%#v\nencoding/json reads\n%#v", got, Webhook(want))
	}
}

// depthOf is how deep v, as encoding/json decodes into any, nests objects
// and arrays.
func depthOf(v any) int {
	deepest := 0
	switch v := v.(type) {
	case map[string]any:
		for _, e := range v {
			deepest = max(deepest, depthOf(e))
		}
	case []any:
		for _, e := range v {
			deepest = max(deepest, depthOf(e))
		}
	default:
		return 0
	}
	return deepest + 1
}

func FuzzWebhookAsEncodingJSON(f *testing.F) {
	for _, tc := range webhookCases(f) {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) { sameAsEncodingJSON(t, b) })
}
