package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"
)

// Record kinds of the journal.
const (
	kindNotification = "notification" // a webhook, written before answering 202
	kindProcessed    = "processed"    // notifications whose alerts were all decided
	kindDecision     = "decision"     // the outcome of the gates for one alert
	kindStarted      = "started"      // an action begins: its plan
	kindFinished     = "finished"     // an action ended: success, failure or interrupted
	kindAck          = "ack"          // a person acknowledged a failed action
)

// record is one line of the journal.
type record struct {
	Time time.Time `json:"time"`
	Kind string    `json:"kind"`

	// notification
	ID      string   `json:"id,omitempty"`
	Webhook *Webhook `json:"webhook,omitempty"`
	// processed
	IDs []string `json:"ids,omitempty"`
	// decision, started, finished
	Incident string `json:"incident,omitempty"`
	Cluster  string `json:"cluster,omitempty"`
	Outcome  string `json:"outcome,omitempty"`
	Plan     *Plan  `json:"plan,omitempty"`
	Result   string `json:"result,omitempty"`
	Error    string `json:"error,omitempty"`
	// ack
	By   string `json:"by,omitempty"`
	Note string `json:"note,omitempty"`
}

// Journal is the receiver's durable memory: an append-only file of JSON
// lines, each batch fsynced before Append returns. Appends from concurrent
// requests share one write and one fsync (group commit). Other processes
// (the ack and promote commands) append to the same file under an flock;
// Catch up reads what anyone appended since the last call.
type Journal struct {
	path string
	w    *os.File // O_APPEND, owned by the writer goroutine
	r    *os.File
	reqs chan appendReq
	done chan struct{}

	// Read side, used by one goroutine at a time.
	offset  int64
	partial []byte
}

type appendReq struct {
	data []byte
	err  chan error
}

// OpenJournal opens (creating) the journal at path. A last line cut short
// by a crash is removed; any other unreadable line is an error, since
// guessing past it could act twice.
func OpenJournal(path string) (*Journal, error) {
	w, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	r, err := os.Open(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	j := &Journal{path: path, w: w, r: r, reqs: make(chan appendReq, 256), done: make(chan struct{})}
	if err := j.dropTornTail(); err != nil {
		j.w.Close()
		j.r.Close()
		return nil, err
	}
	go j.writer()
	return j, nil
}

// dropTornTail truncates a final line without its newline: a write the
// crash cut short, which was therefore never acknowledged.
func (j *Journal) dropTornTail() error {
	if err := flock(j.w, syscall.LOCK_EX); err != nil {
		return err
	}
	defer flock(j.w, syscall.LOCK_UN)
	fi, err := j.w.Stat()
	if err != nil || fi.Size() == 0 {
		return err
	}
	size := fi.Size()
	buf := make([]byte, min(size, 64<<10))
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		if _, err := j.r.ReadAt(buf[:end-start], start); err != nil {
			return err
		}
		if i := bytes.LastIndexByte(buf[:end-start], '\n'); i >= 0 {
			keep := start + int64(i) + 1
			if keep == size {
				return nil
			}
			return j.w.Truncate(keep)
		}
		end = start
	}
	return j.w.Truncate(0)
}

// Close stops the writer and closes the files.
func (j *Journal) Close() error {
	close(j.reqs)
	<-j.done
	return errors.Join(j.w.Close(), j.r.Close())
}

// Append writes records durably: when it returns nil they are on disk.
func (j *Journal) Append(ctx context.Context, recs ...record) error {
	var buf bytes.Buffer
	for _, r := range recs {
		if r.Time.IsZero() {
			r.Time = time.Now()
		}
		b, err := json.Marshal(r)
		if err != nil {
			return err
		}
		buf.Write(b)
		buf.WriteByte('\n')
	}
	req := appendReq{data: buf.Bytes(), err: make(chan error, 1)}
	select {
	case j.reqs <- req:
	case <-ctx.Done():
		return ctx.Err()
	}
	// Once queued the write happens; wait for it even if ctx ends, so that
	// the caller never answers "not recorded" for a record that is.
	return <-req.err
}

// writer takes every request waiting, writes them with one write and one
// fsync, and answers them all: the fsync a request waits for carries the
// requests that queued meanwhile.
func (j *Journal) writer() {
	defer close(j.done)
	for req := range j.reqs {
		batch := []appendReq{req}
	more:
		for {
			select {
			case r, ok := <-j.reqs:
				if !ok {
					break more
				}
				batch = append(batch, r)
			default:
				break more
			}
		}
		var data []byte
		for _, r := range batch {
			data = append(data, r.data...)
		}
		err := j.write(data)
		for _, r := range batch {
			r.err <- err
		}
	}
}

// write appends data under an exclusive flock and fsyncs. A failed write is
// cut back off, so that a half line never glues to the next; a file that
// failed is opened again for the next batch.
func (j *Journal) write(data []byte) error {
	err := j.writeLocked(data)
	if err != nil {
		if f, oerr := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); oerr == nil {
			j.w.Close()
			j.w = f
		}
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

func (j *Journal) writeLocked(data []byte) error {
	if err := flock(j.w, syscall.LOCK_EX); err != nil {
		return err
	}
	defer flock(j.w, syscall.LOCK_UN)
	fi, err := j.w.Stat()
	if err != nil {
		return err
	}
	if _, err := j.w.Write(data); err != nil {
		j.w.Truncate(fi.Size())
		return err
	}
	return j.w.Sync()
}

// read returns the complete records appended since the last read.
func (j *Journal) read() ([]record, error) {
	var recs []record
	buf := make([]byte, 64<<10)
	for {
		n, err := j.r.ReadAt(buf, j.offset)
		j.offset += int64(n)
		j.partial = append(j.partial, buf[:n]...)
		if errors.Is(err, io.EOF) || n == 0 {
			break
		}
		if err != nil {
			return recs, err
		}
	}
	for {
		i := bytes.IndexByte(j.partial, '\n')
		if i < 0 {
			break
		}
		line := j.partial[:i]
		j.partial = j.partial[i+1:]
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		var r record
		if err := json.Unmarshal(line, &r); err != nil {
			return recs, fmt.Errorf("journal %s: unreadable record ending at byte %d: %w", j.path, j.offset-int64(len(j.partial)), err)
		}
		recs = append(recs, r)
	}
	j.partial = bytes.Clone(j.partial)
	return recs, nil
}

func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
