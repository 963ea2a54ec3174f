package remediation

import (
	"errors"
	"fmt"
	"reflect"
	"slices"

	"github.com/iapha/iap_ha_exporter/internal/config"
	"github.com/iapha/iap_ha_exporter/internal/probe/iap"
)

// settings are what the worker decides and acts with: the remediation file,
// the exporter's configuration it was checked against, and the clients
// built from the two.
// Nothing in them changes once built; a reload builds new ones.
type settings struct {
	cfg         *Config
	exporterCfg *config.Config
	iap         *iap.Client
	lease       *lease
	audit       *auditLog
	// vantages are the places besides this host asked about a failed
	// server the fence cannot reach (secondLook).
	vantages []vantage
}

// newSettings builds the clients of cfg and exporterCfg: everything of a
// reload that can fail, before anything running changes.
func (r *Receiver) newSettings(cfg *Config, exporterCfg *config.Config) (*settings, error) {
	i := slices.IndexFunc(exporterCfg.Redis, func(g config.SentinelGroup) bool { return g.Name == cfg.Lease.Redis })
	if i < 0 {
		return nil, fmt.Errorf("remediation: the lease's Sentinel group %q is not configured", cfg.Lease.Redis)
	}
	s := &settings{cfg: cfg, exporterCfg: exporterCfg}
	for _, p := range cfg.Peers {
		s.vantages = append(s.vantages, newPeer(p))
	}
	if len(exporterCfg.LoadBalancers) > 0 {
		s.vantages = append(s.vantages, newBalancers(exporterCfg, r.logger))
	}
	var err error
	if s.iap, err = iap.NewClient(receiverIAP(exporterCfg.IAP, cfg.IAPAuth), r.logger); err != nil {
		return nil, err
	}
	if s.lease, err = newLease(exporterCfg.Redis[i], cfg.Lease, cfg.Site+"/"+r.instance); err != nil {
		s.close()
		return nil, err
	}
	if s.audit, err = newAuditLog(r.logger, cfg.AuditLogFile); err != nil {
		s.close()
		return nil, fmt.Errorf("remediation: audit log: %w", err)
	}
	return s, nil
}

func (s *settings) close() error {
	var errs []error
	if s.iap != nil {
		errs = append(errs, s.iap.Close())
	}
	if s.lease != nil {
		errs = append(errs, s.lease.close())
	}
	if s.audit != nil {
		errs = append(errs, s.audit.close())
	}
	return errors.Join(errs...)
}

// Prepare readies the receiver to run under cfg, a remediation file read
// against exporterCfg, the exporter's new configuration: it refuses what a
// running receiver cannot change and builds the new clients, changing
// nothing yet. apply swaps the new settings in: the webhook judges the next
// request by them, the worker takes them between two batches (an action
// under way finishes under the old ones) and closes the old clients.
// discard throws them away. One of the two must be called.
func (r *Receiver) Prepare(cfg *Config, exporterCfg *config.Config) (apply, discard func(), err error) {
	if cfg.JournalFile != r.journalFile {
		return nil, nil, fmt.Errorf("journal_file: changed from %s to %s; the running receiver holds the journal and its lock: restart to change it", r.journalFile, cfg.JournalFile)
	}
	s, err := r.newSettings(cfg, exporterCfg)
	if err != nil {
		return nil, nil, err
	}
	apply = func() {
		r.reloadMu.Lock()
		defer r.reloadMu.Unlock()
		if r.closed {
			s.close()
			return
		}
		old := r.latest.Swap(s)
		// A reload the worker has not taken yet is replaced by this one.
		if staged := r.next.Swap(s); staged != nil {
			staged.close()
		}
		select {
		case r.wake <- struct{}{}:
		default:
		}
		r.logger.Info("remediation configuration reloaded", "dry_run", *cfg.DryRun, "clusters", clusterNames(cfg),
			"changed", fmt.Sprint(changed(old, s)))
	}
	discard = func() { s.close() }
	return apply, discard, nil
}

// takeReloaded swaps in the settings a reload staged, between batches, and
// closes the clients they replace: only the worker used them.
func (r *Receiver) takeReloaded() {
	s := r.next.Swap(nil)
	if s == nil {
		return
	}
	old := r.cur
	r.cur = s
	if err := old.close(); err != nil {
		r.logger.Warn("remediation: closing the clients of the previous configuration", "err", err)
	}
	r.logger.Debug("remediation worker uses the reloaded configuration")
}

func clusterNames(cfg *Config) []string {
	names := make([]string, len(cfg.Clusters))
	for i, c := range cfg.Clusters {
		names[i] = c.Name
	}
	return names
}

// changed names the settings that differ between old and new, by their keys
// in the remediation file (and the parts of the exporter's configuration
// the receiver uses); it
// says that a secret changed, never what it is.
func changed(old, new *settings) []string {
	a, b := old.cfg, new.cfg
	var out []string
	for _, f := range []struct {
		key        string
		before, at any
	}{
		{"site", a.Site, b.Site},
		{"dry_run", *a.DryRun, *b.DryRun},
		{"auth", a.Auth, b.Auth},
		{"max_body_bytes", a.MaxBodyBytes, b.MaxBodyBytes},
		{"pause_file", a.PauseFile, b.PauseFile},
		{"journal_retention", a.JournalRetention, b.JournalRetention},
		{"audit_log_file", a.AuditLogFile, b.AuditLogFile},
		{"cooldown", a.Cooldown, b.Cooldown},
		{"verify_timeout", a.VerifyTimeout, b.VerifyTimeout},
		{"confirm_timeout", a.ConfirmTimeout, b.ConfirmTimeout},
		{"lease", a.Lease, b.Lease},
		{"clusters", a.Clusters, b.Clusters},
		{"scripts", a.Scripts, b.Scripts},
		{"iap_auth", a.IAPAuth, b.IAPAuth},
		{"peers", a.Peers, b.Peers},
		{"configuration: iap", old.exporterCfg.IAP, new.exporterCfg.IAP},
		{"configuration: lease group", leaseGroup(old), leaseGroup(new)},
	} {
		if !reflect.DeepEqual(f.before, f.at) {
			out = append(out, f.key)
		}
	}
	return out
}

func leaseGroup(s *settings) config.SentinelGroup {
	i := slices.IndexFunc(s.exporterCfg.Redis, func(g config.SentinelGroup) bool { return g.Name == s.cfg.Lease.Redis })
	if i < 0 {
		return config.SentinelGroup{}
	}
	return s.exporterCfg.Redis[i]
}
