package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sync"
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

	// Read side, used by one goroutine at a time: the file offset read up
	// to, and the bytes read after the last complete line.
	offset int64
	buf    []byte

	// written holds the records this process journaled and has not read
	// back yet, by offset, in the order written: read takes them as they
	// are instead of decoding again what was just encoded (or, for a
	// notification, what the handler just decoded).
	mu      sync.Mutex
	written []writtenRecord
	taken   int // written[:taken] are read already, their room not yet reused

	// lines are the notifications' journal lines, kept from request to
	// request: a burst of 200 is 200 lines at once.
	lines sync.Pool
}

// writtenRecord is a record on disk at offset, as it was before encoding.
type writtenRecord struct {
	offset int64
	rec    record
}

// maxWritten bounds the records kept for read: a reader that has stopped
// (an unreadable record) must not make the writer grow without end.
const maxWritten = 10000

type appendReq struct {
	data []byte
	// lines are the records data holds, one a line, in order: read takes
	// them instead of decoding data.
	lines []line
	err   chan error
}

// line is a record and the length of its line in the journal.
type line struct {
	rec record
	len int
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
	enc := json.NewEncoder(&buf) // json.Marshal's encoding, and a newline
	lines := make([]line, len(recs))
	for i, r := range recs {
		if r.Time.IsZero() {
			r.Time = time.Now().Round(0) // as decoded: no monotonic clock reading
		}
		start := buf.Len()
		if err := enc.Encode(r); err != nil {
			return err
		}
		lines[i] = line{rec: r.detached(), len: buf.Len() - start}
	}
	return j.queue(ctx, appendReq{data: buf.Bytes(), lines: lines, err: make(chan error, 1)})
}

// detached is r with its own copy of what the caller may change after
// Append: the plan and the ids. The webhook is never changed once decoded.
func (r record) detached() record {
	if r.Plan != nil {
		p := *r.Plan
		p.Steps = slices.Clone(p.Steps)
		r.Plan = &p
	}
	r.IDs = slices.Clone(r.IDs)
	return r
}

// appendNotification journals a notification as the bytes received: body
// is what decodeWebhook accepted, and hook what it returned. Writing the
// body rather than encoding hook again costs no encoding and keeps what
// Alertmanager sent; this process reads hook back instead of decoding the
// line again.
func (j *Journal) appendNotification(ctx context.Context, id string, body []byte, hook *Webhook) error {
	now := time.Now().Round(0) // as decoded: no monotonic clock reading
	var data []byte
	if kept, ok := j.lines.Get().(*[]byte); ok {
		data = (*kept)[:0]
	}
	data, err := appendNotificationLine(data, now, id, body)
	if err != nil {
		return err
	}
	rec := record{Time: now, Kind: kindNotification, ID: id, Webhook: hook}
	err = j.queue(ctx, appendReq{data: data, lines: []line{{rec, len(data)}}, err: make(chan error, 1)})
	// The writer has copied the line, or never will.
	if cap(data) <= maxKeptLine {
		j.lines.Put(&data)
	}
	return err
}

// maxKeptLine bounds the lines kept for reuse: a rare large notification
// does not stay in memory.
const maxKeptLine = 64 << 10

// notificationLine is the journal line of a notification received at t:
// the record that json.Marshal would write, with body as its webhook. id
// is hex (newID); body is one JSON value.
func notificationLine(t time.Time, id string, body []byte) ([]byte, error) {
	return appendNotificationLine(nil, t, id, body)
}

// appendNotificationLine appends notificationLine's line to line.
func appendNotificationLine(line []byte, t time.Time, id string, body []byte) ([]byte, error) {
	line = slices.Grow(line, len(body)+128)
	line = append(line, `{"time":"`...)
	line = t.AppendFormat(line, time.RFC3339Nano)
	line = append(line, `","kind":"`+kindNotification+`","id":"`...)
	line = append(line, id...)
	line = append(line, `","webhook":`...)
	// A record is a line: a body sent indented is compacted. Alertmanager
	// sends one line, kept as it is: compacting costs as much as decoding.
	body = bytes.TrimSpace(body)
	if bytes.IndexByte(body, '\n') >= 0 {
		buf := bytes.NewBuffer(line)
		if err := json.Compact(buf, body); err != nil {
			return nil, err
		}
		line = buf.Bytes()
	} else {
		line = append(line, body...)
	}
	return append(line, "}\n"...), nil
}

// queue hands whole lines to the writer and waits until they are on disk.
func (j *Journal) queue(ctx context.Context, req appendReq) error {
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
	var data []byte // kept: a burst is a batch of 200 lines, and the next one too
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
		data = data[:0]
		for _, r := range batch {
			data = append(data, r.data...)
		}
		offset, err := j.write(data)
		if err == nil {
			j.remember(offset, batch)
		}
		for _, r := range batch {
			r.err <- err
		}
	}
}

// write appends data under an exclusive flock and fsyncs. A failed write is
// cut back off, so that a half line never glues to the next; a file that
// failed is opened again for the next batch. It returns the offset data was
// written at.
func (j *Journal) write(data []byte) (int64, error) {
	offset, err := j.writeLocked(data)
	if err != nil {
		if f, oerr := os.OpenFile(j.path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); oerr == nil {
			j.w.Close()
			j.w = f
		}
		return 0, fmt.Errorf("journal %s: %w", j.path, err)
	}
	return offset, nil
}

func (j *Journal) writeLocked(data []byte) (int64, error) {
	if err := flock(j.w, syscall.LOCK_EX); err != nil {
		return 0, err
	}
	defer flock(j.w, syscall.LOCK_UN)
	fi, err := j.w.Stat()
	if err != nil {
		return 0, err
	}
	if _, err := j.w.Write(data); err != nil {
		j.w.Truncate(fi.Size())
		return 0, err
	}
	return fi.Size(), j.w.Sync()
}

// remember keeps the records of a batch written at offset for read.
func (j *Journal) remember(offset int64, batch []appendReq) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range batch {
		at := offset
		for _, l := range r.lines {
			if len(j.written)-j.taken < maxWritten {
				j.written = append(j.written, writtenRecord{at, l.rec})
			}
			at += int64(l.len)
		}
		offset += int64(len(r.data))
	}
}

// takeWritten returns the record this process wrote at offset, if it kept
// it, and forgets those before: read only goes forward.
func (j *Journal) takeWritten(offset int64) (rec record, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for !ok && j.taken < len(j.written) && j.written[j.taken].offset <= offset {
		if w := j.written[j.taken]; w.offset == offset {
			rec, ok = w.rec, true
		}
		j.written[j.taken] = writtenRecord{}
		j.taken++
	}
	// Move what is left to the front once it is half the slice: the room
	// is reused, and a writer always ahead of the reader does not make the
	// slice grow without end.
	if j.taken > len(j.written)/2 {
		n := copy(j.written, j.written[j.taken:])
		clear(j.written[n:])
		j.written, j.taken = j.written[:n], 0
	}
	return rec, ok
}

// read returns the complete records appended since the last read.
func (j *Journal) read() ([]record, error) {
	for {
		// One buffer, kept from read to read: the worker reads after every
		// batch, and garbage it makes is collected on the requests' time.
		j.buf = slices.Grow(j.buf, 16<<10)
		n, err := j.r.ReadAt(j.buf[len(j.buf):cap(j.buf)], j.offset)
		j.offset += int64(n)
		j.buf = j.buf[:len(j.buf)+n]
		if errors.Is(err, io.EOF) || n == 0 {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	recs := make([]record, 0, bytes.Count(j.buf, []byte{'\n'}))
	rest := j.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		if r, ok := j.takeWritten(j.offset - int64(len(rest))); ok {
			recs = append(recs, r)
		} else if len(bytes.TrimSpace(line)) > 0 {
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				// Stop before it, every time: never guess past it.
				j.buf = j.buf[:copy(j.buf, rest)]
				return recs, fmt.Errorf("journal %s: unreadable record ending at byte %d: %w", j.path, j.offset-int64(len(rest)-i-1), err)
			}
			recs = append(recs, r)
		}
		rest = rest[i+1:]
	}
	// Keep the line not yet complete for the next read.
	j.buf = j.buf[:copy(j.buf, rest)]
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
