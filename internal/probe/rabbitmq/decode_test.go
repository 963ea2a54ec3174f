package rabbitmq

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"testing"
)

// rows decodes an /api/queues answer into copies of its rows (the decoder
// reuses its slices from row to row; empty ones are copied as nil).
func rows(body []byte) ([]queue, error) {
	clone := func(s []string) []string {
		if len(s) == 0 {
			return nil
		}
		return slices.Clone(s)
	}
	var out []queue
	err := decodeQueues(bytes.NewReader(body), func(q *queue) {
		c := *q
		c.Mirrors, c.SyncedMirrors = clone(q.Mirrors), clone(q.SyncedMirrors)
		c.Members, c.Online = clone(q.Members), clone(q.Online)
		out = append(out, c)
	})
	return out, err
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

func TestDecodeQueuesRejectsMalformed(t *testing.T) {
	for _, body := range []string{
		``,
		`{}`,
		`[{"name":"a"`,
		`[{"name":1}]`,
		`[{"members":"rmq1"}]`,
		`["a"]`,
		`[{"name":"a"}`,
		`[{"name":"a",}]`,
	} {
		if _, err := rows([]byte(body)); err == nil {
			t.Errorf("%q: no error", body)
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
	f.Fuzz(func(t *testing.T, body []byte) {
		n := 0
		if err := decodeQueues(bytes.NewReader(body), func(*queue) { n++ }); err != nil {
			return
		}
		// What the stream decoder accepts, encoding/json reads as an array
		// of as many values.
		var all []json.RawMessage
		if err := json.NewDecoder(bytes.NewReader(body)).Decode(&all); err != nil || len(all) != n {
			t.Fatalf("decoded %d queues from %q; encoding/json: %d values, %v", n, body, len(all), err)
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
				c := newQueueCounter(3, true, nil, false)
				if err := decodeQueues(bytes.NewReader(body), c.add); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
