package redis

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// replay serves the replies recorded in dir over real TCP: a command
// "SENTINEL MASTER x" is answered with dir/sentinel_master.resp, "INFO
// replication" with dir/info_replication.resp (or dir/info.resp), and
// anything without a recording with Redis' unknown-command error. HELLO
// gets that error too, as from a Redis 5, so the client speaks RESP2, in
// which the replies were recorded.
func replay(t testing.TB, dir string) string {
	t.Helper()
	return serveRESP(t, 0, func(args []string) []byte {
		var names []string
		switch cmd := strings.ToLower(args[0]); {
		case cmd == "sentinel" && len(args) > 1:
			names = []string{"sentinel_" + strings.ToLower(args[1])}
		case cmd == "info" && len(args) > 1:
			names = []string{"info_" + strings.ToLower(args[1]), "info"}
		default:
			names = []string{cmd}
		}
		for _, n := range names {
			if b, err := os.ReadFile(filepath.Join(dir, n+".resp")); err == nil {
				return b
			}
		}
		return unknownCommand(args)
	})
}

func unknownCommand(args []string) []byte {
	return fmt.Appendf(nil, "-ERR unknown command '%s'\r\n", args[0])
}

// serveRESP serves RESP over real TCP until the test ends: every command
// is answered with reply(command), delay after it arrived, as over a link
// with that latency; pipelined commands are answered together, one delay
// after they were sent. A nil reply is never sent, as from a hung server.
// When the test ends every client connection must have been closed.
func serveRESP(t testing.TB, delay time.Duration, reply func(args []string) []byte) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns sync.WaitGroup
	t.Cleanup(func() {
		l.Close()
		closed := make(chan struct{})
		go func() { conns.Wait(); close(closed) }()
		select {
		case <-closed:
		case <-time.After(5 * time.Second):
			t.Errorf("%s: client connections still open after the test", l.Addr())
		}
	})
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			conns.Go(func() { serveConn(c, delay, reply) })
		}
	}()
	return l.Addr().String()
}

// serveConn reads commands and hands each reply to a writer that sends it
// when due, so that the delay never holds up reading the next command.
func serveConn(c net.Conn, delay time.Duration, reply func(args []string) []byte) {
	defer c.Close()
	type answer struct {
		due   time.Time
		reply []byte
	}
	answers := make(chan answer, 64)
	written := make(chan struct{})
	go func() {
		defer close(written)
		for a := range answers {
			time.Sleep(time.Until(a.due))
			if _, err := c.Write(a.reply); err != nil {
				return
			}
		}
	}()
	defer func() { close(answers); <-written }()

	r := bufio.NewReader(c)
	for {
		args, err := readCommand(r)
		if err != nil {
			return
		}
		b := reply(args)
		if b == nil {
			continue
		}
		select {
		case answers <- answer{time.Now().Add(delay), b}:
		case <-written: // the client went away
			return
		}
	}
}

// readCommand reads one RESP array of bulk strings, as clients send commands.
func readCommand(r *bufio.Reader) ([]string, error) {
	line, err := r.ReadString('\n')
	if err != nil {
		return nil, err
	}
	if !strings.HasPrefix(line, "*") {
		return nil, fmt.Errorf("not a command: %q", line)
	}
	n, err := strconv.Atoi(strings.TrimSpace(line[1:]))
	if err != nil || n < 1 {
		return nil, fmt.Errorf("bad array header %q", line)
	}
	args := make([]string, n)
	for i := range args {
		hdr, err := r.ReadString('\n')
		if err != nil {
			return nil, err
		}
		size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
		if err != nil || size < 0 {
			return nil, fmt.Errorf("bad bulk header %q", hdr)
		}
		b := make([]byte, size+2)
		if _, err := io.ReadFull(r, b); err != nil {
			return nil, err
		}
		args[i] = string(b[:size])
	}
	return args, nil
}

// recordedBulk returns the payload of a recorded bulk-string reply.
func recordedBulk(t testing.TB, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	hdr, body, ok := bytes.Cut(b, []byte("\r\n"))
	if !ok || hdr[0] != '$' {
		t.Fatalf("%s: not a bulk string reply", path)
	}
	return string(bytes.TrimSuffix(body, []byte("\r\n")))
}

// recordedMaps returns the maps of a recorded SENTINEL MASTER (one flat
// array) or SENTINEL REPLICAS/SENTINELS (an array of flat arrays) reply.
func recordedMaps(t testing.TB, path string) []map[string]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	r := bufio.NewReader(bytes.NewReader(b))
	line, _ := r.ReadString('\n')
	n, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
	flat := func(n int) map[string]string {
		m := map[string]string{}
		for range n / 2 {
			k, _ := readBulk(r)
			v, _ := readBulk(r)
			m[k] = v
		}
		return m
	}
	if peek, _ := r.Peek(1); len(peek) == 1 && peek[0] == '*' {
		var out []map[string]string
		for range n {
			line, _ := r.ReadString('\n')
			m, _ := strconv.Atoi(strings.TrimSpace(line[1:]))
			out = append(out, flat(m))
		}
		return out
	}
	return []map[string]string{flat(n)}
}

func readBulk(r *bufio.Reader) (string, error) {
	hdr, err := r.ReadString('\n')
	if err != nil {
		return "", err
	}
	size, err := strconv.Atoi(strings.TrimSpace(strings.TrimPrefix(hdr, "$")))
	if err != nil || size < 0 {
		return "", fmt.Errorf("bad bulk header %q", hdr)
	}
	b := make([]byte, size+2)
	_, err = io.ReadFull(r, b)
	return string(b[:size]), err
}
