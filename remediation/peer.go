package remediation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"time"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// PeerPath is where a receiver answers its peers, beside the webhook and
// behind the same authentication.
const PeerPath = "/remediation/peer"

// PeerAnswer is a receiver's answer to a peer's "what do you see of server":
// its own fresh health check of the server, from its own host.
type PeerAnswer struct {
	Site   string `json:"site"`
	Server string `json:"server"`
	// Up: the server's /health/status answered healthy; Answered: it
	// answered at all (an error status too).
	Up        bool      `json:"up"`
	Answered  bool      `json:"answered"`
	Reason    string    `json:"reason,omitempty"`
	CheckedAt time.Time `json:"checked_at"`
}

// peer is another site's receiver as a vantage point.
type peer struct {
	cfg    PeerConfig
	client *http.Client
}

func newPeer(cfg PeerConfig) *peer {
	return &peer{cfg: cfg, client: &http.Client{Timeout: time.Duration(cfg.Timeout)}}
}

func (p *peer) String() string       { return "the receiver of site " + p.cfg.Site }
func (p *peer) seesUpReason() string { return reasonPeerSeesUp }

func (p *peer) sees(ctx context.Context, server string) (sighting, error) {
	u, err := url.Parse(p.cfg.URL)
	if err != nil {
		return sighting{}, err
	}
	q := u.Query()
	q.Set("server", server)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return sighting{}, err
	}
	switch a := p.cfg.Auth; {
	case a.BearerToken != "":
		req.Header.Set("Authorization", "Bearer "+string(a.BearerToken))
	case a.BasicAuth.Username != "":
		req.SetBasicAuth(a.BasicAuth.Username, string(a.BasicAuth.Password))
	}
	resp, err := p.client.Do(req)
	if err != nil {
		return sighting{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return sighting{}, err
	}
	if resp.StatusCode != http.StatusOK {
		return sighting{}, fmt.Errorf("%s: %s", resp.Status, bytesTrim(body))
	}
	var a PeerAnswer
	if err := json.Unmarshal(body, &a); err != nil {
		return sighting{}, fmt.Errorf("answer: %w", err)
	}
	if a.Server != server {
		return sighting{}, fmt.Errorf("answered for %q, asked for %q", a.Server, server)
	}
	detail := fmt.Sprintf("its own /health/status check at %s", a.CheckedAt.Format(time.RFC3339))
	if a.Reason != "" {
		detail += ": " + a.Reason
	}
	return sighting{Up: a.Up, Detail: detail}, nil
}

func bytesTrim(b []byte) string {
	if len(b) > 200 {
		b = b[:200]
	}
	return string(b)
}

// PeerHandler answers a peer receiver's "what do you see of server X"
// (GET PeerPath?server=X) with a fresh health check from this host,
// authenticated as the webhook is.
func (r *Receiver) PeerHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.Method != http.MethodGet {
			w.Header().Set("Allow", http.MethodGet)
			http.Error(w, "GET "+PeerPath+"?server=<name>", http.StatusMethodNotAllowed)
			return
		}
		s := r.latest.Load()
		if !r.admit(w, req, s.cfg) {
			return
		}
		server := req.URL.Query().Get("server")
		if !slices.ContainsFunc(s.exporterCfg.IAP.Servers, func(c config.IAPServer) bool { return c.Name == server }) {
			http.Error(w, fmt.Sprintf("%q is not an IAP server of this receiver's configuration", server), http.StatusNotFound)
			return
		}
		ctx, cancel := context.WithTimeout(req.Context(), time.Duration(s.cfg.VerifyTimeout))
		defer cancel()
		h, err := s.iap.CheckHealth(ctx, server)
		if err != nil {
			http.Error(w, err.Error(), http.StatusInternalServerError)
			return
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(PeerAnswer{
			Site: s.cfg.Site, Server: server, Up: h.Up, Answered: h.Answered, Reason: h.Reason, CheckedAt: time.Now().UTC(),
		})
	})
}
