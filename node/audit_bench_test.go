package node

import (
	"path/filepath"
	"testing"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/vault"
)

// BenchmarkVaultRecordedAccess is what recording a vault access in the
// node's audit log costs, in process: a read with audit_all_access on
// (one record each) and a delegated fetch (a record and a use count),
// against, in the same run, the same calls on a vault keeping its own
// access log in a store of its own — the default outside a node, where a
// change and its event commit in one batch.
//
// go test -run '^$' -bench VaultRecordedAccess -benchmem ./node/
func BenchmarkVaultRecordedAccess(b *testing.B) {
	tn := startNode(b, "", nil)
	ref := vault.SecretRef{Path: "agents/bot/keys", Name: "API_KEY"}
	create := vault.CreateSecretRequest{Ref: ref, Value: vault.NewSecretValue([]byte("sk-0123456789abcdef0123456789abcdef")),
		Metadata: vault.SecretMetadata{Type: vault.TypeGeneric}}

	st, err := kv.Open(filepath.Join(b.TempDir(), "kv"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	own, err := vault.Open(bg, st, vault.Config{})
	if err != nil {
		b.Fatal(err)
	}
	defer own.Close()
	shares, err := own.InitShamir(bg, 1, 1)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := own.SubmitUnsealShares(bg, shares[0]); err != nil {
		b.Fatal(err)
	}

	for _, c := range []struct {
		name string
		v    *vault.Service
	}{{"own-log", own}, {"audit-log", tn.vault}} {
		name, v := c.name, c.v
		if _, err := v.CreateSecret(bg, "bot", create); err != nil {
			b.Fatal(err)
		}
		b.Run("get/"+name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				s, err := v.GetSecret(bg, "bot", vault.GetSecretRequest{Ref: ref})
				if err != nil {
					b.Fatal(err)
				}
				s.Destroy()
			}
		})
		b.Run("delegated/"+name, func(b *testing.B) {
			b.ReportAllocs()
			req := vault.GetDelegatedSecretsRequest{SandboxID: "sb", Refs: []vault.SecretRef{ref}}
			for b.Loop() {
				r, err := v.GetDelegatedSecrets(bg, "bot", req)
				if err != nil {
					b.Fatal(err)
				}
				r.Destroy()
			}
		})
	}
}
