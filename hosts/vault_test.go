package hosts_test

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/vault"
)

// hookKey is the secret the test guests use: they are registered as
// extension "hook", whose vault identity owns agents/extension:hook/….
var hookKey = vault.SecretRef{Path: "agents/extension:hook/keys", Name: "SIGNING"}

// openVault is an unsealed vault on a fresh store.
func openVault(t *testing.T) *vault.Service {
	t.Helper()
	ctx := context.Background()
	store, err := kv.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	v, err := vault.Open(ctx, store, vault.Config{})
	if err != nil {
		store.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() { v.Close(); store.Close() })
	shares, err := v.InitShamir(ctx, 1, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.SubmitUnsealShares(ctx, shares[0]); err != nil {
		t.Fatal(err)
	}
	return v
}

// vaultGuest is a test guest with the given manifest.
func vaultGuest(t *testing.T, file, manifest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", file))
	if err == nil {
		b, err = withManifest(b, manifest)
	}
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// withManifest writes a manifest into a module.
func withManifest(module []byte, manifest string) ([]byte, error) {
	m, err := abi.ParseManifest([]byte(manifest))
	if err != nil {
		return nil, err
	}
	return abi.WriteManifest(module, m)
}

// vaultEngine permits everything and provides both vault modules over v.
func vaultEngine(t *testing.T, v *vault.Service) *engine.Engine {
	t.Helper()
	e := engine.New(engine.WithHostModules(hosts.Vault{Secrets: v}, hosts.VaultReveal{Secrets: v}))
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreatePolicy(context.Background(), "all", `permit (principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	return e
}

// guestSays checks a request of principal id and returns the guest's deny
// reason.
func guestSays(t *testing.T, e *engine.Engine, id string) string {
	t.Helper()
	d, err := e.Check(context.Background(), engine.Request{
		Principal: engine.Principal{Type: "Agent", ID: id}, Action: engine.EntityRef{ID: "call"}, Resource: engine.EntityRef{Type: "Hook", ID: "h"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if d.Kind != engine.Deny || d.PolicyID != "vault" {
		t.Fatalf("decision %v by %q (%s), want the guest's deny", d.Kind, d.PolicyID, d.Reason)
	}
	return d.Reason
}

func TestVaultHostMACsWithASecretItNeverSees(t *testing.T) {
	ctx := context.Background()
	v := openVault(t)
	e := vaultEngine(t, v)
	if _, err := e.RegisterExtension(ctx, vaultGuest(t, "vault_mac.wasm", `{"name": "hook", "capabilities": ["vault"]}`),
		engine.ExtensionConfig{Grants: []string{abi.CapabilityVault}}); err != nil {
		t.Fatal(err)
	}
	// No secret yet: not found.
	if got := guestSays(t, e, "payments-bot"); got != strconv.Itoa(abi.ENotFound) {
		t.Fatalf("before provisioning: %q", got)
	}
	// An operator provisions the key as the extension's identity.
	owner := vault.ExtensionAgent("hook")
	if _, err := v.CreateSecret(ctx, owner, vault.CreateSecretRequest{Ref: hookKey, Value: vault.NewSecretValue([]byte("whsec-test-1")),
		Metadata: vault.SecretMetadata{Type: vault.TypeGeneric}}); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"payments-bot", "planner"} {
		m := hmac.New(sha256.New, []byte("whsec-test-1"))
		m.Write([]byte(id))
		if got, want := guestSays(t, e, id), hex.EncodeToString(m.Sum(nil)); got != want {
			t.Fatalf("MAC of %q: got %s, want %s", id, got, want)
		}
	}
	// Each use is logged as the extension's "mac".
	log, err := v.GetAccessLog(ctx, owner, vault.GetAccessLogRequest{Ref: hookKey})
	if err != nil {
		t.Fatal(err)
	}
	macs := 0
	for _, ev := range log.Events {
		if ev.Operation == vault.OpMAC && ev.Agent == owner && ev.Outcome == vault.OutcomeAllowed {
			macs++
		}
	}
	if macs != 2 {
		t.Fatalf("%d mac events in %+v", macs, log.Events)
	}
	// A sealed vault cannot serve: EUNAVAILABLE, not a wrong MAC.
	if err := v.Seal(ctx); err != nil {
		t.Fatal(err)
	}
	if got := guestSays(t, e, "payments-bot"); got != strconv.Itoa(abi.EUnavailable) {
		t.Fatalf("sealed: %q", got)
	}
}

// An extension uses only what its identity may read: a secret of another
// agent is EDENIED, and so is one that does not exist there.
func TestVaultHostIsScopedToTheExtensionsIdentity(t *testing.T) {
	ctx := context.Background()
	v := openVault(t)
	e := vaultEngine(t, v)
	// Registered as "other": its identity does not own agents/extension:hook.
	if _, err := e.RegisterExtension(ctx, vaultGuest(t, "vault_mac.wasm", `{"name": "other", "capabilities": ["vault"]}`),
		engine.ExtensionConfig{Grants: []string{abi.CapabilityVault}}); err != nil {
		t.Fatal(err)
	}
	if _, err := v.CreateSecret(ctx, vault.ExtensionAgent("hook"), vault.CreateSecretRequest{Ref: hookKey, Value: vault.NewSecretValue([]byte("k")),
		Metadata: vault.SecretMetadata{Type: vault.TypeGeneric}}); err != nil {
		t.Fatal(err)
	}
	if got := guestSays(t, e, "x"); got != strconv.Itoa(abi.EDenied) {
		t.Fatalf("another extension's secret: %q", got)
	}
}

func TestVaultCapabilitiesAreCheckedAtRegistration(t *testing.T) {
	ctx := context.Background()
	v := openVault(t)
	e := vaultEngine(t, v)
	for name, c := range map[string]struct {
		file, manifest string
		grants         []string
	}{
		"mac not granted":          {"vault_mac.wasm", `{"name": "hook", "capabilities": ["vault"]}`, nil},
		"mac not requested":        {"vault_mac.wasm", `{"name": "hook"}`, []string{"vault"}},
		"reveal with vault only":   {"vault_reveal.wasm", `{"name": "hook", "capabilities": ["vault"]}`, []string{"vault"}},
		"reveal not granted":       {"vault_reveal.wasm", `{"name": "hook", "capabilities": ["vault", "vault-reveal"]}`, []string{"vault"}},
		"reveal granted, not mine": {"vault_reveal.wasm", `{"name": "hook", "capabilities": ["vault"]}`, []string{"vault", "vault-reveal"}},
	} {
		_, err := e.RegisterExtension(ctx, vaultGuest(t, c.file, c.manifest), engine.ExtensionConfig{Grants: c.grants})
		if !errors.Is(err, engine.ErrImportNotGranted) {
			t.Fatalf("%s: %v, want ErrImportNotGranted", name, err)
		}
	}
	if len(e.ListExtensions()) != 0 {
		t.Fatalf("refused registrations left %v", e.ListExtensions())
	}
}

func TestVaultRevealNeedsItsOwnGrant(t *testing.T) {
	ctx := context.Background()
	v := openVault(t)
	e := vaultEngine(t, v)
	if _, err := v.CreateSecret(ctx, vault.ExtensionAgent("hook"), vault.CreateSecretRequest{Ref: hookKey, Value: vault.NewSecretValue([]byte("plain-value")),
		Metadata: vault.SecretMetadata{Type: vault.TypeGeneric}}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.RegisterExtension(ctx, vaultGuest(t, "vault_reveal.wasm", `{"name": "hook", "capabilities": ["vault-reveal"]}`),
		engine.ExtensionConfig{Grants: []string{abi.CapabilityVaultReveal}}); err != nil {
		t.Fatal(err)
	}
	if got := guestSays(t, e, "x"); got != "plain-value" {
		t.Fatalf("reveal: %q", got)
	}
}
