package remediation

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func openJournal(t *testing.T, path string) *Journal {
	t.Helper()
	j, err := OpenJournal(path)
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
	recs, err := openJournal(t, path).read()
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
	j := openJournal(t, path)
	if err := j.Append(context.Background(), record{Kind: kindAck, By: "next"}); err != nil {
		t.Fatal(err)
	}
	recs, err := j.read()
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
	_, err := openJournal(t, path).read()
	if err == nil || !strings.Contains(err.Error(), "unreadable record") {
		t.Errorf("got %v", err)
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
	recs, err := j.read()
	if err != nil || len(recs) != 1 || recs[0].By != "kept" {
		t.Errorf("got %+v, %v", recs, err)
	}
}
