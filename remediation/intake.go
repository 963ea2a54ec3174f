package remediation

import (
	"bytes"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
)

// ServeHTTP receives one Alertmanager notification: 202 once it is on disk,
// 4xx for what a resend cannot fix, 5xx only when it could not be recorded.
func (r *Receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		http.Error(w, "POST an Alertmanager notification", http.StatusMethodNotAllowed)
		return
	}
	// One load: the request is judged wholly by the settings before a
	// reload or wholly by those after.
	cfg := r.latest.Load().cfg
	if !r.admit(w, req, cfg) {
		return
	}
	buf := bodies.Get().(*bytes.Buffer)
	defer keepBody(buf)
	body, hook, ok := readNotification(w, req, buf, cfg.MaxBodyBytes)
	if !ok {
		return
	}
	r.accept(w, req, body, hook)
}

// readNotification reads a notification of at most limit bytes into buf
// and decodes it; when it cannot, it answers the request itself (413 or
// 400) and ok is false.
func readNotification(w http.ResponseWriter, req *http.Request, buf *bytes.Buffer, limit int64) (body []byte, hook *Webhook, ok bool) {
	body, err := readBody(buf, http.MaxBytesReader(w, req.Body, limit), req.ContentLength, limit)
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			http.Error(w, fmt.Sprintf("notification larger than %d bytes", tooBig.Limit), http.StatusRequestEntityTooLarge)
			return nil, nil, false
		}
		http.Error(w, "reading the notification: "+err.Error(), http.StatusBadRequest)
		return nil, nil, false
	}
	if hook, err = decodeWebhook(body); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return nil, nil, false
	}
	return body, hook, true
}

// accept records a notification read and decoded, admitted by the
// receiver's settings, and wakes the worker: 202 once it is on disk.
func (r *Receiver) accept(w http.ResponseWriter, req *http.Request, body []byte, hook *Webhook) {
	if err := r.journal.appendNotification(req.Context(), newID(), body, hook); err != nil {
		r.logger.Error("remediation: notification not recorded; Alertmanager will resend it", "err", err)
		http.Error(w, "notification not recorded", http.StatusInternalServerError)
		return
	}
	r.burst.received()
	select {
	case r.wake <- struct{}{}:
	default:
	}
	w.WriteHeader(http.StatusAccepted)
}

// admit authenticates a request to the webhook or the peer endpoint, and
// answers it when it is refused.
func (r *Receiver) admit(w http.ResponseWriter, req *http.Request, cfg *Config) bool {
	if !cfg.Auth.Enabled() && !r.insecureWebhook {
		if err := r.webConfigAuthenticates(); err != nil {
			r.logger.Error("remediation: request refused: nothing authenticates the webhook any more", "path", req.URL.Path, "err", err)
			http.Error(w, "the remediation webhook refuses requests: nothing authenticates it", http.StatusServiceUnavailable)
			return false
		}
	}
	if !authorized(cfg.Auth, req) {
		if cfg.Auth.BasicAuth.Username != "" {
			w.Header().Set("WWW-Authenticate", `Basic realm="iap_ha_exporter remediation"`)
		}
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return false
	}
	return true
}

// bodies are request bodies' buffers, kept from request to request: 200
// concurrent notifications are 200 buffers at once. Nothing refers to a
// body once the handler returns: the decoded webhook and the journal line
// are copies.
var bodies = sync.Pool{New: func() any { return new(bytes.Buffer) }}

// maxKeptBody bounds the buffers kept: a rare large notification does not
// stay in memory.
const maxKeptBody = 64 << 10

func keepBody(buf *bytes.Buffer) {
	if buf.Cap() <= maxKeptBody {
		buf.Reset()
		bodies.Put(buf)
	}
}

// readBody reads a request body into buf, grown at once to the size the
// client announced (Alertmanager always does) rather than step by step.
func readBody(buf *bytes.Buffer, body io.Reader, contentLength, limit int64) ([]byte, error) {
	if contentLength > 0 && contentLength <= limit {
		buf.Grow(int(contentLength) + bytes.MinRead) // room to read the EOF
	}
	_, err := buf.ReadFrom(body)
	return buf.Bytes(), err
}

func newID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// webConfigAuthenticates checks that the web configuration, which the
// toolkit reads at every request, still authenticates the webhook.
func (r *Receiver) webConfigAuthenticates() error {
	if r.webConfigFile == "" {
		return errors.New("no web configuration, and no credentials in the remediation file")
	}
	ok, err := webConfigAuthenticates(r.webConfigFile)
	switch {
	case err != nil:
		return err
	case !ok:
		return fmt.Errorf("the web configuration %s names no basic_auth_users and does not require client certificates, and the remediation file names no credentials", r.webConfigFile)
	}
	return nil
}

// authorized checks the receiver's own credentials, if it has any (the web
// config may authenticate too, or instead).
func authorized(a WebhookAuth, req *http.Request) bool {
	switch {
	case a.BearerToken != "":
		got, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer ")
		return ok && subtle.ConstantTimeCompare([]byte(got), []byte(a.BearerToken)) == 1
	case a.BasicAuth.Username != "":
		user, pw, ok := req.BasicAuth()
		return ok && subtle.ConstantTimeCompare([]byte(user), []byte(a.BasicAuth.Username)) == 1 &&
			subtle.ConstantTimeCompare([]byte(pw), []byte(a.BasicAuth.Password)) == 1
	}
	return true
}
