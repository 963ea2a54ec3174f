package iap

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"strings"
	"time"

	promconfig "github.com/prometheus/common/config"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe"
)

// maxBody bounds what is read of any answer: a larger one is an error,
// never read whole (the largest real answer, a page of 25 adapters, is a few
// kilobytes).
const maxBody = 16 << 20

const userAgent = "iap_ha_exporter"

// statusError is an answer other than 200.
type statusError struct {
	Method, Path string
	Code         int
	Message      string // IAP's {"message": …}, if any
}

func (e *statusError) Error() string {
	s := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Code, http.StatusText(e.Code))
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

func hasStatus(err error, code int) bool {
	var se *statusError
	return errors.As(err, &se) && se.Code == code
}

// server is one configured IAP server and its pooled connections.
type server struct {
	cfg     config.IAPServer
	base    *url.URL
	client  *http.Client
	timeout time.Duration
	session *session   // nil without credentials
	cred    credential // the token this server last accepted; guarded by session.lock
}

// maxConnsPerServer is what a scrape uses at once: /health/status and the
// five authenticated calls (further list pages wait for one of them).
const maxConnsPerServer = 6

// newHTTPClient keeps every connection a scrape uses open for the next
// scrape, and opens no more: the connections per server are bounded rather
// than dialled and closed anew each scrape. Like every client of the
// exporter, it follows no redirect (probe.Transport).
func newHTTPClient(tlsCfg *promconfig.TLSConfig) (*http.Client, error) {
	t, err := probe.NewTransport(probe.HTTPOptions{
		TLS:                 tlsCfg,
		MaxConnsPerHost:     maxConnsPerServer,
		MaxIdleConnsPerHost: maxConnsPerServer,
	})
	if err != nil {
		return nil, err
	}
	return t.Client(), nil
}

// do sends one request and returns the body of a 200 answer; any other
// status is a *statusError.
func (s *server) do(ctx context.Context, method, path string, body io.Reader, header http.Header) ([]byte, *http.Response, error) {
	u := *s.base
	p, query, _ := strings.Cut(path, "?")
	u.Path = strings.TrimSuffix(u.Path, "/") + p
	u.RawQuery = query
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, nil, err
	}
	for k, v := range header {
		req.Header[k] = v
	}
	req.Header.Set("User-Agent", userAgent)
	resp, err := s.client.Do(req)
	if err != nil {
		return nil, nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, nil, fmt.Errorf("%s %s: reading the answer: %w", method, p, err)
	}
	if len(b) > maxBody {
		return nil, nil, fmt.Errorf("%s %s: answer larger than the %d MiB limit", method, p, maxBody>>20)
	}
	if resp.StatusCode != http.StatusOK {
		return b, resp, &statusError{Method: method, Path: p, Code: resp.StatusCode, Message: decodeMessage(b)}
	}
	return b, resp, nil
}

// call sends an authenticated request. A 401 means the session ended
// (expiry, revocation, a Redis restart) or the token came from another
// token domain: take the cluster's newest token, or log in through s, and
// retry; a token s itself just issued is not retried.
func (s *server) call(ctx context.Context, method, path string) ([]byte, error) {
	var (
		b   []byte
		err error
	)
	for range 3 { // its own token, the cluster's newest, a login
		cred, fresh, gerr := s.session.get(ctx, s)
		if gerr != nil {
			return nil, gerr
		}
		b, _, err = s.do(ctx, method, path, nil, cred.header())
		if !hasStatus(err, http.StatusUnauthorized) || fresh {
			return b, err
		}
		s.session.drop(ctx, s, cred)
	}
	return b, err
}

// credential is a token and how it is sent.
type credential struct {
	token  string
	cookie string // cookie name for a /login token; empty for an OAuth bearer token
}

func (c credential) header() http.Header {
	if c.cookie == "" {
		return http.Header{"Authorization": {"Bearer " + c.token}}
	}
	return http.Header{"Cookie": {(&http.Cookie{Name: c.cookie, Value: c.token}).String()}}
}

// session is one login shared by the servers of a cluster (servers sharing
// a Redis accept each other's tokens), reused across scrapes until a 401.
// Each server keeps the token it last had accepted, so servers declared one
// cluster that are really two token domains (a site with its own Redis)
// each keep their own instead of logging each other out.
type session struct {
	auth config.IAPAuth
	// lock is a mutex that honours contexts: one login at a time, and the
	// others wait for its token instead of logging in too. It guards the
	// servers' tokens too.
	lock chan struct{}
	cred credential // the newest token of the cluster
	// A refused login is not retried before loginRetryDelay: bad credentials
	// must not turn every call of every scrape into a login attempt (and an
	// account lockout).
	failedAt time.Time
	failure  error
}

const loginRetryDelay = 5 * time.Second

func newSession(auth config.IAPAuth) *session {
	return &session{auth: auth, lock: make(chan struct{}, 1)}
}

func (ss *session) acquire(ctx context.Context) error {
	select {
	case ss.lock <- struct{}{}:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (ss *session) release() { <-ss.lock }

// loggedIn reports whether s has a token to send without a login (after a
// login in progress, if any).
func (ss *session) loggedIn(ctx context.Context, s *server) bool {
	if ss.acquire(ctx) != nil {
		return false
	}
	defer ss.release()
	return s.cred.token != "" || ss.cred.token != ""
}

// get returns the token for s: its own, else the cluster's newest, else a
// new one it logs in through s for (fresh).
func (ss *session) get(ctx context.Context, s *server) (cred credential, fresh bool, err error) {
	if err := ss.acquire(ctx); err != nil {
		return credential{}, false, err
	}
	defer ss.release()
	if s.cred.token != "" {
		return s.cred, false, nil
	}
	if ss.cred.token != "" {
		s.cred = ss.cred
		return s.cred, false, nil
	}
	if ss.failure != nil && time.Since(ss.failedAt) < loginRetryDelay {
		return credential{}, false, ss.failure
	}
	cred, err = s.login(ctx, ss.auth)
	if err != nil {
		var refused *statusError
		if errors.As(err, &refused) {
			ss.failedAt, ss.failure = time.Now(), err
		}
		return credential{}, false, err
	}
	ss.cred, s.cred, ss.failure = cred, cred, nil
	return cred, true, nil
}

// KeepLogins gives p the tokens old holds, where p was built from the same
// settings (a reload that changed nothing of IAP's): a token lives until a
// server refuses it, and a reload is no reason to log in again.
func (p *Client) KeepLogins(old *Client) {
	if !reflect.DeepEqual(p.cfg, old.cfg) {
		return
	}
	for i, s := range p.servers {
		o := old.servers[i]
		if s.session == nil || o.session == nil {
			continue
		}
		if o.session.acquire(context.Background()) != nil {
			continue
		}
		own, newest := o.cred, o.session.cred
		o.session.release()
		if s.session.acquire(context.Background()) != nil {
			continue
		}
		if s.session.cred.token == "" {
			s.session.cred = newest
		}
		if s.cred.token == "" {
			s.cred = own
		}
		s.session.release()
	}
}

// drop forgets a token s refused, unless another call already replaced it.
func (ss *session) drop(ctx context.Context, s *server, cred credential) {
	if ss.acquire(ctx) != nil {
		return
	}
	defer ss.release()
	if s.cred == cred {
		s.cred = credential{}
	}
	if ss.cred == cred {
		ss.cred = credential{}
	}
}

// login asks s for a token: POST /login for a user, POST /oauth/token for
// OAuth client credentials. Errors never carry the secret.
func (s *server) login(ctx context.Context, auth config.IAPAuth) (credential, error) {
	if auth.ClientID != "" {
		form := url.Values{
			"grant_type":    {"client_credentials"},
			"client_id":     {auth.ClientID},
			"client_secret": {string(auth.ClientSecret)},
		}
		b, _, err := s.do(ctx, http.MethodPost, "/oauth/token", strings.NewReader(form.Encode()),
			http.Header{"Content-Type": {"application/x-www-form-urlencoded"}})
		if err != nil {
			return credential{}, fmt.Errorf("OAuth login as client %s: %w", auth.ClientID, err)
		}
		tok, err := decodeOAuthToken(b)
		return credential{token: tok}, err
	}

	body, err := json.Marshal(map[string]any{"user": map[string]string{"username": auth.Username, "password": string(auth.Password)}})
	if err != nil {
		return credential{}, err
	}
	b, resp, err := s.do(ctx, http.MethodPost, "/login", bytes.NewReader(body), http.Header{"Content-Type": {"application/json"}})
	if err != nil {
		return credential{}, fmt.Errorf("login as %s: %w", auth.Username, err)
	}
	cookie := auth.CookieName
	tok, err := decodeLoginToken(b)
	if err != nil {
		// Some releases answer with the cookie alone.
		for _, c := range resp.Cookies() {
			if c.Name == cookie && c.Value != "" {
				return credential{token: c.Value, cookie: cookie}, nil
			}
		}
		return credential{}, fmt.Errorf("login as %s: %w", auth.Username, err)
	}
	return credential{token: tok, cookie: cookie}, nil
}
