package rabbitmq

import (
	"fmt"
	"io"
)

// Limits on what is read of one management API answer; a larger answer is an
// error, never read whole. /api/queues is decoded as a stream, one row at a
// time, and with the probe's columns a row is about 75 bytes (0.75 MB for
// 10,000 queues), so its limit allows for some 800,000 queues. The other
// answers are decoded whole and are small: /api/nodes is a few tens of
// kilobytes per node.
const (
	maxAnswer       = 16 << 20
	maxQueuesAnswer = 64 << 20
)

// limitedBody fails a read that goes past its limit.
type limitedBody struct {
	io.ReadCloser
	limit, read int64
}

func limitBody(body io.ReadCloser, limit int64) io.ReadCloser {
	return &limitedBody{ReadCloser: body, limit: limit}
}

func (b *limitedBody) Read(p []byte) (int, error) {
	// One byte more than allowed tells a full answer from a cut one.
	if room := b.limit - b.read + 1; int64(len(p)) > room {
		p = p[:room]
	}
	n, err := b.ReadCloser.Read(p)
	if b.read += int64(n); b.read > b.limit {
		return n, fmt.Errorf("answer larger than the %d MiB limit", b.limit>>20)
	}
	return n, err
}
