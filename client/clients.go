package client

import (
	"context"
	"errors"
	"net/http"
)

// Clients is a client of every service, built from one Config: what an
// agent platform holds to talk to Creto.
type Clients struct {
	Authz     *AuthzClient
	NHI       *NHIClient
	Memory    *MemoryClient
	Vault     *VaultClient
	Storage   *StorageClient
	Audit     *AuditClient
	Consensus *ConsensusClient
	dialer    *dialer
}

// New builds every client from cfg. Services at the same endpoint with the
// same TLS settings share one connection. New does not wait for the node:
// clients built while it is down fail (and fail secure) until it is up.
// The audit client's logger starts at once, with the critical events a
// previous process left in audit.spool_path.
func New(cfg Config, opts ...Option) (*Clients, error) {
	d := newDialer(opts)
	c := &Clients{dialer: d}
	var err error
	build := func(f func() error) {
		if err == nil {
			err = f()
		}
	}
	build(func() (err error) { c.Authz, err = newAuthz(d, cfg.Transport, cfg.Authz); return })
	build(func() (err error) { c.NHI, err = newNHI(d, cfg.Transport, cfg.NHI); return })
	build(func() (err error) { c.Memory, err = newMemory(d, cfg.Transport, cfg.Memory); return })
	build(func() (err error) { c.Vault, err = newVault(d, cfg.Transport, cfg.Vault); return })
	build(func() (err error) { c.Storage, err = newStorage(d, cfg.Transport, cfg.Storage); return })
	build(func() (err error) { c.Consensus, err = newConsensus(d, cfg.Transport, cfg.Consensus); return })
	// Last: the logger it starts is the one thing to stop on a failure.
	build(func() (err error) { c.Audit, err = newAudit(d, cfg.Transport, cfg.Audit); return })
	if err != nil {
		return nil, errors.Join(err, d.close())
	}
	return c, nil
}

// Checkers are the platform's health checkers by service name: every
// client and the local crypto self-test. A platform adds its own before
// passing them to CheckHealth or HealthHandler.
func (c *Clients) Checkers() map[string]HealthChecker {
	return map[string]HealthChecker{"authz": c.Authz, "nhi": c.NHI, "memory": c.Memory, "vault": c.Vault,
		"storage": c.Storage, "audit": c.Audit, "consensus": c.Consensus, "crypto": CryptoHealth{}}
}

// Health checks every service at once and aggregates (seed §14.1).
func (c *Clients) Health(ctx context.Context) Report { return CheckHealth(ctx, c.Checkers()) }

// HealthHandler serves Health over HTTP (see HealthHandler).
func (c *Clients) HealthHandler() http.Handler { return HealthHandler(c.Checkers()) }

// Connect waits until every service's connection is up, or ctx ends: a
// program calls it at start so its first calls do not pay for the TLS
// handshakes within their timeouts.
func (c *Clients) Connect(ctx context.Context) error {
	var errs []error
	for _, s := range []*service{c.Authz.svc, c.NHI.svc, c.Memory.svc, c.Vault.svc, c.Storage.svc, c.Audit.svc, c.Consensus.svc} {
		errs = append(errs, s.waitReady(ctx))
	}
	return errors.Join(errs...)
}

// Close stops the audit logger as AuditClient.Close does (Flush it first
// to wait for the log), wipes the vault client's cached secrets and
// closes every connection. Calls in flight fail.
func (c *Clients) Close() error {
	err := c.Audit.stopLogger()
	c.Vault.secrets.purge()
	return errors.Join(err, c.dialer.close())
}
