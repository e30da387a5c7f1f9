package client_test

import (
	"errors"
	"testing"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
	"github.com/creto-systems/creto/client"
)

// BenchmarkCheck measures what the client adds to a Check over loopback
// gRPC with mTLS: the generated gRPC client calling the same node is the
// anchor, in the same run. "circuit-open" is the client's fail-secure
// denial when its circuit is open: no network at all.
func BenchmarkCheck(b *testing.B) {
	tn := startNode(b, "")
	tn.seed()
	c := tn.clients(b, tn.config(tn.GRPCAddr().String()))
	if err := c.Connect(bg); err != nil {
		b.Fatal(err)
	}
	raw := authzv1.NewAuthorizationServiceClient(tn.operator())
	req := agentCheck("reader", "q3")
	wire := &authzv1.CheckRequest{Principal: &authzv1.Principal{Id: "reader"}, Action: "read", Resource: `Document::"q3"`}
	ctxReq := req
	ctxReq.Context = map[string]any{"ip": "10.0.0.7", "mfa": true, "tags": []any{"a", "b"}}

	b.Run("anchor=grpc", func(b *testing.B) {
		for b.Loop() {
			if resp, err := raw.Check(bg, wire); err != nil || resp.GetDecision().GetAllow() == nil {
				b.Fatal(resp, err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			if d, err := c.Authz.Check(bg, req); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("client/context", func(b *testing.B) {
		for b.Loop() {
			if d, err := c.Authz.Check(bg, ctxReq); err != nil || !d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
	b.Run("anchor=grpc/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := raw.Check(bg, wire); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})
	b.Run("client/parallel", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, err := c.Authz.Check(bg, req); err != nil {
					b.Error(err)
					return
				}
			}
		})
	})

	proxy := newProxy(b, tn.GRPCAddr().String())
	open := breakerConfig(tn, proxy.Listen, 1, 3600, 1)
	oc := tn.clients(b, open).Authz
	proxy.Stop()
	oc.Check(bg, req) // refused dial: the circuit opens
	b.Run("client/circuit-open", func(b *testing.B) {
		for b.Loop() {
			if d, err := oc.Check(bg, req); !errors.Is(err, client.ErrCircuitOpen) || d.Allowed() {
				b.Fatal(d, err)
			}
		}
	})
}

// BenchmarkGetSecret measures a vault read through the client (which
// copies the value into a SecretValue, wipes the message's copy and keeps
// one in its cache) against the generated gRPC client.
func BenchmarkGetSecret(b *testing.B) {
	tn := startNode(b, "")
	c := tn.clients(b, tn.config(tn.GRPCAddr().String()))
	ref := client.SecretRef{Path: "agents/planner/api-keys", Name: "OPENAI_API_KEY"}
	if _, err := c.Vault.CreateSecret(bg, client.CreateSecretRequest{Requester: "planner", Ref: ref, Value: client.NewSecretValue([]byte("sk-live-123")),
		Metadata: client.SecretMetadata{Type: client.APIKey}}); err != nil {
		b.Fatal(err)
	}
	raw := vaultv1.NewVaultServiceClient(tn.operator())
	wire := &vaultv1.GetSecretRequest{Requester: &nhiv1.AgentIdentity{Id: "planner"}, Reference: &vaultv1.SecretRef{Path: ref.Path, Name: ref.Name}}
	b.Run("anchor=grpc", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.GetSecret(bg, wire); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			s, err := c.Vault.GetSecret(bg, "planner", ref, "")
			if err != nil {
				b.Fatal(err)
			}
			s.Destroy()
		}
	})
}
