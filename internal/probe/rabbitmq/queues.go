package rabbitmq

import (
	"fmt"
	"io"
	"net/url"

	"github.com/go-json-experiment/json/jsontext"
)

// queuesQuery is the cheapest /api/queues request that still carries what the
// model needs: its columns, no statistics (the policy's definition is read
// from /api/policies), no sorting and no paging, since every page costs a
// full sort (measured in PERFORMANCE.md).
var queuesQuery = url.Values{
	"columns":       {"name,vhost,type,node,policy,slave_nodes,synchronised_slave_nodes,leader,members,online"},
	"disable_stats": {"true"},
	"sort":          {""},
}.Encode()

// queue is one row of /api/queues, only the columns in queuesQuery. The
// slices are reused from row to row: copy what must outlive the callback.
type queue struct {
	Name, VHost, Type, Node, Policy string
	// Classic mirrored queues (RabbitMQ 3.x only).
	Mirrors, SyncedMirrors []string
	// Quorum queues and streams.
	Leader          string
	Members, Online []string
}

func (q *queue) reset() {
	*q = queue{
		Mirrors:       q.Mirrors[:0],
		SyncedMirrors: q.SyncedMirrors[:0],
		Members:       q.Members[:0],
		Online:        q.Online[:0],
	}
}

// field is where a column of a row goes: a string or a list of strings.
type field struct {
	column string // the key, for errors
	bit    uint16 // in a set of columns seen; 0 for a column the probe does not use
	str    *string
	list   *[]string
}

func (q *queue) field(key []byte) field {
	switch string(key) {
	case "name":
		return field{column: "name", bit: 1 << 0, str: &q.Name}
	case "vhost":
		return field{column: "vhost", bit: 1 << 1, str: &q.VHost}
	case "type":
		return field{column: "type", bit: 1 << 2, str: &q.Type}
	case "node":
		return field{column: "node", bit: 1 << 3, str: &q.Node}
	case "policy":
		return field{column: "policy", bit: 1 << 4, str: &q.Policy}
	case "leader":
		return field{column: "leader", bit: 1 << 5, str: &q.Leader}
	case "slave_nodes":
		return field{column: "slave_nodes", bit: 1 << 6, list: &q.Mirrors}
	case "synchronised_slave_nodes":
		return field{column: "synchronised_slave_nodes", bit: 1 << 7, list: &q.SyncedMirrors}
	case "members":
		return field{column: "members", bit: 1 << 8, list: &q.Members}
	case "online":
		return field{column: "online", bit: 1 << 9, list: &q.Online}
	}
	return field{}
}

// decodeQueues reads an /api/queues answer as a stream and calls f for every
// queue, holding one row in memory at a time. Of a key repeated in one object
// the first is kept: while a quorum member is down RabbitMQ can send `online`
// twice and the second is stale (rabbitmq-server#10929).
//
// It reads tokens with jsontext, which hands out strings as bytes of its own
// buffer (at most 4 KiB of the answer at a time, more only for a longer
// token), where encoding/json allocated for every token (PERFORMANCE.md).
func decodeQueues(r io.Reader, f func(*queue)) error {
	d := queueDecoder{dec: jsontext.NewDecoder(r,
		// What encoding/json accepts: repeated keys (above) and invalid
		// UTF-8, read as U+FFFD.
		jsontext.AllowDuplicateNames(true),
		jsontext.AllowInvalidUTF8(true),
	)}
	if err := d.expect('['); err != nil {
		if err == io.EOF {
			return io.ErrUnexpectedEOF // an empty answer
		}
		return err
	}
	for d.dec.PeekKind() != ']' {
		if err := d.row(); err != nil {
			return err
		}
		f(&d.q)
	}
	return d.expect(']')
}

// maxInterned bounds the distinct strings a queueDecoder keeps for reuse.
const maxInterned = 256

type queueDecoder struct {
	dec *jsontext.Decoder
	q   queue
	// interned holds the vhosts, types, policies and node names met so
	// far: they repeat from row to row, and each is allocated once per
	// listing rather than once per row.
	interned map[string]string
	unquoted []byte // scratch for a string with escapes
}

// row reads one queue into d.q.
func (d *queueDecoder) row() error {
	if err := d.expect('{'); err != nil {
		return err
	}
	d.q.reset()
	var seen uint16 // one bit per column, to keep the first of a repeated key
	for d.dec.PeekKind() != '}' {
		// The key, which the decoder has checked is a string, is good
		// only until the next read.
		key, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		f := d.q.field(d.unquote(key))
		if f.bit == 0 || seen&f.bit != 0 {
			if err := d.dec.SkipValue(); err != nil {
				return err
			}
			continue
		}
		seen |= f.bit
		if f.str != nil {
			err = d.readString(f.str, f.str != &d.q.Name)
		} else {
			err = d.readList(f.list)
		}
		if err != nil {
			return fmt.Errorf("queue %q: column %s: %w", d.q.Name, f.column, err)
		}
	}
	return d.expect('}')
}

// readString reads a string or null (which leaves dst empty). Names are
// unique, so the caller asks to intern only the other columns.
func (d *queueDecoder) readString(dst *string, intern bool) error {
	switch k := d.dec.PeekKind(); k {
	case 'n':
		_, err := d.dec.ReadToken()
		return err
	case '"':
		raw, err := d.dec.ReadValue()
		if err != nil {
			return err
		}
		*dst = d.string(raw, intern)
		return nil
	default:
		return d.unexpected(k, "a string")
	}
}

// readList reads a list of strings, or null (which leaves dst empty). dst
// starts empty, and its backing array is reused. A null in the list reads as
// "", as encoding/json reads it into a new slice.
func (d *queueDecoder) readList(dst *[]string) error {
	switch k := d.dec.PeekKind(); k {
	case 'n':
		_, err := d.dec.ReadToken()
		return err
	case '[':
		if _, err := d.dec.ReadToken(); err != nil {
			return err
		}
	default:
		return d.unexpected(k, "a list of strings")
	}
	for {
		switch k := d.dec.PeekKind(); k {
		case ']':
			_, err := d.dec.ReadToken()
			return err
		case 'n':
			if _, err := d.dec.ReadToken(); err != nil {
				return err
			}
			*dst = append(*dst, "")
		case '"':
			raw, err := d.dec.ReadValue()
			if err != nil {
				return err
			}
			*dst = append(*dst, d.string(raw, true))
		default:
			return d.unexpected(k, "a list of strings")
		}
	}
}

// expect reads one delimiter.
func (d *queueDecoder) expect(want jsontext.Kind) error {
	k := d.dec.PeekKind()
	if k != want {
		return d.unexpected(k, "'"+want.String()+"'")
	}
	_, err := d.dec.ReadToken()
	return err
}

// unexpected is the error for a token of kind k where want was due. Where
// the token is malformed (k 0), reading it gives the decoder's own error.
func (d *queueDecoder) unexpected(k jsontext.Kind, want string) error {
	if k == 0 {
		if _, err := d.dec.ReadToken(); err != nil {
			return err
		}
	}
	got := k.String()
	switch k {
	case '"', '0':
		got = "a " + got
	case '{':
		got = "an object"
	case '[':
		got = "a list"
	case '}', ']':
		got = "'" + got + "'"
	}
	return fmt.Errorf("got %s, want %s", got, want)
}

// unquote returns a string's contents, quotes removed. They are d's bytes
// or the decoder's, good until the next read.
func (d *queueDecoder) unquote(raw jsontext.Value) []byte {
	if isPlain(raw) {
		return raw[1 : len(raw)-1]
	}
	// The decoder has checked the syntax; the one error left is invalid
	// UTF-8, which AppendUnquote replaces with U+FFFD as encoding/json does.
	d.unquoted, _ = jsontext.AppendUnquote(d.unquoted[:0], raw)
	return d.unquoted
}

// isPlain tells a quoted string that needs no unquoting: no escapes and
// nothing but ASCII (whose UTF-8 validity is then not in question).
func isPlain(raw []byte) bool {
	for _, c := range raw {
		if c == '\\' || c >= 0x80 {
			return false
		}
	}
	return true
}

// string returns the contents of a quoted string, from d.interned if asked
// and already there.
func (d *queueDecoder) string(raw jsontext.Value, intern bool) string {
	b := d.unquote(raw)
	if !intern {
		return string(b)
	}
	if s, ok := d.interned[string(b)]; ok {
		return s
	}
	s := string(b)
	if d.interned == nil {
		d.interned = make(map[string]string)
	}
	if len(d.interned) < maxInterned {
		d.interned[s] = s
	}
	return s
}
