package probe_test

// Tests that every probe must pass alike.

import (
	"bytes"
	"context"
	"encoding/binary"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/common/model"

	"github.com/iapha/iap_ha_exporter/fixtures/configtest"
	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe/gateway"
	"github.com/iapha/iap_ha_exporter/internal/probe/iap"
	"github.com/iapha/iap_ha_exporter/internal/probe/mongodb"
	"github.com/iapha/iap_ha_exporter/internal/probe/rabbitmq"
	"github.com/iapha/iap_ha_exporter/internal/probe/redis"
)

// hugeAnswer is the size of the hostile answer: larger than every limit.
const hugeAnswer = 100 << 20

// hugeServer answers path with a 200 of hugeAnswer bytes (prefix, then
// filler repeated) and every other path from small. It counts what it wrote.
type hugeServer struct {
	path, prefix, filler string
	small                map[string]string
	written              atomic.Int64
}

func (h *hugeServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if r.URL.Path != h.path {
		io.WriteString(w, h.small[r.URL.Path])
		return
	}
	chunk := strings.Repeat(h.filler, 64<<10/len(h.filler))
	n, _ := io.WriteString(w, h.prefix)
	h.written.Add(int64(n))
	for h.written.Load() < hugeAnswer {
		n, err := io.WriteString(w, chunk)
		h.written.Add(int64(n))
		if err != nil {
			return // the client hung up: the answer was cut
		}
	}
}

var rabbitSmall = map[string]string{
	"/api/overview":         `{"rabbitmq_version":"3.10.8","cluster_name":"c"}`,
	"/api/nodes":            `[]`,
	"/api/policies":         `[]`,
	"/api/federation-links": `[]`,
}

// TestHugeAnswerIsCut serves a 100 MB answer to every HTTP probe: each must
// stop reading at its documented limit and say so, naming the call.
func TestHugeAnswerIsCut(t *testing.T) {
	timeout := model.Duration(time.Minute) // a busy machine must not turn the limit into a timeout
	for _, c := range []struct {
		name   string
		server *hugeServer
		probe  func(url string) (string, error)
		want   []string // each in the error
	}{{
		name:   "iap /health/status",
		server: &hugeServer{path: "/health/status", prefix: `{"host":"`, filler: "a"},
		probe: func(url string) (string, error) {
			p, err := iap.NewClient(configtest.IAP(config.IAP{HealthTimeout: timeout, Servers: []config.IAPServer{{Name: "iap1", URL: url}}}), slog.New(slog.DiscardHandler))
			if err != nil {
				return "", err
			}
			defer p.Close()
			return p.Probe(context.Background())[0].Error, nil
		},
		want: []string{"GET /health/status: ", "answer larger than the 16 MiB limit"},
	}, {
		name:   "gateway /poll",
		server: &hugeServer{path: "/api/v2.0/poll", prefix: `{"hostname":"`, filler: "a"},
		probe: func(url string) (string, error) {
			c, err := gateway.NewClient(configtest.Gateway(config.Gateway{Name: "iag1", URL: url, Timeout: timeout}), slog.New(slog.DiscardHandler))
			if err != nil {
				return "", err
			}
			defer c.Close()
			return c.Probe(context.Background()).Error, nil
		},
		want: []string{"GET /poll: ", "answer larger than the 32 MiB limit"},
	}, {
		name:   "rabbitmq /api/overview (read here)",
		server: &hugeServer{path: "/api/overview", prefix: `{"cluster_name":"`, filler: "a", small: rabbitSmall},
		probe:  probeRabbit(timeout),
		want:   []string{"overview: ", "answer larger than the 16 MiB limit"},
	}, {
		name:   "rabbitmq /api/nodes (read by rabbit-hole)",
		server: &hugeServer{path: "/api/nodes", prefix: `[`, filler: `{"name":"rabbit@a","running":true},`, small: rabbitSmall},
		probe:  probeRabbit(timeout),
		want:   []string{"nodes: ", "answer larger than the 16 MiB limit"},
	}, {
		name:   "rabbitmq /api/queues (streamed)",
		server: &hugeServer{path: "/api/queues", prefix: `[`, filler: `{"name":"` + strings.Repeat("q", 4000) + `","type":"classic"},`, small: rabbitSmall},
		probe:  probeRabbit(timeout),
		want:   []string{"queues: ", "answer larger than the 64 MiB limit"},
	}} {
		t.Run(c.name, func(t *testing.T) {
			srv := httptest.NewServer(c.server)
			defer srv.Close()
			got, err := c.probe(srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			for _, want := range c.want {
				if !strings.Contains(got, want) {
					t.Errorf("error %q does not contain %q", got, want)
				}
			}
			// The client hung up, so the server stops writing; give it a moment.
			srv.CloseClientConnections()
			if n := c.server.written.Load(); n >= hugeAnswer {
				t.Errorf("the server wrote all %d bytes: the answer was read whole", n)
			}
		})
	}
}

func probeRabbit(timeout model.Duration) func(string) (string, error) {
	return func(url string) (string, error) {
		c, err := rabbitmq.NewClient(configtest.RabbitMQ(config.RabbitCluster{Name: "r", URLs: []string{url}, Timeout: timeout}), slog.New(slog.DiscardHandler))
		if err != nil {
			return "", err
		}
		defer c.Close()
		return c.Probe(context.Background()).Error, nil
	}
}

// hugeTCPServer answers the first bytes of every connection with header,
// then filler repeated up to hugeAnswer bytes in all; it counts what it wrote.
type hugeTCPServer struct {
	ln             net.Listener
	header, filler []byte
	written        atomic.Int64
	wg             sync.WaitGroup
}

func startHugeTCPServer(t *testing.T, header, filler []byte) *hugeTCPServer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &hugeTCPServer{ln: ln, header: header, filler: bytes.Repeat(filler, 64<<10/len(filler))}
	s.wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Go(func() { s.serve(c) })
		}
	})
	t.Cleanup(func() { ln.Close(); s.wg.Wait() })
	return s
}

func (s *hugeTCPServer) serve(c net.Conn) {
	defer c.Close()
	if _, err := c.Read(make([]byte, 64<<10)); err != nil {
		return
	}
	n, err := c.Write(s.header)
	for s.written.Add(int64(n)) < hugeAnswer && err == nil {
		n, err = c.Write(s.filler)
	}
}

// A Sentinel that answers with an endless array is cut at the probe's limit.
func TestHugeRedisReplyIsCut(t *testing.T) {
	srv := startHugeTCPServer(t, []byte("*100000\r\n"), []byte("$4000\r\n"+strings.Repeat("a", 4000)+"\r\n"))
	p, err := redis.NewClient(configtest.Redis(config.SentinelGroup{
		Name: "g", Sentinels: []config.Sentinel{{Address: srv.ln.Addr().String()}},
		Timeout: model.Duration(time.Minute),
	}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	g := p.Probe(context.Background())
	if len(g.Sentinels) != 1 || !strings.Contains(g.Sentinels[0].Error, "reply larger than the 16 MiB limit") {
		t.Errorf("Sentinel views %+v, want one whose error names the 16 MiB limit", g.Sentinels)
	}
	if n := srv.written.Load(); n >= hugeAnswer {
		t.Errorf("the server wrote all %d bytes: the reply was read whole", n)
	}
}

// A MongoDB member that announces a 100 MB message is refused by the
// driver, whose limit is the server's maxMessageSizeBytes (48 MB before the
// server has said otherwise), before anything of it is read.
func TestHugeMongoMessageRefused(t *testing.T) {
	header := binary.LittleEndian.AppendUint32(nil, hugeAnswer)
	header = binary.LittleEndian.AppendUint32(header, 1)    // requestID
	header = binary.LittleEndian.AppendUint32(header, 0)    // responseTo
	header = binary.LittleEndian.AppendUint32(header, 2013) // OP_MSG
	srv := startHugeTCPServer(t, header, []byte{0})
	p, err := mongodb.NewClient(configtest.MongoDB(config.ReplicaSet{
		Name: "rs0", URI: "mongodb://" + srv.ln.Addr().String() + "/?directConnection=true",
		Timeout: model.Duration(2 * time.Second),
	}), slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	rs := p.Probe(context.Background())
	if rs.Up || !strings.Contains(rs.Error, "length of read message too large") {
		t.Errorf("replica set up %v, error %q; want down with the driver's size error", rs.Up, rs.Error)
	}
	if n := srv.written.Load(); n >= hugeAnswer {
		t.Errorf("the server wrote all %d bytes: the message was read whole", n)
	}
}
