package client

import (
	"context"
	"errors"
	"net/http"
)

// Clients is a client of every service, built from one Config: what an
// agent platform holds to talk to Creto.
type Clients struct {
	Authz  *AuthzClient
	NHI    *NHIClient
	Memory *MemoryClient
	Vault  *VaultClient

	Storage   *StorageClient
	Consensus *ConsensusClient

	dialer *dialer
}

// New builds every client from cfg. Services at the same endpoint with the
// same TLS settings share one connection. New does not wait for the node:
// clients built while it is down fail (and fail secure) until it is up.
func New(cfg Config, opts ...Option) (*Clients, error) {
	d := newDialer(opts)
	c := &Clients{dialer: d}
	var err error
	if c.Authz, err = newAuthz(d, cfg.Transport, cfg.Authz); err != nil {
		return nil, errors.Join(err, d.close())
	}
	if c.NHI, err = newNHI(d, cfg.Transport, cfg.NHI); err != nil {
		return nil, errors.Join(err, d.close())
	}
	if c.Memory, err = newMemory(d, cfg.Transport, cfg.Memory); err != nil {
		return nil, errors.Join(err, d.close())
	}
	if c.Vault, err = newVault(d, cfg.Transport, cfg.Vault); err != nil {
		return nil, errors.Join(err, d.close())
	}
	if c.Storage, err = newStorage(d, cfg.Transport, cfg.Storage); err != nil {
		return nil, errors.Join(err, d.close())
	}
	if c.Consensus, err = newConsensus(d, cfg.Transport, cfg.Consensus); err != nil {
		return nil, errors.Join(err, d.close())
	}
	return c, nil
}

// Checkers are the platform's health checkers by service name: every
// client and the local crypto self-test. A platform adds its own (storage,
// audit, consensus …) before passing them to CheckHealth or HealthHandler.
func (c *Clients) Checkers() map[string]HealthChecker {
	return map[string]HealthChecker{"authz": c.Authz, "nhi": c.NHI, "memory": c.Memory, "vault": c.Vault, "crypto": CryptoHealth{}}
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
	for _, s := range []*service{c.Authz.svc, c.NHI.svc, c.Memory.svc, c.Vault.svc} {
		errs = append(errs, s.waitReady(ctx))
	}
	return errors.Join(errs...)
}

// Close wipes the vault client's cached secrets and closes every
// connection. Calls in flight fail.
func (c *Clients) Close() error {
	c.Vault.secrets.purge()
	return c.dialer.close()
}
