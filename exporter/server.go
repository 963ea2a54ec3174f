package exporter

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"
	"github.com/mdlayher/vsock"
	"github.com/prometheus/exporter-toolkit/web"
	"golang.org/x/net/netutil"
)

// The HTTP servers' timeouts (the exporter's and the remediation
// receiver's own listener). A client that sends half a request, or nothing,
// or keeps an idle connection must not hold a connection for long.
const (
	// ReadHeaderTimeout closes a connection whose request headers are not
	// in within it: a real client sends them at once.
	ReadHeaderTimeout = 10 * time.Second
	// IdleTimeout closes a kept-alive connection with no next request; it
	// is longer than Prometheus's usual scrape interval, so that scrapes
	// reuse their connection.
	IdleTimeout = 2 * time.Minute
	// answerAllowance is what a request may take beyond the scrape it
	// waits for: reading a webhook's body, writing a large /metrics.
	answerAllowance = time.Minute
	// DefaultMaxConnections is the default of --web.max-connections, as
	// Prometheus's own.
	DefaultMaxConnections = 512
)

// NewServer is an http.Server for handler with the timeouts above. The
// read and write timeouts let a request with the default scrape deadline
// finish (Go cancels a request's context when its ReadTimeout passes);
// /metrics moves both for a scrape whose header asks for longer.
func NewServer(handler http.Handler, defaultScrape time.Duration, logger *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           handler,
		ErrorLog:          slog.NewLogLogger(logger.Handler(), slog.LevelError),
		ReadHeaderTimeout: ReadHeaderTimeout,
		ReadTimeout:       defaultScrape + answerAllowance,
		WriteTimeout:      defaultScrape + answerAllowance,
		IdleTimeout:       IdleTimeout,
	}
}

// extendDeadlines gives the request behind w until timeout plus the
// allowance to finish, whatever the server's timeouts.
func extendDeadlines(w http.ResponseWriter, timeout time.Duration) {
	rc := http.NewResponseController(w)
	deadline := time.Now().Add(timeout + answerAllowance)
	// Not supported by a test's recorder: then there is no deadline to move.
	_ = rc.SetReadDeadline(deadline)
	_ = rc.SetWriteDeadline(deadline)
}

// ListenAndServe is exporter-toolkit's web.ListenAndServe (listen addresses,
// vsock:// addresses or systemd sockets, then TLS and basic auth from the
// web configuration) with at most maxConns connections open at once on each
// listener (0: no limit); the connections beyond wait in the kernel's
// queue, costing no file descriptor. maxConns is lowered to keep half of
// the process's open-file limit for its targets.
func ListenAndServe(server *http.Server, flags *web.FlagConfig, maxConns int, logger *slog.Logger) error {
	var (
		listeners []net.Listener
		err       error
	)
	if flags.WebSystemdSocket != nil && *flags.WebSystemdSocket {
		logger.Info("Listening on systemd activated listeners instead of port listeners.")
		if listeners, err = activation.Listeners(); err != nil {
			return err
		}
		if len(listeners) == 0 {
			return errors.New("no socket activation file descriptors found")
		}
	} else {
		if flags.WebListenAddresses == nil || len(*flags.WebListenAddresses) == 0 {
			return web.ErrNoListeners
		}
		for _, address := range *flags.WebListenAddresses {
			l, err := listen(address)
			if err != nil {
				for _, l := range listeners {
					l.Close()
				}
				return err
			}
			listeners = append(listeners, l)
		}
	}
	if maxConns > 0 {
		if byFiles := openFileLimit() / 2 / len(listeners); byFiles > 0 && byFiles < maxConns {
			logger.Info("connections limited to half the open-file limit", "max_connections", byFiles, "listeners", len(listeners))
			maxConns = byFiles
		}
		for i, l := range listeners {
			listeners[i] = netutil.LimitListener(l, maxConns)
		}
	}
	defer func() {
		for _, l := range listeners {
			l.Close()
		}
	}()
	return web.ServeMultiple(listeners, server, flags, logger)
}

func listen(address string) (net.Listener, error) {
	if !strings.HasPrefix(address, "vsock://") {
		return net.Listen("tcp", address)
	}
	u, err := url.Parse(address)
	if err != nil {
		return nil, err
	}
	_, portStr, err := net.SplitHostPort(u.Host)
	if err != nil {
		return nil, err
	}
	port, err := strconv.ParseUint(portStr, 10, 32)
	if err != nil {
		return nil, fmt.Errorf("vsock port: %w", err)
	}
	return vsock.Listen(uint32(port), nil)
}

// openFileLimit is the process's limit on open files, 0 if unknown.
func openFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
