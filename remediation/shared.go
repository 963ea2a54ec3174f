package remediation

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// The estate-wide state lives in the lease's Redis, beside the lease: a
// block after a failed action, a pause, and the cooldown of the servers an
// action involved. Every receiver of the estate obeys it, so receiver B does
// not act while receiver A is blocked after a half-done promotion. Each
// receiver's journal stays the record of what it decided and did; the keys
// make one receiver's failure, pause or action hold the others back too.

// sharedNote is the value of an estate-wide key: who set it, when, why.
type sharedNote struct {
	By       string    `json:"by"`
	Time     time.Time `json:"time"`
	Incident string    `json:"incident,omitempty"`
	// Server is the failed server of a blocking action.
	Server string `json:"server,omitempty"`
	Note   string `json:"note,omitempty"`
}

func (n *sharedNote) String() string {
	s := fmt.Sprintf("%s at %s", n.By, n.Time.Format(time.RFC3339))
	if n.Incident != "" {
		s += ", incident " + n.Incident
	}
	if n.Note != "" {
		s += ": " + n.Note
	}
	return s
}

// sharedView is the estate-wide state as read at one moment.
type sharedView struct {
	blocked, paused *sharedNote
	// cooling is the cooldown of each server an action involved lately.
	cooling map[string]*sharedNote
}

func (l *lease) blockedKey() string               { return l.prefix + "blocked" }
func (l *lease) pausedKey() string                { return l.prefix + "paused" }
func (l *lease) cooldownKey(server string) string { return l.prefix + "cooldown:" + server }

// view reads the block, the pause and the cooldowns of servers at once.
func (l *lease) view(ctx context.Context, servers []string) (*sharedView, error) {
	keys := []string{l.blockedKey(), l.pausedKey()}
	for _, s := range servers {
		keys = append(keys, l.cooldownKey(s))
	}
	vals, err := l.client.MGet(ctx, keys...).Result()
	if err != nil {
		return nil, err
	}
	notes := make([]*sharedNote, len(vals))
	for i, v := range vals {
		s, ok := v.(string)
		if !ok {
			continue
		}
		n := new(sharedNote)
		if err := json.Unmarshal([]byte(s), n); err != nil {
			// Written by something else: it still blocks, pauses or cools.
			n = &sharedNote{By: "unknown", Note: s}
		}
		notes[i] = n
	}
	v := &sharedView{blocked: notes[0], paused: notes[1], cooling: map[string]*sharedNote{}}
	for i, s := range servers {
		if n := notes[2+i]; n != nil {
			v.cooling[s] = n
		}
	}
	return v, nil
}

func (l *lease) setNote(ctx context.Context, key string, n sharedNote, ttl time.Duration) error {
	b, _ := json.Marshal(n)
	if err := l.client.Set(ctx, key, b, ttl).Err(); err != nil {
		return err
	}
	return l.replicatedWrite(ctx)
}

// block blocks the estate until a person acknowledges: no TTL.
func (l *lease) block(ctx context.Context, n sharedNote) error {
	return l.setNote(ctx, l.blockedKey(), n, 0)
}

// startCooldown starts the cooldown of the servers of an action.
func (l *lease) startCooldown(ctx context.Context, n sharedNote, d time.Duration, servers ...string) error {
	b, _ := json.Marshal(n)
	_, err := l.client.TxPipelined(ctx, func(p redis.Pipeliner) error {
		for _, s := range servers {
			p.Set(ctx, l.cooldownKey(s), b, d)
		}
		return nil
	})
	if err != nil {
		return err
	}
	return l.replicatedWrite(ctx)
}

// clear deletes a key and reports the note it held, nil if none.
func (l *lease) clear(ctx context.Context, key string) (*sharedNote, error) {
	s, err := l.client.GetDel(ctx, key).Result()
	switch {
	case errors.Is(err, redis.Nil):
		return nil, nil
	case err != nil:
		return nil, err
	}
	n := new(sharedNote)
	if json.Unmarshal([]byte(s), n) != nil {
		n = &sharedNote{By: "unknown", Note: s}
	}
	return n, l.replicatedWrite(ctx)
}

// Shared is the remediation state every receiver of the estate shares, in
// the lease's Redis, for the commands: ack, pause and resume.
type Shared struct {
	l *lease
}

// OpenShared connects to the lease's Redis of cfg.
func OpenShared(cfg *Config, exporter *config.Config) (*Shared, error) {
	i := slices.IndexFunc(exporter.Redis, func(g config.SentinelGroup) bool { return g.Name == cfg.Lease.Redis })
	if i < 0 {
		return nil, fmt.Errorf("remediation: the lease's Sentinel group %q is not configured", cfg.Lease.Redis)
	}
	l, err := newLease(exporter.Redis[i], cfg.Lease, cfg.Site+"/command")
	if err != nil {
		return nil, err
	}
	return &Shared{l: l}, nil
}

// Close closes the connection.
func (e *Shared) Close() error { return e.l.close() }

// Unblock removes the estate-wide block and the claim of the failure that
// set it, and says what it was ("" when none was set): a person looked, and
// the next alert of that server is decided anew.
func (e *Shared) Unblock(ctx context.Context) (string, error) {
	n, err := e.l.clear(ctx, e.l.blockedKey())
	if err != nil || n == nil {
		return "", err
	}
	if n.Server != "" {
		if err := e.l.endClaim(ctx, n.Server); err != nil {
			return n.String(), err
		}
	}
	return n.String(), nil
}

// Pause stops every receiver of the estate from deciding until Resume.
func (e *Shared) Pause(ctx context.Context, by, note string) error {
	return e.l.setNote(ctx, e.l.pausedKey(), sharedNote{By: by, Time: time.Now().UTC(), Note: note}, 0)
}

// Resume ends the pause, and says what it was ("" when none was set).
func (e *Shared) Resume(ctx context.Context) (string, error) {
	n, err := e.l.clear(ctx, e.l.pausedKey())
	if err != nil || n == nil {
		return "", err
	}
	return n.String(), nil
}

// shareBlock blocks the estate for the failure that blocks this receiver,
// once: a failed write is tried again at the next decision, while the
// journal's block (the record) holds this receiver meanwhile.
func (r *Receiver) shareBlock(ctx context.Context) {
	f := r.state.blockedBy
	if f == nil || r.sharedBlock == f.Incident {
		return
	}
	n := sharedNote{By: r.cur.cfg.Site + "/" + r.instance, Time: f.Time, Incident: f.Incident, Server: planFrom(f.Plan),
		Note: fmt.Sprintf("%s → %s ended %s: %s", planFrom(f.Plan), planTo(f.Plan), f.Result, f.Error)}
	if err := r.cur.lease.block(ctx, n); err != nil {
		r.logger.Error("remediation: the estate-wide block was not written in Redis; this receiver stays blocked by its journal, the others are not held back until it is",
			"incident", f.Incident, "err", err)
		return
	}
	r.sharedBlock = f.Incident
}

// sharedRefusal is the estate-wide gate: a pause, a block, or the
// cooldown of one of servers set by any receiver.
func sharedRefusal(v *sharedView, servers ...string) *refusal {
	switch {
	case v.paused != nil:
		return refuse(reasonPaused, "the estate's remediation is paused (by %s); `iap_ha_exporter remediation resume` ends it", v.paused)
	case v.blocked != nil:
		return refuse(reasonBlocked, "the estate's remediation is blocked after a failed action (%s); check the servers, then run `iap_ha_exporter remediation ack`", v.blocked)
	}
	for _, s := range servers {
		if n, ok := v.cooling[s]; ok {
			return refuse(reasonCooldown, "an action involving %s started less than the cooldown ago (%s)", s, n)
		}
	}
	return nil
}

// sharedOf reads the estate-wide state once per observation.
func (r *Receiver) sharedOf(ctx context.Context, seen *observation) (*sharedView, error) {
	if seen.shared == nil && seen.sharedErr == nil {
		servers := make([]string, len(r.cur.exporterCfg.IAP.Servers))
		for i, s := range r.cur.exporterCfg.IAP.Servers {
			servers[i] = s.Name
		}
		seen.shared, seen.sharedErr = r.cur.lease.view(ctx, servers)
	}
	return seen.shared, seen.sharedErr
}
