package hosts_test

import (
	"context"
	"os"
	"path/filepath"
	"testing"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/vault"
)

// BenchmarkVaultHostMAC is the cost creto:vault/v1 adds to a check: a
// guest that MACs the principal's id with a secret once per check against,
// in the same run, the engine's cheapest guest (continue.wasm, no host
// call) and the in-process vault.MAC the host function makes. The vault
// runs with audit_all_access off, so no fsync per use is measured.
//
// go test -run '^$' -bench VaultHostMAC -benchmem ./hosts/
func BenchmarkVaultHostMAC(b *testing.B) {
	ctx := context.Background()
	store, err := kv.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	defer store.Close()
	off := false
	v, err := vault.Open(ctx, store, vault.Config{AuditAllAccess: &off})
	if err != nil {
		b.Fatal(err)
	}
	defer v.Close()
	shares, err := v.InitShamir(ctx, 1, 1)
	if err == nil {
		_, err = v.SubmitUnsealShares(ctx, shares[0])
	}
	if err == nil {
		_, err = v.CreateSecret(ctx, vault.ExtensionAgent("hook"), vault.CreateSecretRequest{Ref: hookKey,
			Value: vault.NewSecretValue([]byte("whsec-0123456789abcdef")), Metadata: vault.SecretMetadata{Type: vault.TypeGeneric}})
	}
	if err != nil {
		b.Fatal(err)
	}
	req := engine.Request{Principal: engine.Principal{Type: "Agent", ID: "payments-bot"}, Action: engine.EntityRef{ID: "call"}, Resource: engine.EntityRef{Type: "Hook", ID: "h"}}
	for _, g := range []struct{ name, path, manifest string }{
		{"guest-without-host-call", filepath.Join("..", "engine", "testdata", "ext", "continue.wasm"), `{"name": "hook"}`},
		{"guest-with-vault-mac", filepath.Join("testdata", "vault_mac.wasm"), `{"name": "hook", "capabilities": ["vault"]}`},
	} {
		b.Run(g.name, func(b *testing.B) {
			e := engine.New(engine.WithHostModules(hosts.Vault{Secrets: v}))
			defer e.Close()
			if _, err := e.CreatePolicy(ctx, "all", `permit (principal, action, resource);`); err != nil {
				b.Fatal(err)
			}
			module, err := os.ReadFile(g.path)
			if err != nil {
				b.Fatal(err)
			}
			if module, err = withManifest(module, g.manifest); err != nil {
				b.Fatal(err)
			}
			if _, err := e.RegisterExtension(ctx, module, engine.ExtensionConfig{Grants: []string{"vault"}}); err != nil {
				b.Fatal(err)
			}
			for b.Loop() {
				if _, err := e.Check(ctx, req); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("vault-mac-in-process", func(b *testing.B) {
		for b.Loop() {
			if _, err := v.MAC(ctx, vault.ExtensionAgent("hook"), vault.MACRequest{Ref: hookKey, Data: []byte("payments-bot")}); err != nil {
				b.Fatal(err)
			}
		}
	})
}
