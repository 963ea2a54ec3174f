package rabbitmq

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// rows decodes an /api/queues answer into copies of its rows (the decoder
// reuses its slices from row to row).
func rows(body []byte) ([]queue, error) {
	var out []queue
	err := decodeQueues(bytes.NewReader(body), func(q *queue) { out = append(out, cloneQueue(q)) })
	return out, err
}

// cloneQueue copies a row, empty lists as nil.
func cloneQueue(q *queue) queue {
	clone := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return slices.Clone(s)
	}
	c := *q
	c.Mirrors, c.SyncedMirrors = clone(q.Mirrors), clone(q.SyncedMirrors)
	c.Members, c.Online = clone(q.Members), clone(q.Online)
	return c
}

// referenceRows reads an /api/queues answer with encoding/json alone, the
// way decodeQueues must: each row on its own, the first of a repeated key,
// null as empty, every other column skipped.
func referenceRows(body []byte) ([]queue, error) {
	var all []json.RawMessage
	if err := json.NewDecoder(bytes.NewReader(body)).Decode(&all); err != nil {
		return nil, err
	}
	if all == nil {
		return nil, errors.New("the answer is null, not a list")
	}
	var out []queue
	for _, row := range all {
		var columns []struct {
			key   string
			value json.RawMessage
		}
		dec := json.NewDecoder(bytes.NewReader(row))
		if tok, _ := dec.Token(); tok != json.Delim('{') {
			return nil, fmt.Errorf("row %s is not an object", row)
		}
		for dec.More() {
			key, _ := dec.Token()
			var value json.RawMessage
			if err := dec.Decode(&value); err != nil {
				return nil, err
			}
			columns = append(columns, struct {
				key   string
				value json.RawMessage
			}{key.(string), value})
		}
		var q queue
		fields := map[string]any{
			"name": &q.Name, "vhost": &q.VHost, "type": &q.Type, "node": &q.Node, "policy": &q.Policy,
			"leader": &q.Leader, "slave_nodes": &q.Mirrors, "synchronised_slave_nodes": &q.SyncedMirrors,
			"members": &q.Members, "online": &q.Online,
		}
		for _, c := range columns {
			if dst, ok := fields[c.key]; ok {
				delete(fields, c.key) // the first occurrence only
				if err := json.Unmarshal(c.value, dst); err != nil {
					return nil, err
				}
			}
		}
		out = append(out, cloneQueue(&q))
	}
	return out, nil
}

func TestDecodeQueues(t *testing.T) {
	const r1, r2, r3 = "rmq1@localhost", "rmq2@localhost", "rmq3@localhost"
	for _, tc := range []struct {
		name string
		file string // under testdata, or body inline
		body string
		want []queue
	}{
		{
			name: "3.10 with a member stopped",
			file: "3.10/one-stopped/queues.json",
			want: []queue{
				{Name: "federation: fed.events -> rmqdr@vm", VHost: "/", Type: "classic", Node: r1},
				{Name: "ha.two.events", VHost: "/", Type: "classic", Node: r1, Policy: "ha-two", Mirrors: []string{r2}, SyncedMirrors: []string{r2}},
				{Name: "ha.all.orders", VHost: "/", Type: "classic", Node: r1, Policy: "ha-all", Mirrors: []string{r2}, SyncedMirrors: []string{r2}},
				{Name: "fed.tasks", VHost: "/", Type: "classic", Node: r1},
				{Name: "qq.jobs", VHost: "/", Type: "quorum", Leader: r1, Members: []string{r1, r3, r2}, Online: []string{r1, r2}},
			},
		},
		{
			name: "4.0 has no mirrors",
			file: "4.0/healthy/queues.json",
			want: []queue{
				{Name: "federation: fed.events -> rmqdr@vm", VHost: "/", Type: "classic", Node: r1},
				{Name: "ha.two.events", VHost: "/", Type: "classic", Node: r1},
				{Name: "ha.all.orders", VHost: "/", Type: "classic", Node: r1},
				{Name: "fed.tasks", VHost: "/", Type: "classic", Node: r1},
				{Name: "qq.jobs", VHost: "/", Type: "quorum", Leader: r1, Members: []string{r1, r3, r2}, Online: []string{r1, r3, r2}},
			},
		},
		{
			// rabbitmq-server#10929: the second online is stale.
			name: "duplicate online key keeps the first",
			body: `[{"name":"qq","type":"quorum","vhost":"/","leader":"` + r1 + `","members":["` + r1 + `","` + r2 + `","` + r3 + `"],` +
				`"online":["` + r1 + `"],"online":["` + r1 + `","` + r2 + `","` + r3 + `"]}]`,
			want: []queue{{Name: "qq", VHost: "/", Type: "quorum", Leader: r1, Members: []string{r1, r2, r3}, Online: []string{r1}}},
		},
		{
			name: "unknown columns, nulls and nesting are skipped",
			body: `[{"name":"a","vhost":"v","policy":null,"state":"live","arguments":{"x":[1,{"y":null}]},"slave_nodes":null,"type":"classic"},` +
				`{"name":"b","vhost":"v","type":"stream","members":[],"online":[]}]`,
			want: []queue{{Name: "a", VHost: "v", Type: "classic"}, {Name: "b", VHost: "v", Type: "stream"}},
		},
		{
			// A null in a list is "", as encoding/json reads it into a new
			// slice; the backing array reused from the row before must not
			// show through.
			name: "null in a list reads as empty, nothing from the row before",
			body: `[{"name":"a","online":["` + r1 + `","` + r2 + `"]},{"name":"b","online":[null,"` + r3 + `"]}]`,
			want: []queue{{Name: "a", Online: []string{r1, r2}}, {Name: "b", Online: []string{"", r3}}},
		},
		{
			// A null is the first occurrence too.
			name: "a null first keeps the column empty",
			body: `[{"name":"qq","online":null,"online":["` + r1 + `"],"leader":null,"leader":"` + r1 + `"}]`,
			want: []queue{{Name: "qq"}},
		},
		{
			// Escapes are undone before the key is matched, so an escaped
			// repeat is still a repeat. Invalid UTF-8 reads as U+FFFD, as
			// encoding/json reads it.
			name: "escapes and invalid UTF-8 as encoding/json reads them",
			body: `[{"na\u006de":"caf\u00e9 \"x\"","vhost":"\ud800` + "\xff" + `","online":["a"],"onl\u0069ne":["b"]}]`,
			want: []queue{{Name: `café "x"`, VHost: "\ufffd\ufffd", Online: []string{"a"}}},
		},
		{name: "no queues", body: `[]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			body := []byte(tc.body)
			if tc.file != "" {
				var err error
				if body, err = os.ReadFile(filepath.Join("testdata", tc.file)); err != nil {
					t.Fatal(err)
				}
			}
			got, err := rows(body)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
		})
	}
}

// Of a key repeated in one row the first is kept, for every column.
func TestDecodeQueuesKeepsFirstOfEveryColumn(t *testing.T) {
	for _, tc := range []struct {
		key           string
		first, second string
		want          queue
	}{
		{"name", `"first"`, `"second"`, queue{Name: "first"}},
		{"vhost", `"first"`, `"second"`, queue{VHost: "first"}},
		{"type", `"first"`, `"second"`, queue{Type: "first"}},
		{"node", `"first"`, `"second"`, queue{Node: "first"}},
		{"policy", `"first"`, `"second"`, queue{Policy: "first"}},
		{"leader", `"first"`, `"second"`, queue{Leader: "first"}},
		{"slave_nodes", `["first"]`, `["second","third"]`, queue{Mirrors: []string{"first"}}},
		{"synchronised_slave_nodes", `["first"]`, `["second","third"]`, queue{SyncedMirrors: []string{"first"}}},
		{"members", `["first"]`, `["second","third"]`, queue{Members: []string{"first"}}},
		{"online", `["first"]`, `["second","third"]`, queue{Online: []string{"first"}}},
		// A second of another shape is skipped, not an error.
		{"online", `["first"]`, `{"x":1}`, queue{Online: []string{"first"}}},
	} {
		t.Run(tc.key, func(t *testing.T) {
			body := `[{"` + tc.key + `":` + tc.first + `,"state":"live","` + tc.key + `":` + tc.second + `}]`
			got, err := rows([]byte(body))
			if err != nil {
				t.Fatal(err)
			}
			if want := []queue{tc.want}; !reflect.DeepEqual(got, want) {
				t.Errorf("%s: got %+v, want %+v", body, got, want)
			}
		})
	}
}

// The answer is decoded as it arrives: a row is handed over before the rest
// of the body has been sent.
func TestDecodeQueuesStreams(t *testing.T) {
	body, w := io.Pipe()
	seen := make(chan string)
	done := make(chan error, 1)
	go func() {
		done <- decodeQueues(body, func(q *queue) { seen <- q.Name })
		close(seen)
	}()
	for _, part := range []string{`[{"name":"a"},`, `{"name":"b"}`} {
		if _, err := io.WriteString(w, part); err != nil {
			t.Fatal(err)
		}
		select {
		case name := <-seen:
			t.Logf("%q handed over after %s", name, part)
		case <-time.After(10 * time.Second):
			t.Fatalf("no row handed over after %s", part)
		}
	}
	_, _ = io.WriteString(w, `]`)
	_ = w.Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func TestDecodeQueuesRejectsMalformed(t *testing.T) {
	for _, tc := range []struct {
		body    string
		wantErr string // part of the error, where it can name the queue and column
	}{
		{``, ""},
		{`{}`, ""},
		{`null`, ""},
		{`[{"name":"a"`, ""},
		{`[{"name":1}]`, `queue "": column name: got a number, want a string`},
		{`[{"members":"rmq1"}]`, `queue "": column members: got a string, want a list of strings`},
		{`["a"]`, ""},
		{`[{"name":"a"}`, ""},
		{`[{"name":"a",}]`, ""},
		{`[{"name":"a","online":[1]}]`, `queue "a": column online: got a number, want a list of strings`},
		{`[{"name":"a","online":[["b"]]}]`, `queue "a": column online: got a list, want a list of strings`},
		{`[{"name":"a","vhost":{}}]`, `queue "a": column vhost: got an object, want a string`},
		{`[{"name":"a","leader":true}]`, `queue "a": column leader: got true, want a string`},
		{`[{"name":"a","online":["b",]}]`, `queue "a": column online: `},
		{`[{"name":"a","online":["b"`, `queue "a": column online: `},
		// Far into the answer, once the decoder's buffer has moved on
		// from the key, the column is still named.
		{`[` + strings.Repeat(`{"name":"x","online":["rmq1@localhost"]},`, 500) +
			`{"name":"a","online":[` + strings.Repeat(`"rmq1@localhost",`, 2000) + `1]}]`,
			`queue "a": column online: got a number, want a list of strings`},
		{`[{"name":"a","state":x}]`, ""},
		{`[{"name":"a"} {"name":"b"}]`, ""},
		{`[{"name":"a"},]`, ""},
	} {
		_, err := rows([]byte(tc.body))
		switch {
		case err == nil:
			t.Errorf("%q: no error", tc.body)
		case !strings.Contains(err.Error(), tc.wantErr):
			t.Errorf("%q: error %q, want it to contain %q", tc.body, err, tc.wantErr)
		}
	}
}

func FuzzDecodeQueues(f *testing.F) {
	for _, file := range []string{"3.10/healthy/queues.json", "3.10/two-stopped/queues.json", "4.0/healthy/queues.json"} {
		b, err := os.ReadFile(filepath.Join("testdata", file))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`[{"name":"qq","online":["a"],"online":["a","b"]}]`))
	f.Add([]byte(`[{"name":"a","arguments":{"x":[1,{"y":null}]}}]`))
	f.Add([]byte(`null`))
	f.Add([]byte(`[{"name":"a","online":["x",null],"online":null,"na\u006de":"b"},{"name":"c","online":[null]}]`))
	f.Add([]byte("[{\"name\":\"\\ud800\xff\",\"vhost\":1}]"))
	f.Fuzz(func(t *testing.T, body []byte) {
		// The stream decoder accepts what encoding/json accepts, and reads
		// the same rows from it.
		got, err := rows(body)
		want, wantErr := referenceRows(body)
		if (err == nil) != (wantErr == nil) {
			t.Fatalf("%q: decodeQueues: %v; encoding/json: %v", body, err, wantErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q:\ngot  %+v\nwant %+v", body, got, want)
		}
	})
}

// manyQueues builds an /api/queues answer of n rows from the rows of a
// recorded one, each renamed to be unique.
func manyQueues(tb testing.TB, template []byte, n int) []byte {
	var recorded []json.RawMessage
	if err := json.Unmarshal(template, &recorded); err != nil {
		tb.Fatal(err)
	}
	var b bytes.Buffer
	b.WriteByte('[')
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		row := recorded[i%len(recorded)]
		b.Write(bytes.Replace(row, []byte(`"name":"`), []byte(`"name":"q`+strconv.Itoa(i)+`-`), 1))
	}
	b.WriteByte(']')
	return b.Bytes()
}

// BenchmarkDecodeQueues decodes and judges generated /api/queues answers of
// 1,000, 10,000 and 30,000 queues, built from the rows of a recorded one.
func BenchmarkDecodeQueues(b *testing.B) {
	template, err := os.ReadFile("testdata/3.10/healthy/queues.json")
	if err != nil {
		b.Fatal(err)
	}
	for _, n := range []int{1000, 10000, 30000} {
		body := manyQueues(b, template, n)
		b.Run(strconv.Itoa(n), func(b *testing.B) {
			b.SetBytes(int64(len(body)))
			b.ReportAllocs()
			for b.Loop() {
				c := newQueueCounter(map[string]bool{"a": true, "b": true, "c": true}, true, nil, false)
				if err := decodeQueues(bytes.NewReader(body), c.add); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
