package remediation

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// fastDecodeCases are notifications the fast decoder takes (fast true) or
// leaves to encoding/json (fast false). What it takes, it must decode as
// encoding/json does.
func fastDecodeCases(t testing.TB) []struct {
	name string
	body string
	fast bool
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
	deep := strings.Repeat("[", maxSkipDepth+2) + strings.Repeat("]", maxSkipDepth+2)
	return []struct {
		name string
		body string
		fast bool
	}{
		{"recorded firing", firing, true},
		{"recorded mixed", string(readTestdata(t, "mixed.json")), true},
		{"recorded truncated", string(readTestdata(t, "truncated.json")), true},
		{"indented, with space around", "\r\n " + indented.String() + "\n\t", true},
		{"escapes in values", alert(`,"annotations":{"summary":"a \"b\" \\ \/ \b\f\n\r\t \u00e9\u20ac\u0000 é"}`), true},
		{"escapes in label names", alert(`,"annotations":{"sum\u006dary":"x","\"":"y"}`), true},
		{"unknown fields of every kind", alert(`,"x":{"a":[1,-2.5e+3,0,0.1,1E-2,true,false,null,"s\u0041\n",{},[]]},"y":"` + "\xff" + `"`), true},
		{"a label twice: the last one", alert(`,"annotations":{"a":"1","a":"2"}`), true},
		{"no alerts", `{"version":"4","status":"resolved","alerts":[]}`, true},
		{"alerts left out", `{"version":"4","status":"resolved"}`, true},
		{"empty maps", `{"version":"4","status":"firing","groupLabels":{},"commonLabels":{},"alerts":[]}`, true},
		{"a time with an offset", alert(`,"endsAt":"2026-11-25T22:51:14.123456789+02:00"`), true},
		{"negative truncation", `{"version":"4","status":"firing","truncatedAlerts":-3,"alerts":[]}`, true},
		{"wrong version", strings.Replace(firing, `"version":"4"`, `"version":"3"`, 1), true},
		{"empty object", `{}`, true},

		{"a key in another case", strings.Replace(firing, `"version"`, `"Version"`, 1), false},
		{"a key of an alert in another case", alert(`,"Labels":{"alertname":"B"}`), false},
		{"a key twice", strings.Replace(firing, `"receiver"`, `"status":"resolved","receiver"`, 1), false},
		{"labels twice (encoding/json merges them)", alert(`,"labels":{"server":"s"}`), false},
		{"an escaped key", strings.Replace(firing, `"version"`, `"vers\u0069on"`, 1), false},
		{"a key not ASCII", alert(`,"ĸey":1`), false},
		{"null labels", alert(`,"annotations":null`), false},
		{"null time", alert(`,"endsAt":null`), false},
		{"null alert", `{"version":"4","status":"firing","alerts":[null]}`, false},
		{"a surrogate pair", alert(`,"annotations":{"summary":"\ud83d\ude00"}`), false},
		{"invalid UTF-8", alert(`,"annotations":{"summary":"` + "\xff" + `"}`), false},
		{"a number for a string", alert(`,"generatorURL":1`), false},
		{"a string for a number", `{"version":"4","status":"firing","truncatedAlerts":"0"}`, false},
		{"a fraction", `{"version":"4","status":"firing","truncatedAlerts":1.0}`, false},
		{"an exponent", `{"version":"4","status":"firing","truncatedAlerts":1e2}`, false},
		{"too large a number", `{"version":"4","status":"firing","truncatedAlerts":99999999999999999999}`, false},
		{"a bad time", alert(`,"endsAt":"yesterday"`), false},
		{"deep unknown field", alert(`,"x":` + deep), false},
		{"two objects", firing + firing, false},
		{"not an object", `[]`, false},
		{"cut short", firing[:len(firing)/2], false},
		{"a control character", alert(`,"generatorURL":"a` + "\x01" + `"`), false},
		{"a trailing comma", `{"version":"4","status":"firing",}`, false},
		{"a leading zero", alert(`,"x":01`), false},
		{"a bad escape", alert(`,"generatorURL":"\x"`), false},
		{"a short \\u", alert(`,"generatorURL":"\u12"`), false},
	}
}

func TestDecodeWebhookFast(t *testing.T) {
	for _, tc := range fastDecodeCases(t) {
		t.Run(tc.name, func(t *testing.T) {
			got, ok := decodeWebhookFast([]byte(tc.body))
			if ok != tc.fast {
				t.Fatalf("decoded in one pass: %v, want %v", ok, tc.fast)
			}
			if ok {
				sameAsEncodingJSON(t, []byte(tc.body), got)
			}
		})
	}
}

// sameAsEncodingJSON fails unless encoding/json decodes body as got.
func sameAsEncodingJSON(t *testing.T, body []byte, got *Webhook) {
	t.Helper()
	want, err := decodeWebhookJSON(body)
	if err != nil {
		t.Fatalf("decoded in one pass, refused by encoding/json: %v", err)
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("decoded in one pass as\n%#v\nencoding/json decodes\n%#v", got, want)
	}
}

func FuzzDecodeWebhookFast(f *testing.F) {
	for _, tc := range fastDecodeCases(f) {
		f.Add([]byte(tc.body))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		if got, ok := decodeWebhookFast(b); ok {
			sameAsEncodingJSON(t, b, got)
		}
	})
}
