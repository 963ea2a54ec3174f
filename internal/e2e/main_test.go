// Package e2e runs the built exporter binary end to end: TLS towards every
// kind of target and on its own endpoint, and the secrets test over
// everything the process emits.
package e2e

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/iapsim"
	"github.com/iapha/iap_ha_exporter/fixtures/lab"
)

var binary string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "iap_ha_exporter")
	if out, err := exec.Command("go", "build", "-o", binary, "../../cmd/iap_ha_exporter").CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "building the exporter: %v\n%s", err, out)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// syncBuffer collects a process's output.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// exporter is the binary serving on addr.
type exporter struct {
	addr   string
	output *syncBuffer // stdout and stderr
	cmd    *exec.Cmd
	exited chan struct{}
}

// startExporter runs the binary with args plus a free listen address and
// waits until it listens. stop ends it; it also ends when the test does.
func startExporter(t *testing.T, args ...string) *exporter {
	t.Helper()
	return startExporterUnder(t, nil, args...)
}

// startExporterWithFileLimit is startExporter with the process's open-file
// limit set to files.
func startExporterWithFileLimit(t *testing.T, files int, args ...string) *exporter {
	t.Helper()
	return startExporterUnder(t, []string{"sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, files)}, args...)
}

// startExporterUnder is startExporter with the binary run by the command
// wrapper (a shell setting a limit, say), which must exec it with the
// arguments that follow.
func startExporterUnder(t *testing.T, wrapper []string, args ...string) *exporter {
	t.Helper()
	ports, err := lab.FreePorts(1)
	if err != nil {
		t.Fatal(err)
	}
	e := &exporter{addr: fmt.Sprintf("127.0.0.1:%d", ports[0]), output: &syncBuffer{}, exited: make(chan struct{})}
	argv := append(append(append(wrapper, binary), args...), "--web.listen-address", e.addr)
	e.cmd = exec.Command(argv[0], argv[1:]...)
	e.cmd.Stdout, e.cmd.Stderr = e.output, e.output
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { e.cmd.Wait(); close(e.exited) }()
	t.Cleanup(e.stop)
	if err := lab.WaitTCP(e.addr, 30*time.Second); err != nil {
		e.stop()
		t.Fatalf("the exporter does not listen: %v\n%s", err, e.output)
	}
	return e
}

// stop ends the process with SIGTERM (SIGKILL after 10 s) and waits.
func (e *exporter) stop() {
	select {
	case <-e.exited:
		return
	default:
	}
	e.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-e.exited:
	case <-time.After(10 * time.Second):
		e.cmd.Process.Kill()
		<-e.exited
	}
}

// closedAddr is an address nothing listens on.
func closedAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func writeFile(t *testing.T, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// startIAPSim starts the IAP simulator with topology until the test ends.
func startIAPSim(t *testing.T, topology iapsim.Topology) *iapsim.Sim {
	t.Helper()
	sim, err := iapsim.Start(topology)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sim.Close)
	return sim
}
