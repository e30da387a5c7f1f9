package node

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/vault"
)

// VaultConfig is the [vault] section: the vault service's own settings
// (seed §5.7) and how the node unseals it.
type VaultConfig struct {
	vault.Config
	// Unseal is "auto" (the default): on first start the node creates a
	// key file, <data_dir>/keys/vault.key, initializes the vault with it,
	// and unseals with it at every start. "shamir" leaves the vault sealed
	// at start for operators to initialize and unseal with shares
	// (`creto vault init`, `creto vault unseal`).
	Unseal string `toml:"unseal"`
}

// Unseal modes.
const (
	UnsealAuto   = "auto"
	UnsealShamir = "shamir"
)

// vaultKeyFile is the vault's key file, beside the NHI node key: a
// separate key, so that either can be rotated or moved to an HSM alone.
func (n *Node) vaultKeyFile() string {
	return filepath.Join(n.cfg.Server.DataDir, "keys", "vault.key")
}

// openVault opens the vault on the node's store and, in auto mode,
// unseals it. An auto-unseal that fails leaves the vault sealed and the
// node serving: the other services do not depend on it, the failure is
// logged, and the vault's health says NOT_SERVING until an operator acts.
func (n *Node) openVault(ctx context.Context) error {
	cfg := n.cfg.Vault.Config
	if cfg.Authorizer == nil {
		cfg.Authorizer = vaultGrants{n.nhi}
	}
	if cfg.Log == nil {
		cfg.Log = n.log
	}
	if cfg.Recorder == nil {
		cfg.Recorder = vaultRecorder{n.audit}
	}
	v, err := vault.Open(ctx, n.store, cfg)
	if err != nil {
		return fmt.Errorf("config: vault: %w", err)
	}
	n.vault = v
	n.closers = append(n.closers, v.Close)
	if n.cfg.Vault.Unseal == UnsealShamir {
		n.log.Info("vault sealed: unseal mode is shamir (creto vault status, init, unseal)")
		return nil
	}
	if err := n.autoUnseal(ctx); err != nil {
		n.log.Error("vault auto-unseal failed; the vault stays sealed", "key_file", n.vaultKeyFile(), "err", err)
	}
	return nil
}

// autoUnseal initializes a new vault with the node's key file and unseals
// it with the key file.
func (n *Node) autoUnseal(ctx context.Context) error {
	st, err := n.vault.Status(ctx)
	if err != nil {
		return err
	}
	if st.Initialized && st.Mode != "backend" {
		return fmt.Errorf("the vault was initialized with Shamir shares: unseal it with creto vault unseal, or set [vault] unseal = %q", UnsealShamir)
	}
	b, release, err := n.vaultBackend(ctx, !st.Initialized)
	if err != nil {
		return err
	}
	defer release()
	if !st.Initialized {
		if err := n.vault.InitWithBackend(ctx, b); err != nil {
			return err
		}
		n.log.Info("vault initialized with the node's key file", "key_file", n.vaultKeyFile())
	}
	return n.vault.UnsealWithBackend(ctx, b)
}

// vaultBackend opens the vault's key file, creating it when create is set
// and it is missing. It is created only for a vault that is not
// initialized: a fresh key for a vault sealed under a lost one would hide
// the loss.
func (n *Node) vaultBackend(_ context.Context, create bool) (vault.KeyBackend, func(), error) {
	path := n.vaultKeyFile()
	s, err := nhi.OpenFileSealer(path)
	if errors.Is(err, fs.ErrNotExist) && create {
		if err = os.MkdirAll(filepath.Dir(path), 0o700); err == nil {
			s, err = nhi.CreateFileSealer(path)
		}
	}
	if err != nil {
		return nil, nil, fmt.Errorf("vault key file: %w", err)
	}
	return s, func() { s.Close() }, nil
}

// vaultServiceName is the agents' vault service, whose health follows the
// seal.
var vaultServiceName = vaultv1.VaultService_ServiceDesc.ServiceName

// reportVault sets the vault's health from its seal state: NOT_SERVING
// while sealed (every call would be UNAVAILABLE), SERVING once unsealed.
func (n *Node) reportVault(st vault.SealStatus) {
	s := healthpb.HealthCheckResponse_SERVING
	if st.Sealed {
		s = healthpb.HealthCheckResponse_NOT_SERVING
	}
	n.health.SetServingStatus(vaultServiceName, s)
}

// The NHI permissions that open one agent's secrets to another, one per
// vault access kind.
var vaultPermissions = map[vault.Access]string{
	vault.AccessRead:     "vault:read",
	vault.AccessWrite:    "vault:write",
	vault.AccessMetadata: "vault:metadata",
	vault.AccessDelegate: "vault:delegate",
	vault.AccessAudit:    "vault:audit",
}

// vaultGrants is the node's vault.Authorizer: an agent has an access to
// another agent's secret while it holds a live NHI delegation chain that
// starts at the secret's owner and grants the access's permission
// ("vault:read", …), verified at every call, so a revocation or an expiry
// takes effect at the next one. No permission implies another.
type vaultGrants struct{ nhi *nhi.Service }

// Authorize implements vault.Authorizer.
func (g vaultGrants) Authorize(ctx context.Context, req vault.AccessRequest) error {
	perm, ok := vaultPermissions[req.Access]
	if !ok || req.Owner == "" {
		return vault.ErrAccessDenied
	}
	_, err := g.nhi.FindGrant(ctx, req.Agent, req.Owner, perm)
	if errors.Is(err, nhi.ErrNotFound) {
		return fmt.Errorf("%w: no live delegation from the owner grants %s", vault.ErrAccessDenied, perm)
	}
	return err
}
