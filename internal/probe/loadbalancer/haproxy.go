package loadbalancer

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/topology"
)

// maxStatAnswer bounds what is read of `show stat` for one backend: a few
// hundred bytes a server; a larger answer is an error, never read whole.
const maxStatAnswer = 4 << 20

// probeHAProxy asks the stats socket for the backend's servers: `show stat
// <backend> 6 -1` (type 2 backend + 4 servers, every server), one round
// trip. HAProxy answers in CSV and closes the connection.
func (c *Client) probeHAProxy(ctx context.Context, lb *topology.LoadBalancer) error {
	conn, err := dialSocket(ctx, c.cfg.StatsSocket)
	if err != nil {
		return fmt.Errorf("stats socket: %w", err)
	}
	defer conn.Close()
	if deadline, ok := ctx.Deadline(); ok {
		conn.SetDeadline(deadline)
	}
	stop := context.AfterFunc(ctx, func() { conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	if _, err := io.WriteString(conn, "show stat "+c.cfg.Backend+" 6 -1\n"); err != nil {
		return fmt.Errorf("stats socket: %w", err)
	}
	answer, err := io.ReadAll(io.LimitReader(conn, maxStatAnswer+1))
	if err != nil {
		return fmt.Errorf("stats socket: %w", err)
	}
	if len(answer) > maxStatAnswer {
		return fmt.Errorf("stats socket: show stat answer larger than %d MiB", maxStatAnswer>>20)
	}
	servers, err := ParseStat(answer, c.cfg.Backend)
	if err != nil {
		return err
	}
	Route(servers, c.cfg.AllBackups)
	for i := range servers {
		servers[i].IAPServer = c.match(servers[i].Name, servers[i].Address)
	}
	lb.Up, lb.Servers = true, servers
	return nil
}

// ParseStat reads the servers of backend from a `show stat` answer (CSV
// whose header line starts with "# pxname,svname,"; HAProxy management
// guide, "CSV format"). Columns are found by name, so that fields added by
// later releases shift nothing. An answer that is not CSV (HAProxy's
// "No such proxy.", "Permission denied") is an error in HAProxy's words.
func ParseStat(answer []byte, backend string) ([]topology.BalancerServer, error) {
	header, body, _ := bytes.Cut(answer, []byte("\n"))
	cols, ok := bytes.CutPrefix(header, []byte("# "))
	if !ok || !bytes.HasPrefix(cols, []byte("pxname,svname,")) {
		return nil, fmt.Errorf("show stat %s: %q", backend, strings.TrimSpace(string(firstLine(answer))))
	}
	index := map[string]int{}
	for i, name := range strings.Split(strings.TrimRight(string(cols), ",\r"), ",") {
		index[name] = i
	}
	for _, need := range []string{"status", "bck"} {
		if _, ok := index[need]; !ok {
			return nil, fmt.Errorf("show stat: no %s column", need)
		}
	}
	r := csv.NewReader(bytes.NewReader(body))
	r.FieldsPerRecord = -1
	r.ReuseRecord = true
	field := func(rec []string, name string) string {
		if i, ok := index[name]; ok && i < len(rec) {
			return rec[i]
		}
		return ""
	}
	var servers []topology.BalancerServer
	sawBackend := false
	for {
		rec, err := r.Read()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("show stat: %w", err)
		}
		if len(rec) < 2 || rec[0] != backend || rec[1] == "FRONTEND" {
			continue
		}
		if rec[1] == "BACKEND" {
			sawBackend = true
			continue
		}
		s := topology.BalancerServer{
			Name:        rec[1],
			Address:     field(rec, "addr"),
			Status:      field(rec, "status"),
			Backup:      field(rec, "bck") == "1",
			CheckStatus: strings.TrimPrefix(field(rec, "check_status"), "* "),
		}
		s.Reaches = reaches(s.Status)
		if w, err := strconv.Atoi(field(rec, "weight")); err == nil && w == 0 {
			s.Status = orDrain(s.Status)
		}
		servers = append(servers, s)
	}
	if !sawBackend {
		return nil, fmt.Errorf("show stat: no backend %q in the answer", backend)
	}
	return servers, nil
}

func firstLine(b []byte) []byte {
	line, _, _ := bytes.Cut(b, []byte("\n"))
	return line
}

// orDrain: a server whose weight an operator set to 0 takes no new
// traffic, as DRAIN; HAProxy prints it UP.
func orDrain(status string) string {
	if strings.HasPrefix(status, "UP") {
		return "DRAIN"
	}
	return status
}

// reaches reads the outcome of the balancer's own checks from the status:
// UP (and "UP 1/2", still UP while a failing check has not reached fall),
// NOLB and DRAIN pass; DOWN (and "DOWN 1/2") fails; MAINT and "no check"
// run no check.
func reaches(status string) topology.Tristate {
	switch {
	case strings.HasPrefix(status, "UP"), strings.HasPrefix(status, "NOLB"), strings.HasPrefix(status, "DRAIN"):
		return topology.True
	case strings.HasPrefix(status, "DOWN"):
		return topology.False
	}
	return topology.Unknown
}

// usable is a server HAProxy may pick for new traffic: UP (or not
// checked) and of non-zero weight. NOLB, DRAIN, MAINT and DOWN are not.
func usable(s topology.BalancerServer) bool {
	return strings.HasPrefix(s.Status, "UP") || s.Status == "no check"
}

// Route marks the servers that take new traffic now, by HAProxy's rule
// (configuration manual, "backup" and "option allbackups"): every usable
// normal server; when there is none, the first usable backup in the
// backend's order, or every usable backup under allbackups.
func Route(servers []topology.BalancerServer, allBackups bool) {
	normal := false
	for i := range servers {
		servers[i].Routed = !servers[i].Backup && usable(servers[i])
		normal = normal || servers[i].Routed
	}
	if normal {
		return
	}
	for i := range servers {
		if servers[i].Backup && usable(servers[i]) {
			servers[i].Routed = true
			if !allBackups {
				return
			}
		}
	}
}
