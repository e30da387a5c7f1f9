package bench_test

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
	"github.com/creto-systems/creto/services/vault"
)

// BenchmarkVault times the vault's read paths beside their anchor, all on
// one store in one run:
//
//   - anchor: what a read minimally is — a kv Get and an AES-256-GCM open
//     of the same 64-byte value through services/crypto;
//   - anchor-synced-write: one fsync'd kv commit of an access-event-sized
//     record, the floor of every recorded access;
//   - get: GetSecret of the current version, default config (the access is
//     recorded, durably, before the value is returned);
//   - get-unaudited: the same with audit_all_access = false, so the read
//     path alone (two kv Gets, two opens, authorization), measured on the
//     same store state as the anchor;
//   - delegated: GetDelegatedSecrets through a delegation (a use counted
//     and fsync'd with its access record before the value is returned);
//   - delegated-direct: GetDelegatedSecrets of the caller's own secret
//     (a sandbox-bound delegation record written per fetch).
//
// The -parallel variants run on every core to show that concurrent
// accesses share fsyncs (pebble's group commit).
//
//	go test -run '^$' -bench Vault -benchmem -count 5 ./bench/
func BenchmarkVault(b *testing.B) {
	ctx := context.Background()
	value := bytes.Repeat([]byte("k"), 64)
	store, err := kv.Open(b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })

	p := crypto.New()
	key, err := p.GenerateSymmetricKey(crypto.AES256GCM)
	if err != nil {
		b.Fatal(err)
	}
	anchorKey := []byte("bench/anchor/value")
	ct, err := p.Encrypt(key, value, anchorKey)
	if err != nil {
		b.Fatal(err)
	}
	var batch kv.Batch
	batch.Set(anchorKey, ct)
	if err := store.Apply(ctx, &batch); err != nil {
		b.Fatal(err)
	}
	b.Run("anchor", func(b *testing.B) {
		for b.Loop() {
			raw, err := store.Get(ctx, anchorKey)
			if err != nil {
				b.Fatal(err)
			}
			pt, err := p.Decrypt(key, raw, anchorKey)
			if err != nil {
				b.Fatal(err)
			}
			clear(pt)
		}
	})
	// The read path alone first, while the store holds only the secret:
	// the recorded benchmarks below add thousands of records, after which
	// every kv Get — the anchor's included — costs more.
	var share string // the 1-of-1 split, kept for the second open
	no := false
	unaudited := openVault(b, store, vault.Config{AuditAllAccess: &no}, &share)
	secret := vault.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}
	createSecret(b, unaudited, secret, value)
	get := func(v *vault.Service) func() error {
		return func() error {
			s, err := v.GetSecret(ctx, "planner", vault.GetSecretRequest{Ref: secret})
			if err == nil {
				s.Destroy()
			}
			return err
		}
	}
	b.Run("get-unaudited", loop(get(unaudited)))
	if err := unaudited.Close(); err != nil {
		b.Fatal(err)
	}

	audited := openVault(b, store, vault.Config{}, &share)
	b.Run("anchor-synced-write", func(b *testing.B) {
		event := bytes.Repeat([]byte("e"), 120)
		i := 0
		for b.Loop() {
			var wb kv.Batch
			wb.Set(fmt.Appendf(nil, "bench/event/%d", i), event)
			if err := store.Apply(ctx, &wb); err != nil {
				b.Fatal(err)
			}
			i++
		}
	})

	b.Run("get", loop(get(audited)))
	b.Run("get-parallel", parallel(get(audited)))

	d, err := audited.CreateDelegation(ctx, "planner", vault.CreateDelegationRequest{Delegatee: "worker", Secrets: []vault.SecretRef{secret}})
	if err != nil {
		b.Fatal(err)
	}
	fetch := func(agent string, req vault.GetDelegatedSecretsRequest) func() error {
		return func() error {
			resp, err := audited.GetDelegatedSecrets(ctx, agent, req)
			if err == nil {
				resp.Destroy()
			}
			return err
		}
	}
	delegated := fetch("worker", vault.GetDelegatedSecretsRequest{SandboxID: "sb-1", Refs: []vault.SecretRef{secret}, DelegationID: d.ID})
	b.Run("delegated", loop(delegated))
	b.Run("delegated-parallel", parallel(delegated))
	b.Run("delegated-direct", loop(fetch("planner", vault.GetDelegatedSecretsRequest{SandboxID: "sb-2", Refs: []vault.SecretRef{secret}})))
}

// openVault opens and unseals a vault on store, initializing it with a
// 1-of-1 key split (into *share) on first use.
func openVault(b *testing.B, store kv.Store, cfg vault.Config, share *string) *vault.Service {
	ctx := context.Background()
	v, err := vault.Open(ctx, store, cfg)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { v.Close() })
	if *share == "" {
		shares, err := v.InitShamir(ctx, 1, 1)
		if err != nil {
			b.Fatal(err)
		}
		*share = shares[0]
	}
	if _, err := v.SubmitUnsealShares(ctx, *share); err != nil {
		b.Fatal(err)
	}
	return v
}

func createSecret(b *testing.B, v *vault.Service, ref vault.SecretRef, value []byte) {
	_, err := v.CreateSecret(context.Background(), "planner", vault.CreateSecretRequest{
		Ref: ref, Value: vault.NewSecretValue(value), Metadata: vault.SecretMetadata{Type: vault.TypeAPIKey}})
	if err != nil {
		b.Fatal(err)
	}
}

func loop(op func() error) func(*testing.B) {
	return func(b *testing.B) {
		for b.Loop() {
			if err := op(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

func parallel(op func() error) func(*testing.B) {
	return func(b *testing.B) {
		b.SetParallelism(8) // goroutines per core: the fsyncs are what they wait on
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if err := op(); err != nil {
					b.Error(err)
					return
				}
			}
		})
	}
}
