package remediation

import (
	"context"
	"crypto/tls"
	"fmt"
	"time"

	promconfig "github.com/prometheus/common/config"
	"github.com/redis/go-redis/v9"

	"github.com/iapha/iap_ha_exporter/internal/config"
)

// incidentTTL is how long a receiver remembers, in Redis, that an incident
// was taken: longer than any Alertmanager resend of it.
const incidentTTL = 7 * 24 * time.Hour

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
}

func newLease(g config.SentinelGroup, cfg LeaseConfig, holder string) (*lease, error) {
	timeout := time.Duration(g.Timeout)
	if timeout <= 0 {
		timeout = config.DefaultRedisTimeout
	}
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
		prefix: cfg.KeyPrefix,
		ttl:    time.Duration(cfg.TTL),
		holder: holder,
	}, nil
}

func (l *lease) key(cluster string) string { return l.prefix + "lease:" + cluster }

// acquire takes the lease of a cluster. When another holds it, ok is false
// and holder says who.
func (l *lease) acquire(ctx context.Context, cluster string) (ok bool, holder string, err error) {
	ok, err = l.client.SetNX(ctx, l.key(cluster), l.holder, l.ttl).Result()
	if err != nil || ok {
		return ok, l.holder, err
	}
	holder, err = l.client.Get(ctx, l.key(cluster)).Result()
	if err == redis.Nil { // released between the two calls: a retry may win it
		return false, "(released meanwhile)", nil
	}
	return false, holder, err
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

// claim records in Redis that this holder takes an incident; taken is false
// (with the holder that did) when another receiver took it first, so that a
// receiver that gets the lease after another released it does not act on
// the same incident again.
func (l *lease) claim(ctx context.Context, incident string) (taken bool, by string, err error) {
	key := l.prefix + "incident:" + incident
	ok, err := l.client.SetNX(ctx, key, l.holder, incidentTTL).Result()
	if err != nil || ok {
		return ok, l.holder, err
	}
	by, err = l.client.Get(ctx, key).Result()
	return false, by, err
}

func (l *lease) close() error { return l.client.Close() }
