package remediation

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"syscall"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// Record kinds of the journal.
const (
	kindNotification = "notification" // a webhook, written before answering 202
	kindProcessed    = "processed"    // notifications whose alerts were all decided
	kindDecision     = "decision"     // the outcome of the gates for one alert
	kindClaimed      = "claimed"      // the incident was claimed in Redis, by holder
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
	// claimed: the lease holder (this process) that claimed the incident
	Holder string `json:"holder,omitempty"`
	// ack
	By   string `json:"by,omitempty"`
	Note string `json:"note,omitempty"`
}

// Journal is the receiver's durable memory: a file of JSON
// lines, each batch fsynced before Append returns. Appends from concurrent
// requests share one write and one fsync (group commit). Other processes
// (the ack and promote commands) append to the same file under an flock;
// Catch up reads what anyone appended since the last call.
//
// The serving receiver compacts it (compact): it writes a new file and
// renames it over the journal while holding the flock of the old one. Every
// appender, having taken the flock, checks that its file is still the one
// at the path and opens the path again if not; a reader of another process
// finds the file replaced and reads the new one from its start.
type Journal struct {
	path string
	w    *os.File // O_APPEND, owned by the writer goroutine
	reqs chan appendReq
	done chan struct{}

	// Read side, used by one goroutine at a time: the file read, its inode,
	// the offset read up to, the bytes read after the last complete line,
	// and the number of complete lines before them.
	r      *os.File
	rIno   uint64
	offset int64
	buf    []byte
	lineNo int64

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

// writtenRecord is a record on disk at offset of the file with inode ino,
// as it was before encoding.
type writtenRecord struct {
	ino    uint64
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

// OpenJournal opens (creating) the journal at path, a regular file. A last
// line cut short by a crash is removed, with a warning to logger; any other
// unreadable line is an error, since guessing past it could act twice.
func OpenJournal(path string, logger *slog.Logger) (*Journal, error) {
	w, err := openAppend(path)
	if err != nil {
		return nil, err
	}
	r, err := os.Open(path)
	if err != nil {
		w.Close()
		return nil, err
	}
	j := &Journal{path: path, w: w, r: r, reqs: make(chan appendReq, 256), done: make(chan struct{})}
	if j.rIno, err = inode(r); err != nil {
		w.Close()
		r.Close()
		return nil, err
	}
	kept, size, err := j.dropTornTail()
	if err != nil {
		j.w.Close()
		j.r.Close()
		return nil, err
	}
	if kept < size {
		if logger == nil {
			logger = slog.New(slog.DiscardHandler)
		}
		logger.Warn("remediation journal: its last line was cut short (a write the process did not finish, never acknowledged); removed",
			"file", path, "offset", kept, "bytes", size-kept)
	}
	go j.writer()
	return j, nil
}

// openAppend opens path for appending, creating it, and refuses what is
// not a regular file: a FIFO would hang the open (O_NONBLOCK keeps it from
// waiting), and a device such as /dev/null would swallow every record.
// The journal and the audit log are opened so.
func openAppend(path string) (*os.File, error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		if fi, serr := os.Stat(path); serr == nil && !fi.Mode().IsRegular() {
			return nil, config.CheckRegular(path, fi)
		}
		return nil, err
	}
	fi, err := f.Stat()
	if err == nil {
		err = config.CheckRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// dropTornTail truncates a final line without its newline: a write the
// crash cut short, which was therefore never acknowledged. It returns the
// size kept and the size found.
func (j *Journal) dropTornTail() (kept, size int64, err error) {
	if err := flock(j.w, syscall.LOCK_EX); err != nil {
		return 0, 0, err
	}
	defer flock(j.w, syscall.LOCK_UN)
	fi, err := j.w.Stat()
	if err != nil || fi.Size() == 0 {
		return 0, 0, err
	}
	size = fi.Size()
	buf := make([]byte, min(size, 64<<10))
	for end := size; end > 0; {
		start := max(0, end-int64(len(buf)))
		if _, err := j.r.ReadAt(buf[:end-start], start); err != nil {
			return 0, size, err
		}
		if i := bytes.LastIndexByte(buf[:end-start], '\n'); i >= 0 {
			kept = start + int64(i) + 1
			if kept == size {
				return size, size, nil
			}
			return kept, size, j.w.Truncate(kept)
		}
		end = start
	}
	return 0, size, j.w.Truncate(0)
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
	if err := j.queue(ctx, appendReq{data: buf.Bytes(), lines: lines, err: make(chan error, 1)}); err != nil {
		return err
	}
	for _, r := range recs {
		crashAt(r.Kind)
	}
	return nil
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

// appendNotificationLine appends to line the journal line of a
// notification received at t: the record that json.Marshal would write,
// with body as its webhook. id is hex (newID); body is one JSON value.
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
		err := j.write(data, batch)
		for _, r := range batch {
			r.err <- err
		}
	}
}

// write appends data, the lines of batch, under an exclusive flock and
// fsyncs. A failed write is cut back off, so that a half line never glues
// to the next; a file that failed is opened again for the next batch.
func (j *Journal) write(data []byte, batch []appendReq) error {
	if err := j.writeLocked(data, batch); err != nil {
		j.reopenWriter()
		return fmt.Errorf("journal %s: %w", j.path, err)
	}
	return nil
}

func (j *Journal) reopenWriter() {
	if f, err := openAppend(j.path); err == nil {
		j.w.Close()
		j.w = f
	}
}

func (j *Journal) writeLocked(data []byte, batch []appendReq) error {
	fi, err := j.lockWriter()
	if err != nil {
		return err
	}
	defer flock(j.w, syscall.LOCK_UN)
	if _, err := j.w.Write(data); err != nil {
		j.w.Truncate(fi.Size())
		return err
	}
	if err := j.w.Sync(); err != nil {
		return err
	}
	// Under the lock: a compaction, which reads up to the end and forgets
	// what was remembered, never finds lines of this batch unremembered.
	j.remember(ino(fi), fi.Size(), batch)
	return nil
}

// lockWriter takes the flock of the file at the path for the writer,
// opening the path again when a compaction replaced the file it had while
// it waited for the lock.
func (j *Journal) lockWriter() (os.FileInfo, error) {
	for {
		if err := flock(j.w, syscall.LOCK_EX); err != nil {
			return nil, err
		}
		fi, err := j.w.Stat()
		if err != nil {
			flock(j.w, syscall.LOCK_UN)
			return nil, err
		}
		at, err := os.Stat(j.path)
		if err == nil && os.SameFile(fi, at) {
			return fi, nil
		}
		flock(j.w, syscall.LOCK_UN)
		f, err := openAppend(j.path)
		if err != nil {
			return nil, err
		}
		j.w.Close()
		j.w = f
	}
}

// remember keeps the records of a batch written at offset of the file with
// inode ino for read.
func (j *Journal) remember(ino uint64, offset int64, batch []appendReq) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for _, r := range batch {
		at := offset
		for _, l := range r.lines {
			if len(j.written)-j.taken < maxWritten {
				j.written = append(j.written, writtenRecord{ino, at, l.rec})
			}
			at += int64(l.len)
		}
		offset += int64(len(r.data))
	}
}

// takeWritten returns the record this process wrote at offset of the file
// the reader reads, if it kept it, and forgets those before: read only goes
// forward. Records of another file (one a compaction replaced, or replaced
// this one with) are forgotten too: read decodes their lines instead.
func (j *Journal) takeWritten(offset int64) (rec record, ok bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	for !ok && j.taken < len(j.written) && (j.written[j.taken].offset <= offset || j.written[j.taken].ino != j.rIno) {
		if w := j.written[j.taken]; w.offset == offset && w.ino == j.rIno {
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

// read returns the complete records appended since the last read. When
// another process has compacted the journal since, reset is true and recs
// are the whole new journal, to replay from nothing.
func (j *Journal) read() (recs []record, reset bool, err error) {
	if reset, err = j.followReplaced(); err != nil {
		return nil, false, err
	}
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
			return nil, reset, err
		}
	}
	recs = make([]record, 0, bytes.Count(j.buf, []byte{'\n'}))
	rest := j.buf
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := rest[:i]
		start := j.offset - int64(len(rest))
		if r, ok := j.takeWritten(start); ok {
			recs = append(recs, r)
		} else if len(bytes.TrimSpace(line)) > 0 {
			var r record
			if err := json.Unmarshal(line, &r); err != nil {
				// Stop before it, every time: never guess past it.
				j.buf = j.buf[:copy(j.buf, rest)]
				return recs, reset, &UnreadableLineError{File: j.path, Line: j.lineNo + 1, Offset: start, Err: err}
			}
			recs = append(recs, r)
		}
		rest = rest[i+1:]
		j.lineNo++
	}
	// Keep the line not yet complete for the next read.
	j.buf = j.buf[:copy(j.buf, rest)]
	return recs, reset, nil
}

// followReplaced moves the reader to the file at the path when it is no
// longer the one read (another process compacted the journal), at its start.
func (j *Journal) followReplaced() (bool, error) {
	at, err := os.Stat(j.path)
	if err != nil {
		return false, fmt.Errorf("journal %s: %w", j.path, err)
	}
	if ino(at) == j.rIno {
		return false, nil
	}
	f, err := os.Open(j.path)
	if err != nil {
		return false, err
	}
	j.moveReader(f, 0, 0)
	return true, nil
}

// UnreadableLineError is a line of the journal that is not a record:
// written by something else, or damaged. The journal is never read past
// it: what it said cannot be known, and guessing could act twice.
type UnreadableLineError struct {
	File   string
	Line   int64 // from 1
	Offset int64 // of its first byte
	Err    error
}

func (e *UnreadableLineError) Error() string {
	return fmt.Sprintf("journal %s: line %d (at byte %d) is not a record the receiver can read: %v", e.File, e.Line, e.Offset, e.Err)
}

func (e *UnreadableLineError) Unwrap() error { return e.Err }

// moveReader makes the reader read f from offset on, lines being the
// number of lines before offset.
func (j *Journal) moveReader(f *os.File, offset, lines int64) {
	j.r.Close()
	j.r, j.offset, j.buf, j.lineNo = f, offset, j.buf[:0], lines
	j.rIno, _ = inode(f) // on error 0: no record remembered matches
	j.mu.Lock()
	clear(j.written)
	j.written, j.taken = j.written[:0], 0
	j.mu.Unlock()
}

// size is the journal's size when it was last read.
func (j *Journal) size() int64 { return j.offset }

// Steps of compact, named for tests that fail one as a crash would.
const (
	stepWrite   = "write"   // the new journal, to <journal>.tmp
	stepSync    = "sync"    // fsync of the new journal
	stepRename  = "rename"  // over the journal
	stepSyncDir = "syncdir" // fsync of the directory: the rename is durable
)

// compact replaces the journal by snapshot's records. Under the journal's
// flock it reads what was appended since the last read and gives it to
// snapshot, which applies it and returns the records that replay to the
// same state; it writes them to <journal>.tmp, fsyncs it, renames it over
// the journal and fsyncs the directory. A crash leaves either the old
// journal or the new one, each whole: the rename is atomic, and the new file
// is on disk before it. Appenders waiting for the lock find the file
// replaced and append to the new one; the reader goes on after the
// snapshot. replaced reports whether the path now holds the new journal
// (it does after a failed directory fsync).
func (j *Journal) compact(snapshot func(tail []record, reset bool) []record) (replaced bool, err error) {
	return j.compactFailing(snapshot, func(string) error { return nil })
}

// compactFailing is compact with each step first asking before: an error
// from it fails the step as a crash there would stop it (tests).
func (j *Journal) compactFailing(snapshot func(tail []record, reset bool) []record, before func(step string) error) (replaced bool, err error) {
	defer func() {
		if err != nil {
			err = fmt.Errorf("compacting journal %s: %w", j.path, err)
		}
	}()
	lock, err := j.lockPath()
	if err != nil {
		return false, err
	}
	defer lock.Close() // and with it the lock
	tail, reset, err := j.read()
	if err != nil {
		return false, err
	}
	var data bytes.Buffer
	enc := json.NewEncoder(&data)
	recs := snapshot(tail, reset)
	for _, r := range recs {
		if err := enc.Encode(r); err != nil {
			return false, err
		}
	}
	tmp := j.path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return false, err
	}
	if err := j.writeNew(f, data.Bytes(), before); err != nil {
		f.Close()
		os.Remove(tmp)
		return false, err
	}
	// The new file is the journal now: read on after the snapshot.
	j.moveReader(f, int64(data.Len()), int64(len(recs)))
	if err := before(stepSyncDir); err != nil {
		return true, err
	}
	return true, syncDir(filepath.Dir(j.path))
}

// writeNew writes data to f, fsyncs it and renames it over the journal.
func (j *Journal) writeNew(f *os.File, data []byte, before func(step string) error) error {
	if err := before(stepWrite); err != nil {
		f.Write(data[:len(data)/2]) // as a crash in the middle of the write
		return err
	}
	if _, err := f.Write(data); err != nil {
		return err
	}
	if err := before(stepSync); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := before(stepRename); err != nil {
		return err
	}
	return os.Rename(f.Name(), j.path)
}

// lockPath takes the flock of the file at the path on a descriptor of its
// own, making sure that it locked the file still at the path.
func (j *Journal) lockPath() (*os.File, error) {
	for {
		f, err := os.Open(j.path)
		if err != nil {
			return nil, err
		}
		if err := flock(f, syscall.LOCK_EX); err != nil {
			f.Close()
			return nil, err
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			return nil, err
		}
		if at, err := os.Stat(j.path); err == nil && os.SameFile(fi, at) {
			return f, nil
		}
		f.Close()
	}
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	return errors.Join(d.Sync(), d.Close())
}

func inode(f *os.File) (uint64, error) {
	fi, err := f.Stat()
	if err != nil {
		return 0, err
	}
	return ino(fi), nil
}

func ino(fi os.FileInfo) uint64 {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return st.Ino
	}
	return 0
}

// lockJournalFor takes, without waiting, the lock that makes the journal
// at path this process's alone: a second receiver on the same journal would
// decide every notification twice. The lock goes with the file's descriptor.
func lockJournalFor(path string) (*os.File, error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := flock(f, syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("another receiver uses the journal %s: %w", path, err)
	}
	return f, nil
}

// flock retries a lock interrupted by a signal (EINTR), which the Go
// runtime's own signals cause.
func flock(f *os.File, how int) error {
	for {
		err := syscall.Flock(int(f.Fd()), how)
		if !errors.Is(err, syscall.EINTR) {
			return err
		}
	}
}
