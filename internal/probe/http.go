package probe

import (
	"fmt"
	"net"
	"net/http"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// HTTPOptions shape the connection pool of one HTTP target.
type HTTPOptions struct {
	TLS *promconfig.TLSConfig
	// MaxConnsPerHost bounds the connections open to one host (0: no
	// bound); MaxIdleConnsPerHost is how many stay open between probes.
	MaxConnsPerHost, MaxIdleConnsPerHost int
	// ProxyFromEnvironment sends requests through HTTP_PROXY / HTTPS_PROXY
	// as NO_PROXY allows.
	ProxyFromEnvironment bool
}

// maxResponseHeaderBytes bounds the header of any answer: the real ones
// are a few hundred bytes, a hostile one must not cost megabytes.
const maxResponseHeaderBytes = 64 << 10

// Transport is the HTTP transport of every client of the exporter and the
// remediation receiver: IAP, Automation Gateways, the RabbitMQ management
// API.
//
// It follows no redirect, to any origin. A redirect re-sends the request
// elsewhere: a 307 or 308 repeats a login's body (user and password), and
// Go's client keeps the Authorization header for a host of the same name
// on another port. None of these APIs redirects; a redirect is a mistaken
// URL or an attack, and the error says where it pointed. The refusal sits
// in the transport, not in an http.Client's CheckRedirect, so that
// libraries which build their own http.Client (rabbit-hole) obey it too.
type Transport struct {
	base *http.Transport
}

// NewTransport builds a Transport. Deadlines come from each request's
// context.
func NewTransport(opts HTTPOptions) (*Transport, error) {
	base := &http.Transport{
		DialContext:            (&net.Dialer{KeepAlive: 30 * time.Second}).DialContext,
		MaxConnsPerHost:        opts.MaxConnsPerHost,
		MaxIdleConnsPerHost:    opts.MaxIdleConnsPerHost,
		IdleConnTimeout:        90 * time.Second,
		MaxResponseHeaderBytes: maxResponseHeaderBytes,
	}
	if opts.ProxyFromEnvironment {
		base.Proxy = http.ProxyFromEnvironment
	}
	if opts.TLS != nil {
		tc, err := promconfig.NewTLSConfig(opts.TLS)
		if err != nil {
			return nil, err
		}
		base.TLSClientConfig = tc
	}
	return &Transport{base: base}, nil
}

// Client is an http.Client over t.
func (t *Transport) Client() *http.Client {
	return &http.Client{
		Transport: t,
		// Never reached, as t answers no redirect; stated again so that a
		// client built here never follows one whatever its transport.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// RoundTrip sends req and refuses a redirect.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	res, err := t.base.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	switch res.StatusCode {
	case http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect:
		// Not drained: a hostile body may never end; the connection goes.
		res.Body.Close()
		return nil, &RedirectError{Code: res.StatusCode, Location: res.Header.Get("Location")}
	}
	return res, nil
}

// CloseIdleConnections closes the pooled connections not in use.
func (t *Transport) CloseIdleConnections() { t.base.CloseIdleConnections() }

// RedirectError is a redirect the Transport refused to follow.
type RedirectError struct {
	Code     int
	Location string
}

// maxLocation bounds how much of a Location an error quotes.
const maxLocation = 200

func (e *RedirectError) Error() string {
	loc := config.RedactURL(e.Location)
	if len(loc) > maxLocation {
		loc = loc[:maxLocation] + "…"
	}
	return fmt.Sprintf("answered %d %s to %q: redirects are not followed (check the configured URL)",
		e.Code, http.StatusText(e.Code), loc)
}
