package probe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/iapha/iap_ha_exporter/fixtures/hostile"
)

// TestTransportFollowsNoRedirect: a 307 or 308 asks the client to send the
// same method and body again elsewhere (RFC 9110 §15.4.8, §15.4.9), so a
// login's password would reach the new Location; 301, 302 and 303 send a
// GET with the Authorization of a host of the same name. Whatever the code
// and wherever it points, another origin, the same one or the same URL in a
// loop, nothing is sent after the first answer.
func TestTransportFollowsNoRedirect(t *testing.T) {
	thief := hostile.StartThief()
	defer thief.Close()
	codes := []int{http.StatusMovedPermanently, http.StatusFound, http.StatusSeeOther,
		http.StatusTemporaryRedirect, http.StatusPermanentRedirect}
	for _, code := range codes {
		for name, redirect := range map[string]http.Handler{
			"another origin": hostile.RedirectTo(thief.URL, code),
			// The thief's URL with the password of a userinfo, which the
			// error must not quote.
			"another origin with userinfo": hostile.RedirectTo(strings.Replace(thief.URL, "//", "//x:leaked-pw@", 1), code),
			"the same URL":                 hostile.RedirectLoop(code),
		} {
			t.Run(http.StatusText(code)+" to "+name, func(t *testing.T) {
				var hits int
				target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
					hits++
					redirect.ServeHTTP(w, r)
				}))
				defer target.Close()
				tr, err := NewTransport(HTTPOptions{})
				if err != nil {
					t.Fatal(err)
				}
				defer tr.CloseIdleConnections()
				ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
				defer cancel()
				req, err := http.NewRequestWithContext(ctx, http.MethodPost, target.URL+"/login", strings.NewReader(`{"password":"pw"}`))
				if err != nil {
					t.Fatal(err)
				}
				req.SetBasicAuth("admin", "pw")
				res, err := tr.Client().Do(req)
				if err == nil {
					res.Body.Close()
					t.Fatalf("HTTP %d, want the redirect refused", res.StatusCode)
				}
				var redirectErr *RedirectError
				if !errors.As(err, &redirectErr) || redirectErr.Code != code {
					t.Errorf("error %v, want a RedirectError of %d", err, code)
				}
				if strings.Contains(err.Error(), "leaked-pw") {
					t.Errorf("the error quotes the Location's password: %v", err)
				}
				if hits != 1 {
					t.Errorf("the target got %d requests, want 1", hits)
				}
			})
		}
	}
	if got := thief.Requests(); len(got) > 0 {
		t.Errorf("the other origin received %d requests:\n%s", len(got), strings.Join(got, "\n"))
	}
}

// TestTransportRefusesHugeHeaders: an answer's header is read whole before
// any size limit on its body applies; a target answering megabytes of
// header must not cost megabytes per request (Go's default allows 10 MiB).
func TestTransportRefusesHugeHeaders(t *testing.T) {
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("X-Huge", strings.Repeat("x", 1<<20))
	}))
	defer target.Close()
	tr, err := NewTransport(HTTPOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer tr.CloseIdleConnections()
	res, err := tr.Client().Get(target.URL)
	if err == nil {
		res.Body.Close()
		t.Fatal("a 1 MiB header was read")
	}
	if !strings.Contains(err.Error(), "header") {
		t.Errorf("error %v, want one about the header's size", err)
	}
}
