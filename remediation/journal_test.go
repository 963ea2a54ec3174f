package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"
)

// readHereAndElsewhere reads the records j kept of its own writes, and
// those another process decodes from path; both must be n.
func readHereAndElsewhere(t *testing.T, j *Journal, path string, n int) (kept, decoded []record) {
	t.Helper()
	kept, err := j.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	if decoded, err = openJournal(t, path).readRecords(); err != nil {
		t.Fatal(err)
	}
	if len(kept) != n || len(decoded) != n {
		t.Fatalf("read %d records here, %d in another process; want %d", len(kept), len(decoded), n)
	}
	return kept, decoded
}

func openJournal(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := OpenJournal(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestJournalConcurrentAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := openJournal(t, path)
	const n = 300
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			if err := j.Append(context.Background(), record{Kind: kindAck, By: fmt.Sprint(i)}); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	// A second reader (another process) sees every record, each whole.
	recs, err := openJournal(t, path).readRecords()
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, r := range recs {
		seen[r.By] = true
	}
	if len(recs) != n || len(seen) != n {
		t.Errorf("read %d records, %d distinct; want %d", len(recs), len(seen), n)
	}
}

func TestJournalTornTail(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	whole := `{"time":"2026-11-25T20:51:14Z","kind":"ack","by":"ops"}` + "\n"
	if err := os.WriteFile(path, []byte(whole+`{"time":"2026-11-25T20:51:15Z","ki`), 0o600); err != nil {
		t.Fatal(err)
	}
	var logs logBuffer
	j, err := OpenJournal(path, logs.logger())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	// The record lost is said, where and how long it was.
	for _, want := range []string{"level=WARN", "file=" + path, fmt.Sprintf("offset=%d", len(whole)), "bytes=34"} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log does not say %s:\n%s", want, logs.String())
		}
	}
	if err := j.Append(context.Background(), record{Kind: kindAck, By: "next"}); err != nil {
		t.Fatal(err)
	}
	recs, err := j.readRecords()
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].By != "ops" || recs[1].By != "next" {
		t.Errorf("after a torn tail: %+v", recs)
	}
}

func TestJournalRefusesAnUnreadableRecord(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	if err := os.WriteFile(path, []byte("{\"kind\":\"ack\"}\nnot json\n{\"kind\":\"ack\"}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, path)
	recs, err := j.readRecords()
	var unreadable *UnreadableLineError
	if !errors.As(err, &unreadable) || unreadable.Line != 2 || !strings.Contains(err.Error(), "line 2 ") || len(recs) != 1 {
		t.Errorf("got %d records, %v", len(recs), err)
	}
	// The worker reads again a second later: still not past it.
	if recs, err = j.readRecords(); err == nil || len(recs) != 0 {
		t.Errorf("read again: %d records, %v", len(recs), err)
	}
}

// A notification is journaled as the bytes received, on one line even when
// sent indented, and reads back as the webhook the handler decoded: in this
// process, which keeps it, as in another, which decodes the file.
func TestJournalNotificationAsReceived(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := openJournal(t, path)
	var indented bytes.Buffer
	if err := json.Indent(&indented, readTestdata(t, "mixed.json"), "", "  "); err != nil {
		t.Fatal(err)
	}
	bodies := [][]byte{readTestdata(t, "firing.json"), indented.Bytes()}
	var hooks []*Webhook
	for i, body := range bodies {
		hook, err := decodeWebhook(body)
		if err != nil {
			t.Fatal(err)
		}
		hooks = append(hooks, hook)
		if err := j.appendNotification(context.Background(), fmt.Sprint(i), body, hook); err != nil {
			t.Fatal(err)
		}
	}
	if err := j.Append(context.Background(), record{Kind: kindProcessed, IDs: []string{"0", "1"}}); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(path); err != nil || bytes.Count(b, []byte("\n")) != 3 {
		t.Fatalf("want 3 lines, got %q, %v", b, err)
	}
	kept, decoded := readHereAndElsewhere(t, j, path, 3)
	for i, hook := range hooks {
		k, d := kept[i], decoded[i]
		if !k.Time.Equal(d.Time) || k.Kind != kindNotification || k.ID != fmt.Sprint(i) {
			t.Errorf("record %d: kept %v %s %s, decoded %v", i, k.Time, k.Kind, k.ID, d.Time)
		}
		k.Time, d.Time = time.Time{}, time.Time{}
		if k.Webhook != hook || !reflect.DeepEqual(k, d) {
			t.Errorf("record %d: kept %+v, decoded %+v", i, k, d)
		}
	}
}

func TestJournalWriteFailureThenRecovery(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := openJournal(t, path)
	ctx := context.Background()
	j.w.Close() // the file goes away under the writer, as on a failed disk
	if err := j.Append(ctx, record{Kind: kindAck, By: "lost"}); err == nil {
		t.Fatal("an append to a closed file reported success")
	}
	if err := j.Append(ctx, record{Kind: kindAck, By: "kept"}); err != nil {
		t.Fatalf("the journal did not recover: %v", err)
	}
	recs, err := j.readRecords()
	if err != nil || len(recs) != 1 || recs[0].By != "kept" {
		t.Errorf("got %+v, %v", recs, err)
	}
}

// Records this process appended read back as they were appended, without
// decoding their lines again, and as another process decodes them.
func TestJournalReadsBackItsOwnRecords(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal")
	j := openJournal(t, path)
	plan := &Plan{Incident: "fp@t", Cluster: "prod", From: "iap-dc1-1", To: "iap-dc1-3", Steps: []string{"fence iap-dc1-1", "activate iap-dc1-3"}}
	ids := []string{"n1", "n2"}
	appended := []record{
		{Kind: kindDecision, Incident: "fp@t", Cluster: "prod", Outcome: reasonDryRun, Plan: plan},
		{Kind: kindProcessed, IDs: ids},
		{Kind: kindAck, By: "ops", Note: "checked"},
	}
	if err := j.Append(context.Background(), appended...); err != nil {
		t.Fatal(err)
	}
	// The caller goes on with its plan and ids: what was journaled stays.
	plan.To, plan.Steps[0], ids[0] = "iap-dc2-1", "changed", "changed"
	// Change the last line on disk, same length: this process reads what
	// it appended, another process what is on disk.
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, bytes.Replace(b, []byte(`"by":"ops"`), []byte(`"by":"xyz"`), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	kept, decoded := readHereAndElsewhere(t, j, path, 3)
	if kept[2].By != "ops" || decoded[2].By != "xyz" {
		t.Errorf("the ack read back by %q here, by %q in another process; want ops (kept) and xyz (decoded)", kept[2].By, decoded[2].By)
	}
	decoded[2].By = "ops"
	for i := range kept {
		k, d := kept[i], decoded[i]
		if k.Time.IsZero() || !k.Time.Equal(d.Time) {
			t.Errorf("record %d: time %v here, %v in another process", i, k.Time, d.Time)
		}
		k.Time, d.Time = time.Time{}, time.Time{}
		if !reflect.DeepEqual(k, d) {
			t.Errorf("record %d: here %+v, in another process %+v", i, k, d)
		}
	}
	if p := kept[0].Plan; p.To != "iap-dc1-3" || p.Steps[0] != "fence iap-dc1-1" || kept[1].IDs[0] != "n1" {
		t.Errorf("the caller's later changes reached the journal's memory: %+v, %v", p, kept[1].IDs)
	}
}

// readRecords is read for a journal no other process compacts.
func (j *Journal) readRecords() ([]record, error) {
	recs, _, err := j.read()
	return recs, err
}

// What the handler accepts, the journal replays: a notification nested as
// deep as the handler allows reads back from the journal in another
// process (a restart, `remediation ack`, `promote`), and one nested deeper
// is refused at intake. encoding/json, which reads the journal's lines,
// refuses JSON nested deeper than 10,000 levels: a notification 9,999 deep,
// accepted, made a line 10,000 deep that no restart could read.
func TestJournalReplaysWhatTheHandlerAccepts(t *testing.T) {
	nested := func(depth int) []byte {
		// The notification is one level, the unknown field's value the rest.
		return []byte(`{"version":"4","status":"firing","alerts":[],"x":` + strings.Repeat("[", depth-1) + strings.Repeat("]", depth-1) + `}`)
	}
	for _, depth := range []int{maxWebhookDepth + 1, 9999} {
		if _, err := decodeWebhook(nested(depth)); !errors.Is(err, errPayload) {
			t.Errorf("a notification nested %d deep: %v, want refused", depth, err)
		}
	}
	path := filepath.Join(t.TempDir(), "journal")
	j := openJournal(t, path)
	body := nested(maxWebhookDepth)
	hook, err := decodeWebhook(body)
	if err != nil {
		t.Fatalf("a notification nested %d deep: %v", maxWebhookDepth, err)
	}
	if err := j.appendNotification(context.Background(), "n1", body, hook); err != nil {
		t.Fatal(err)
	}
	readHereAndElsewhere(t, j, path, 1)
}
