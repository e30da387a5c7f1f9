package node

import (
	"testing"

	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/services/vault"
)

// BenchmarkVaultGetSecret measures what serving the vault costs: GetSecret
// in process (the anchor) and over gRPC with mTLS on loopback, as an
// operator and as an agent, in one run. audit_all_access is off so that
// the fsync of each read's access event (bench/RESULTS.md, "Secret vault")
// does not hide the wire's cost; the delegated fetch, always recorded, is
// measured the same three ways.
//
// go test -run '^$' -bench VaultGetSecret -benchmem ./node/
func BenchmarkVaultGetSecret(b *testing.B) {
	tn := startNode(b, "", func(c *Config) { c.Vault.AuditAllAccess = ptr(false) })
	conn := tn.agent("bot")
	ref := secretRef("agents/bot/keys", "API_KEY")
	createSecret(b, conn, ref, "sk-0123456789abcdef0123456789abcdef")
	agent, op := vaultv1.NewVaultServiceClient(conn), vaultv1.NewVaultServiceClient(tn.operator())
	b.Run("get/in-process", func(b *testing.B) {
		for b.Loop() {
			s, err := tn.vault.GetSecret(bg, "bot", vault.GetSecretRequest{Ref: vault.SecretRef{Path: ref.Path, Name: ref.Name}})
			if err != nil {
				b.Fatal(err)
			}
			s.Destroy()
		}
	})
	for name, c := range map[string]vaultv1.VaultServiceClient{"get/grpc-operator": op, "get/grpc-agent": agent} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.GetSecret(bg, &vaultv1.GetSecretRequest{Requester: agentRef("bot"), Reference: ref}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	fetch := &vaultv1.GetDelegatedSecretsRequest{Requester: agentRef("bot"), SandboxId: sandbox("sb"), References: []*vaultv1.SecretRef{ref}}
	b.Run("delegated/in-process", func(b *testing.B) {
		req := vault.GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []vault.SecretRef{{Path: ref.Path, Name: ref.Name}}}
		for b.Loop() {
			r, err := tn.vault.GetDelegatedSecrets(bg, "bot", req)
			if err != nil {
				b.Fatal(err)
			}
			r.Destroy()
		}
	})
	for name, c := range map[string]vaultv1.VaultServiceClient{"delegated/grpc-operator": op, "delegated/grpc-agent": agent} {
		b.Run(name, func(b *testing.B) {
			for b.Loop() {
				if _, err := c.GetDelegatedSecrets(bg, fetch); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
