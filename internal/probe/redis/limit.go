package redis

import (
	"context"
	"fmt"
	"net"
	"sync/atomic"
	"syscall"
	"time"
)

// maxReply bounds what is read of one reply (INFO replication and the
// Sentinel listings are a few kilobytes): a larger one is an error, never
// read whole. go-redis has no limit of its own; it does allocate a bulk
// string's declared length before reading it, which only the timeout bounds.
const maxReply = 16 << 20

// limitReplies wraps dial so that no reply is read past maxReply. go-redis
// sets a read deadline before it reads each reply, which starts a new count.
func limitReplies(dial func(ctx context.Context, network, addr string) (net.Conn, error)) func(ctx context.Context, network, addr string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		conn, err := dial(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		limited := &limitedConn{Conn: conn}
		if raw, ok := conn.(syscall.Conn); ok {
			// go-redis checks an idle pooled connection through its socket.
			return struct {
				*limitedConn
				syscall.Conn
			}{limited, raw}, nil
		}
		return limited, nil
	}
}

// limitedConn fails a read past maxReply since the last read deadline.
type limitedConn struct {
	net.Conn
	read atomic.Int64
}

func (c *limitedConn) SetDeadline(t time.Time) error {
	c.read.Store(0)
	return c.Conn.SetDeadline(t)
}

func (c *limitedConn) SetReadDeadline(t time.Time) error {
	c.read.Store(0)
	return c.Conn.SetReadDeadline(t)
}

func (c *limitedConn) Read(p []byte) (int, error) {
	n, err := c.Conn.Read(p)
	if c.read.Add(int64(n)) > maxReply {
		return n, fmt.Errorf("reply larger than the %d MiB limit", maxReply>>20)
	}
	return n, err
}
