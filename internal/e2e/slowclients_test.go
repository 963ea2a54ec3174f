package e2e

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/recorded"
)

// TestHalfSentRequestIsClosed (slowloris): a client that sends part of its
// request headers and then nothing has its connection closed by the
// server's header timeout (10 s), not held open for as long as it likes.
func TestHalfSentRequestIsClosed(t *testing.T) {
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, "rabbitmq:\n  - {name: r, urls: [\"http://"+closedAddr(t)+"\"]}\n")
	exp := startExporter(t, "--config.file", file)
	for name, start := range map[string]string{
		"half-sent headers": "GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: ",
		"nothing sent":      "",
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			c, err := net.Dial("tcp", exp.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, start); err != nil {
				t.Fatal(err)
			}
			// Generous: the server closes after 10 s; without a timeout it
			// never does.
			c.SetReadDeadline(time.Now().Add(40 * time.Second))
			began := time.Now()
			_, err = io.ReadAll(c)
			if ne, ok := err.(net.Error); ok && ne.Timeout() {
				t.Fatalf("the connection is still open after %s", time.Since(began).Round(time.Second))
			}
		})
	}
}

// TestIdleConnectionsDoNotStopMetrics: with the process limited to 256
// open files, 400 clients connect and send nothing. The exporter keeps
// half its files for its targets (the connections beyond wait in the
// kernel's queue) and closes the idle ones at its header timeout, so
// /metrics is answered and its targets are still reached.
func TestIdleConnectionsDoNotStopMetrics(t *testing.T) {
	good := httptest.NewServer(recorded.RabbitMQ("../probe/rabbitmq/testdata/3.10/healthy"))
	defer good.Close()
	file := filepath.Join(t.TempDir(), "config.yml")
	writeFile(t, file, fmt.Sprintf("rabbitmq:\n  - {name: good, urls: [%q]}\n", good.URL))
	exp := startExporterWithFileLimit(t, 256, "--config.file", file)
	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 400 {
		c, err := net.Dial("tcp", exp.addr)
		if err != nil {
			t.Fatalf("connection %d: %v", len(idle)+1, err)
		}
		idle = append(idle, c)
	}
	// Generous: the idle connections go in rounds of the header timeout
	// (10 s); without timeouts they would stay for ever.
	client := &http.Client{Timeout: 90 * time.Second}
	code, body := get(t, client, "http://"+exp.addr+"/metrics", "", "")
	if code != http.StatusOK || !strings.Contains(body, `iap_ha_rabbitmq_up{cluster="good"} 1`) {
		t.Errorf("HTTP %d, want the target reached:\n%s", code, grep(body, "rabbitmq_up"))
	}
	if strings.Contains(exp.output.String(), "too many open files") {
		t.Errorf("the exporter ran out of files:\n%s", grep(exp.output.String(), "too many open files"))
	}
}
