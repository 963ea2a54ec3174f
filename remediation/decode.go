package remediation

import (
	"bytes"
	"strconv"
	"time"
	"unicode/utf8"
)

// decodeWebhookFast decodes a notification of the shape Alertmanager sends
// in one pass, without reflection: encoding/json took a quarter of the
// receiver's CPU per post. It handles the common case only — every key of
// the notification and of its alerts spelled as the Webhook and Alert
// tags spell it, each once, without escapes; values of the right JSON type,
// never null; strings of valid UTF-8 without surrogate escapes — and
// reports ok false for anything else, which decodeWebhookJSON then decodes
// or refuses. For what it accepts, the result is what encoding/json gives
// (FuzzDecodeWebhookFast compares them): the journal's other readers decode
// the same line with encoding/json.
func decodeWebhookFast(b []byte) (w *Webhook, ok bool) {
	d := fastDecoder{b: b}
	w = new(Webhook)
	d.space()
	if !d.webhook(w) {
		return nil, false
	}
	d.space()
	if d.i != len(d.b) {
		return nil, false // encoding/json says what follows is wrong
	}
	return w, true
}

// fastDecoder reads b from i on. Each method reports false when it meets
// anything outside the common case; the caller then gives up.
type fastDecoder struct {
	b []byte
	i int
}

// Fields of Webhook and Alert, as bits of a set of keys seen.
const (
	fieldVersion = 1 << iota
	fieldGroupKey
	fieldTruncatedAlerts
	fieldStatus
	fieldReceiver
	fieldGroupLabels
	fieldCommonLabels
	fieldExternalURL
	fieldAlerts
	fieldLabels
	fieldAnnotations
	fieldStartsAt
	fieldEndsAt
	fieldGeneratorURL
	fieldFingerprint
)

var (
	webhookKeys = []string{"version", "groupKey", "truncatedAlerts", "status", "receiver", "groupLabels", "commonLabels", "externalURL", "alerts"}
	alertKeys   = []string{"status", "labels", "annotations", "startsAt", "endsAt", "generatorURL", "fingerprint"}
)

func (d *fastDecoder) webhook(w *Webhook) bool {
	return d.object(webhookKeys, func(key []byte) (int, bool) {
		switch string(key) {
		case "version":
			return fieldVersion, d.str(&w.Version)
		case "groupKey":
			return fieldGroupKey, d.str(&w.GroupKey)
		case "truncatedAlerts":
			return fieldTruncatedAlerts, d.int(&w.TruncatedAlerts)
		case "status":
			return fieldStatus, d.str(&w.Status)
		case "receiver":
			return fieldReceiver, d.str(&w.Receiver)
		case "groupLabels":
			return fieldGroupLabels, d.labels(&w.GroupLabels)
		case "commonLabels":
			return fieldCommonLabels, d.labels(&w.CommonLabels)
		case "externalURL":
			return fieldExternalURL, d.str(&w.ExternalURL)
		case "alerts":
			return fieldAlerts, d.alerts(&w.Alerts)
		}
		return 0, d.skip(0)
	})
}

func (d *fastDecoder) alerts(as *[]Alert) bool {
	if !d.byte('[') {
		return false
	}
	*as = []Alert{} // encoding/json makes [] an empty slice, not nil
	d.space()
	if d.byte(']') {
		return true
	}
	for {
		var a Alert
		d.space()
		if !d.alert(&a) {
			return false
		}
		*as = append(*as, a)
		d.space()
		if d.byte(']') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

func (d *fastDecoder) alert(a *Alert) bool {
	return d.object(alertKeys, func(key []byte) (int, bool) {
		switch string(key) {
		case "status":
			return fieldStatus, d.str(&a.Status)
		case "labels":
			return fieldLabels, d.labels(&a.Labels)
		case "annotations":
			return fieldAnnotations, d.labels(&a.Annotations)
		case "startsAt":
			return fieldStartsAt, d.time(&a.StartsAt)
		case "endsAt":
			return fieldEndsAt, d.time(&a.EndsAt)
		case "generatorURL":
			return fieldGeneratorURL, d.str(&a.GeneratorURL)
		case "fingerprint":
			return fieldFingerprint, d.str(&a.Fingerprint)
		}
		return 0, d.skip(0)
	})
}

// object reads an object whose keys field decodes, or skips when unknown
// (field 0). encoding/json would match a key to a field in any case, and
// would merge a second occurrence of a key into the first: such keys, and
// keys with escapes, are left to it.
func (d *fastDecoder) object(known []string, field func(key []byte) (int, bool)) bool {
	if !d.byte('{') {
		return false
	}
	seen := 0
	d.space()
	if d.byte('}') {
		return true
	}
	for {
		d.space()
		key, ok := d.plainKey()
		if !ok {
			return false
		}
		d.space()
		if !d.byte(':') {
			return false
		}
		d.space()
		f, ok := field(key)
		switch {
		case !ok, f&seen != 0:
			return false
		case f == 0:
			for _, k := range known {
				if bytes.EqualFold(key, []byte(k)) {
					return false
				}
			}
		}
		seen |= f
		d.space()
		if d.byte('}') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

// labels reads an object of strings into a new map, as encoding/json does
// for a nil map (a repeated label keeps its last value, there too).
func (d *fastDecoder) labels(m *map[string]string) bool {
	if !d.byte('{') {
		return false
	}
	*m = map[string]string{}
	d.space()
	if d.byte('}') {
		return true
	}
	for {
		var k, v string
		d.space()
		if !d.str(&k) {
			return false
		}
		d.space()
		if !d.byte(':') {
			return false
		}
		d.space()
		if !d.str(&v) {
			return false
		}
		(*m)[k] = v
		d.space()
		if d.byte('}') {
			return true
		}
		if !d.byte(',') {
			return false
		}
	}
}

// time reads a string as encoding/json does into a time.Time: the literal,
// quotes and all, goes to UnmarshalJSON.
func (d *fastDecoder) time(t *time.Time) bool {
	start := d.i
	if !d.skipString() {
		return false
	}
	return t.UnmarshalJSON(d.b[start:d.i]) == nil
}

// int reads an integer without fraction or exponent.
func (d *fastDecoder) int(n *int) bool {
	start := d.i
	d.byte('-')
	if !d.digits() {
		return false
	}
	if d.i < len(d.b) && (d.b[d.i] == '.' || d.b[d.i] == 'e' || d.b[d.i] == 'E') {
		return false
	}
	v, err := strconv.Atoi(string(d.b[start:d.i]))
	*n = v
	return err == nil
}

// str reads a string of valid UTF-8. Escapes are decoded but for \u of a
// surrogate (encoding/json's rules for those are left to it).
func (d *fastDecoder) str(s *string) bool {
	if !d.byte('"') {
		return false
	}
	if raw, ascii, ok := d.plainString(); ok {
		if !ascii && !utf8.Valid(raw) {
			return false
		}
		*s = internValue(raw)
		return true
	}
	return d.escapedStr(s)
}

// plainString reads the rest of a string whose opening quote was read, if
// it holds no escape and no control character: the usual string, found
// with a search for its closing quote and one check of each byte. It
// reports whether the string is ASCII; it reads nothing when it is not
// plain.
func (d *fastDecoder) plainString() (raw []byte, ascii, ok bool) {
	rest := d.b[d.i:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, false, false
	}
	raw = rest[:end]
	var or byte
	for _, c := range raw {
		if c < 0x20 || c == '\\' {
			return nil, false, false
		}
		or |= c
	}
	d.i += end + 1
	return raw, or < utf8.RuneSelf, true
}

// internValue is string(raw), but for the statuses and the usual label
// and annotation names: those need no string of their own for every
// notification.
func internValue(raw []byte) string {
	switch string(raw) {
	case StatusFiring:
		return StatusFiring
	case StatusResolved:
		return StatusResolved
	case "alertname":
		return "alertname"
	case "severity":
		return "severity"
	case "job":
		return "job"
	case "instance":
		return "instance"
	case "server":
		return "server"
	case "site":
		return "site"
	case "cluster":
		return "cluster"
	case RemediateLabel:
		return RemediateLabel
	case "summary":
		return "summary"
	case "description":
		return "description"
	case "runbook_url":
		return "runbook_url"
	}
	return string(raw)
}

// escapedStr reads the rest of a string that is not plain.
func (d *fastDecoder) escapedStr(s *string) bool {
	var buf []byte
	for d.i < len(d.b) {
		c := d.b[d.i]
		switch {
		case c == '"':
			d.i++
			if !utf8.Valid(buf) {
				return false
			}
			*s = string(buf)
			return true
		case c < 0x20:
			return false
		case c != '\\':
			buf = append(buf, c)
			d.i++
			continue
		}
		if d.i+1 >= len(d.b) {
			return false
		}
		e := d.b[d.i+1]
		d.i += 2
		switch e {
		case '"', '\\', '/':
			buf = append(buf, e)
		case 'b':
			buf = append(buf, '\b')
		case 'f':
			buf = append(buf, '\f')
		case 'n':
			buf = append(buf, '\n')
		case 'r':
			buf = append(buf, '\r')
		case 't':
			buf = append(buf, '\t')
		case 'u':
			r, ok := d.hex4()
			if !ok || utf8.RuneLen(r) < 0 { // a surrogate
				return false
			}
			buf = utf8.AppendRune(buf, r)
		default:
			return false
		}
	}
	return false
}

func (d *fastDecoder) hex4() (rune, bool) {
	if d.i+4 > len(d.b) {
		return 0, false
	}
	var r rune
	for _, c := range d.b[d.i : d.i+4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c -= 'a' - 10
		case 'A' <= c && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	d.i += 4
	return r, true
}

// plainKey reads an object key without escapes, as its bytes.
func (d *fastDecoder) plainKey() ([]byte, bool) {
	if !d.byte('"') {
		return nil, false
	}
	raw, ascii, ok := d.plainString()
	return raw, ok && ascii
}

// maxSkipDepth bounds the nesting of a skipped value; deeper ones are left
// to encoding/json, which has limits of its own.
const maxSkipDepth = 32

// skip reads any JSON value the receiver does not use, checking that it is
// well formed as encoding/json would.
func (d *fastDecoder) skip(depth int) bool {
	if d.i >= len(d.b) || depth > maxSkipDepth {
		return false
	}
	switch d.b[d.i] {
	case '"':
		return d.skipString()
	case '{':
		d.i++
		d.space()
		if d.byte('}') {
			return true
		}
		for {
			d.space()
			if !d.skipString() {
				return false
			}
			d.space()
			if !d.byte(':') {
				return false
			}
			d.space()
			if !d.skip(depth + 1) {
				return false
			}
			d.space()
			if d.byte('}') {
				return true
			}
			if !d.byte(',') {
				return false
			}
		}
	case '[':
		d.i++
		d.space()
		if d.byte(']') {
			return true
		}
		for {
			d.space()
			if !d.skip(depth + 1) {
				return false
			}
			d.space()
			if d.byte(']') {
				return true
			}
			if !d.byte(',') {
				return false
			}
		}
	case 't':
		return d.literal("true")
	case 'f':
		return d.literal("false")
	case 'n':
		return d.literal("null")
	}
	return d.skipNumber()
}

// skipString reads a well-formed string. Invalid UTF-8 is well formed to
// encoding/json (it becomes U+FFFD), and nothing skipped is kept.
func (d *fastDecoder) skipString() bool {
	if !d.byte('"') {
		return false
	}
	if _, _, ok := d.plainString(); ok {
		return true
	}
	for d.i < len(d.b) {
		c := d.b[d.i]
		d.i++
		switch {
		case c == '"':
			return true
		case c < 0x20:
			return false
		case c == '\\':
			if d.i >= len(d.b) {
				return false
			}
			e := d.b[d.i]
			d.i++
			switch e {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
			case 'u':
				if _, ok := d.hex4(); !ok {
					return false
				}
			default:
				return false
			}
		}
	}
	return false
}

// skipNumber reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func (d *fastDecoder) skipNumber() bool {
	d.byte('-')
	if !d.digits() {
		return false
	}
	if d.byte('.') && !d.someDigits() {
		return false
	}
	if d.byte('e') || d.byte('E') {
		if !d.byte('+') {
			d.byte('-')
		}
		if !d.someDigits() {
			return false
		}
	}
	return true
}

// digits reads the integer part of a number: 0, or digits not led by 0.
func (d *fastDecoder) digits() bool {
	if d.byte('0') {
		return true
	}
	if d.i >= len(d.b) || d.b[d.i] < '1' || d.b[d.i] > '9' {
		return false
	}
	return d.someDigits()
}

func (d *fastDecoder) someDigits() bool {
	start := d.i
	for d.i < len(d.b) && '0' <= d.b[d.i] && d.b[d.i] <= '9' {
		d.i++
	}
	return d.i > start
}

func (d *fastDecoder) literal(s string) bool {
	if !bytes.HasPrefix(d.b[d.i:], []byte(s)) {
		return false
	}
	d.i += len(s)
	return true
}

// byte reads c if it comes next.
func (d *fastDecoder) byte(c byte) bool {
	if d.i < len(d.b) && d.b[d.i] == c {
		d.i++
		return true
	}
	return false
}

// space skips JSON's whitespace.
func (d *fastDecoder) space() {
	for d.i < len(d.b) {
		switch d.b[d.i] {
		case ' ', '\t', '\n', '\r':
			d.i++
		default:
			return
		}
	}
}
