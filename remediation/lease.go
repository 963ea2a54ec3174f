package remediation

import (
	"context"
	"crypto/tls"
	"fmt"
	"log/slog"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/redis/go-redis/v9"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// episodeTTL is how long a claim of a failure lasts in Redis while its
// action has not finished: longer than any Alertmanager resend of it. A
// finished action's claim lasts the cooldown (endEpisode).
const episodeTTL = 7 * 24 * time.Hour

// lease is a lock in the estate's own Redis, found through its Sentinels:
// SET NX with a TTL on the current master, released by compare-and-delete,
// so that of several receivers (one per site) only one acts, and a receiver
// that dies holding it loses it after the TTL. No home-made consensus: the
// Sentinels already elect the one master every receiver writes to.
type lease struct {
	client *redis.Client
	prefix string
	ttl    time.Duration
	holder string
	// replicated bounds the wait for a replica to acknowledge a write.
	replicated time.Duration
}

func newLease(g config.SentinelGroup, cfg LeaseConfig, holder string) (*lease, error) {
	timeout := time.Duration(g.Timeout)
	var tc *tls.Config
	if g.TLS != nil {
		var err error
		if tc, err = promconfig.NewTLSConfig(g.TLS); err != nil {
			return nil, fmt.Errorf("lease in Redis %s: %w", g.Name, err)
		}
	}
	var sentinels []string
	for _, s := range g.Sentinels {
		sentinels = append(sentinels, s.Address)
	}
	return &lease{
		client: redis.NewFailoverClient(&redis.FailoverOptions{
			MasterName:            g.MasterName,
			SentinelAddrs:         sentinels,
			SentinelUsername:      g.SentinelAuth.Username,
			SentinelPassword:      string(g.SentinelAuth.Password),
			Username:              g.Auth.Username,
			Password:              string(g.Auth.Password),
			TLSConfig:             tc,
			Protocol:              2,
			DialTimeout:           timeout,
			ReadTimeout:           timeout,
			WriteTimeout:          timeout,
			ContextTimeoutEnabled: true,
			PoolSize:              2,
			DisableIdentity:       true,
		}),
		prefix:     cfg.KeyPrefix,
		ttl:        time.Duration(cfg.TTL),
		holder:     holder,
		replicated: timeout,
	}, nil
}

func (l *lease) key(cluster string) string { return l.prefix + "lease:" + cluster }

// acquire takes the lease of a cluster and its fencing token: a counter in
// the same Redis, one more at every lease taken, that the holder's steps
// check (stillHeld) and its scripts receive. When another holds it, ok is
// false and holder says who.
func (l *lease) acquire(ctx context.Context, cluster string) (ok bool, holder string, token int64, err error) {
	ok, err = l.client.SetNX(ctx, l.key(cluster), l.holder, l.ttl).Result()
	if err != nil {
		return false, "", 0, err
	}
	if ok {
		token, err = l.client.Incr(ctx, l.fencingKey(cluster)).Result()
		if err == nil {
			err = l.replicatedWrite(ctx)
		}
		if err != nil {
			if rerr := l.release(context.WithoutCancel(ctx), cluster); rerr != nil {
				err = fmt.Errorf("%w; releasing it: %v", err, rerr)
			}
			return false, "", 0, fmt.Errorf("the lease: %w", err)
		}
		return true, l.holder, token, nil
	}
	holder, err = l.client.Get(ctx, l.key(cluster)).Result()
	if err == redis.Nil { // released between the two calls: a retry may win it
		return false, "(released meanwhile)", 0, nil
	}
	return false, holder, 0, err
}

func (l *lease) fencingKey(cluster string) string { return l.prefix + "fencing:" + cluster }

// stillHeldScript: the lease is still ARGV[1]'s and no lease was taken
// since the one whose token is ARGV[2].
var stillHeldScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] and redis.call("GET", KEYS[2]) == ARGV[2] then
	return 1
end
return 0`)

// stillHeld reports whether this holder still holds the lease it took with
// token: a lease that expired and was taken by another (a pause longer than
// the TTL) is not, even if it came back to this holder since.
func (l *lease) stillHeld(ctx context.Context, cluster string, token int64) (bool, error) {
	n, err := stillHeldScript.Run(ctx, l.client, []string{l.key(cluster), l.fencingKey(cluster)}, l.holder, token).Int()
	return n == 1, err
}

// replicatedWrite waits (WAIT 1) until a replica has this connection's
// writes: Redis replicates asynchronously, and a write only the master has
// is lost when the Sentinels fail over to a replica. It does not make the
// lease strongly consistent: a replica that has it may still not be the one
// promoted, and WAIT says nothing of what a failover elects.
func (l *lease) replicatedWrite(ctx context.Context) error {
	n, err := l.client.Wait(ctx, 1, l.replicated).Result()
	switch {
	case err != nil:
		return err
	case n < 1:
		return fmt.Errorf("no replica acknowledged it within %s (WAIT 1): a failover now would lose it", l.replicated)
	}
	return nil
}

// renewScript extends the lease while it is still ARGV[1]'s.
var renewScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[2])
end
return 0`)

// renew extends this holder's lease of a cluster to a full TTL again; ok is
// false when the lease is no longer this holder's.
func (l *lease) renew(ctx context.Context, cluster string) (ok bool, err error) {
	n, err := renewScript.Run(ctx, l.client, []string{l.key(cluster)}, l.holder, l.ttl.Milliseconds()).Int()
	return n == 1, err
}

// keep renews the lease of a cluster every third of its TTL until stop is
// called, so that an action that outlives its expected time keeps it; a
// renewal that fails is logged (the TTL, longer than the action's
// timeouts, still covers it).
func (l *lease) keep(ctx context.Context, cluster string, logger *slog.Logger) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(l.ttl / 3)
		defer tick.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				if ok, err := l.renew(ctx, cluster); (err != nil || !ok) && ctx.Err() == nil {
					logger.Warn("remediation: the lease was not renewed", "cluster", cluster, "still_ours", ok, "err", err)
				}
			}
		}
	}()
	return func() { cancel(); <-done }
}

// releaseScript deletes the key only while it still names this holder: a
// lease that expired and was taken by another is not ours to delete.
var releaseScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	return redis.call("DEL", KEYS[1])
end
return 0`)

func (l *lease) release(ctx context.Context, cluster string) error {
	return releaseScript.Run(ctx, l.client, []string{l.key(cluster)}, l.holder).Err()
}

// claimStartedSuffix marks a claim whose holder journaled the start of its
// action: from then on the incident is that holder's.
const claimStartedSuffix = ":started"

// claimScript takes an incident for ARGV[1] (SET NX), or takes it over
// from a holder that never started acting on it: the caller holds the
// lease, so no other receiver acts right now, and one that claimed without
// marking the claim started ran no step (it crashed before its first step,
// or refused). ARGV[2] is the holder this receiver's own journal says
// claimed the incident, a previous run of it: a claim that run marked
// started without journaling the start ran no step either. It returns
// {1, holder} when taken, {2, previous} when taken over, {0, holder} when
// another holder started on it.
var claimScript = redis.NewScript(`
local v = redis.call("GET", KEYS[1])
if not v then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[3])
	return {1, ARGV[1]}
end
if v == ARGV[1] then
	return {1, v}
end
local suffix = ARGV[4]
local started = string.sub(v, -string.len(suffix)) == suffix
if not started or (ARGV[2] ~= "" and v == ARGV[2] .. suffix) then
	redis.call("SET", KEYS[1], ARGV[1], "PX", ARGV[3])
	return {2, v}
end
return {0, v}`)

// claimResult is what claim found.
type claimResult int

const (
	claimTakenByOther claimResult = iota
	claimTaken
	claimTakenOver
)

// claim records in Redis that this holder takes the failure of server (its
// episode, see episodeKey), so that a receiver that gets the lease after
// another released it does not act on the same failure again, whichever
// exporter, Alertmanager or alert told it. previous is the holder this receiver's journal
// says claimed it before (a previous run), or "". by is the holder found
// when the claim was another's.
func (l *lease) claim(ctx context.Context, server, previous string) (claimResult, string, error) {
	res, err := claimScript.Run(ctx, l.client, []string{l.episodeKey(server)},
		l.holder, previous, episodeTTL.Milliseconds(), claimStartedSuffix).Slice()
	if err != nil {
		return claimTakenByOther, "", err
	}
	if len(res) != 2 {
		return claimTakenByOther, "", fmt.Errorf("claim: unexpected answer %v", res)
	}
	code, _ := res[0].(int64)
	by, _ := res[1].(string)
	if claimResult(code) != claimTakenByOther {
		if err := l.replicatedWrite(ctx); err != nil {
			return claimTakenByOther, "", fmt.Errorf("the claim: %w", err)
		}
	}
	return claimResult(code), by, nil
}

// markStartedScript marks the claim started while it is still ARGV[1]'s.
var markStartedScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] then
	redis.call("SET", KEYS[1], ARGV[1] .. ARGV[2], "KEEPTTL")
	return 1
end
return 0`)

// markStarted marks this holder's claim of an incident started, just
// before its action is journaled as started. ok is false when the claim is
// no longer this holder's: another receiver took it over (this one's lease
// expired meanwhile), and this one must not act.
func (l *lease) markStarted(ctx context.Context, server string) (ok bool, err error) {
	n, err := markStartedScript.Run(ctx, l.client, []string{l.episodeKey(server)}, l.holder, claimStartedSuffix).Int()
	return n == 1, err
}

// episodeKey is the key every receiver claims a failure by: the failed
// server. Alertmanager's fingerprint includes every label, instance too, so
// two exporters (one per site) turn one failure into two alerts, each
// Alertmanager delivers both, and each receiver journals incidents of its
// own; the failure they all speak of is the server's. One episode of it
// lasts from the first claim until the cooldown after its action ends
// (endEpisode): a new failure of the server after that is a new episode.
func (l *lease) episodeKey(server string) string { return l.prefix + "episode:" + server }

// endClaim removes the claim of a failure of server, whoever holds it.
func (l *lease) endClaim(ctx context.Context, server string) error {
	if err := l.client.Del(ctx, l.episodeKey(server)).Err(); err != nil {
		return err
	}
	return l.replicatedWrite(ctx)
}

// endEpisodeScript shortens this holder's started claim to ARGV[3] ms.
var endEpisodeScript = redis.NewScript(`
if redis.call("GET", KEYS[1]) == ARGV[1] .. ARGV[2] then
	return redis.call("PEXPIRE", KEYS[1], ARGV[3])
end
return 0`)

// endEpisode makes this holder's claim of a failure of server, whose action
// has finished, last only the cooldown more.
func (l *lease) endEpisode(ctx context.Context, server string, cooldown time.Duration) error {
	return endEpisodeScript.Run(ctx, l.client, []string{l.episodeKey(server)}, l.holder, claimStartedSuffix, max(cooldown.Milliseconds(), 1)).Err()
}

func (l *lease) close() error { return l.client.Close() }
