package client_test

import (
	"errors"
	"io"
	"path/filepath"
	"testing"

	"google.golang.org/protobuf/types/known/durationpb"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
	consensusv1 "github.com/creto-systems/creto/api/creto/consensus/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
	storagev1 "github.com/creto-systems/creto/api/creto/storage/v1"
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

// BenchmarkStorage measures the storage client against the generated gRPC
// client on the same node: a 4 KiB object stored and read whole, and a
// 16 MiB object streamed in and out (b.SetBytes: MB/s).
func BenchmarkStorage(b *testing.B) {
	tn := startNode(b, "")
	tn.seed("bot")
	c := tn.clients(b, tn.config(tn.GRPCAddr().String())).Storage
	raw := storagev1.NewStorageServiceClient(tn.operator())
	bot := &nhiv1.AgentIdentity{Id: "bot"}
	small := make([]byte, 4<<10)
	req := client.StoreObjectRequest{Requester: "bot", Ref: client.StorageRef{Bucket: "bench", Key: "small"}, Classification: client.Artifact, NoExpiry: true}
	wire := &storagev1.StoreRequest{Requester: bot, Data: small, Reference: &storagev1.StorageRef{Bucket: "bench", Key: "small"},
		Classification: storagev1.Classification_CLASSIFICATION_ARTIFACT, Ttl: durationpb.New(0)}
	b.Run("store-4KiB/anchor=grpc", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.Store(bg, wire); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("store-4KiB/client", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Store(bg, req, small); err != nil {
				b.Fatal(err)
			}
		}
	})
	// One version read by its id: what the client adds, not how the node
	// finds an object's latest among its versions.
	req.Ref.Key = "read"
	stored, err := c.Store(bg, req, small)
	if err != nil {
		b.Fatal(err)
	}
	read := &storagev1.RetrieveRequest{Requester: bot, Reference: &storagev1.StorageRef{Bucket: "bench", Key: "read", VersionId: stored.Ref.VersionID}}
	b.Run("retrieve-4KiB/anchor=grpc", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.Retrieve(bg, read); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("retrieve-4KiB/client", func(b *testing.B) {
		for b.Loop() {
			if _, err := c.Retrieve(bg, client.ObjectRequest{Requester: "bot", Ref: stored.Ref}); err != nil {
				b.Fatal(err)
			}
		}
	})
	// Each streamed object is deleted, the timer stopped, so the disk holds
	// one at a time and the later runs do not pay for the earlier ones.
	drop := func(b *testing.B, versionID string) {
		b.StopTimer()
		if _, err := raw.Delete(bg, &storagev1.DeleteRequest{Requester: bot, Reference: &storagev1.StorageRef{Bucket: "bench", Key: "big", VersionId: versionID}}); err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
	}

	const big = 16 << 20
	bigRef := &storagev1.StorageRef{Bucket: "bench", Key: "big"}
	b.Run("stream-16MiB-in/anchor=grpc", func(b *testing.B) {
		b.SetBytes(big)
		chunk := make([]byte, 1<<20)
		for b.Loop() {
			s, err := raw.StoreStream(bg)
			if err != nil {
				b.Fatal(err)
			}
			s.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Header{Header: &storagev1.StoreStreamHeader{
				Requester: bot, Reference: bigRef, Classification: storagev1.Classification_CLASSIFICATION_ARTIFACT, Ttl: durationpb.New(0), SizeBytes: big}}})
			for range big / len(chunk) {
				s.Send(&storagev1.StoreStreamRequest{Part: &storagev1.StoreStreamRequest_Chunk{Chunk: chunk}})
			}
			resp, err := s.CloseAndRecv()
			if err != nil {
				b.Fatal(err)
			}
			drop(b, resp.GetReference().GetVersionId())
		}
	})
	bigReq := client.StoreObjectRequest{Requester: "bot", Ref: client.StorageRef{Bucket: "bench", Key: "big"}, Classification: client.Artifact, NoExpiry: true, Size: big}
	b.Run("stream-16MiB-in/client", func(b *testing.B) {
		b.SetBytes(big)
		for b.Loop() {
			md, err := c.StoreStream(bg, bigReq, io.LimitReader(zeros{}, big))
			if err != nil {
				b.Fatal(err)
			}
			drop(b, md.Ref.VersionID)
		}
	})
	// One object to read back.
	if _, err := c.StoreStream(bg, bigReq, io.LimitReader(zeros{}, big)); err != nil {
		b.Fatal(err)
	}
	b.Run("stream-16MiB-out/anchor=grpc", func(b *testing.B) {
		b.SetBytes(big)
		for b.Loop() {
			s, err := raw.RetrieveStream(bg, &storagev1.RetrieveStreamRequest{Requester: bot, Reference: bigRef})
			if err != nil {
				b.Fatal(err)
			}
			n := 0
			for {
				msg, err := s.Recv()
				if errors.Is(err, io.EOF) {
					break
				}
				if err != nil {
					b.Fatal(err)
				}
				n += len(msg.GetChunk())
			}
			if n != big {
				b.Fatal(n)
			}
		}
	})
	b.Run("stream-16MiB-out/client", func(b *testing.B) {
		b.SetBytes(big)
		for b.Loop() {
			r, err := c.RetrieveStream(bg, client.ObjectRequest{Requester: "bot", Ref: bigReq.Ref})
			if err != nil {
				b.Fatal(err)
			}
			if n, err := io.Copy(io.Discard, r); err != nil || n != big {
				b.Fatal(n, err)
			}
			r.Close()
		}
	})
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

// BenchmarkAudit measures Emit — what an emitter pays, the log up or down
// — against the synchronous Log of the generated gRPC client, its anchor.
func BenchmarkAudit(b *testing.B) {
	tn := startNode(b, "")
	raw := auditv1.NewAuditServiceClient(tn.operator())
	wire := &auditv1.LogRequest{Record: &auditv1.AuditRecord{Who: &nhiv1.AgentIdentity{Id: "bench"}, What: "read_file",
		Outcome: auditv1.Outcome_OUTCOME_SUCCESS, Source: "platform"}}
	b.Run("log/anchor=grpc", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.Log(bg, wire); err != nil {
				b.Fatal(err)
			}
		}
	})
	ev := client.AuditEvent{Record: client.AuditRecord{Who: "bench", What: "read_file", Outcome: client.OutcomeSuccess, Source: "platform"}}
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Audit.SpoolPath = filepath.Join(b.TempDir(), "audit.spool")
	cfg.Audit.BufferSize = 1 << 20
	c := tn.clients(b, cfg).Audit
	for name, critical := range map[string]bool{"emit/client": false, "emit-critical/client": true} {
		b.Run(name, func(b *testing.B) {
			ev := ev
			ev.Critical = critical
			for b.Loop() {
				if err := c.Emit(bg, ev); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			if err := c.Flush(bg); err != nil { // the log keeps up, off the caller's path
				b.Fatal(err)
			}
		})
	}

	proxy := newProxy(b, tn.GRPCAddr().String())
	cfg.Audit.Endpoint, cfg.Audit.SpoolPath = proxy.Listen, filepath.Join(b.TempDir(), "audit.spool")
	down := tn.clients(b, cfg).Audit
	proxy.Stop()
	b.Run("emit-log-down/client", func(b *testing.B) {
		for b.Loop() {
			if err := down.Emit(bg, ev); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// BenchmarkTimestamp measures GetTimestamp against the generated gRPC
// client, and the local fallback when consensus cannot answer (the
// circuit open: no network at all).
func BenchmarkTimestamp(b *testing.B) {
	tn := startNode(b, "")
	raw := consensusv1.NewConsensusServiceClient(tn.operator())
	b.Run("anchor=grpc", func(b *testing.B) {
		for b.Loop() {
			if _, err := raw.GetTimestamp(bg, &consensusv1.GetTimestampRequest{Count: 1}); err != nil {
				b.Fatal(err)
			}
		}
	})
	c := tn.clients(b, tn.config(tn.GRPCAddr().String())).Consensus
	b.Run("client", func(b *testing.B) {
		for b.Loop() {
			if r, err := c.GetTimestamp(bg, 1); err != nil || !r.Consensus {
				b.Fatal(r, err)
			}
		}
	})
	proxy := newProxy(b, tn.GRPCAddr().String())
	cfg := tn.config(tn.GRPCAddr().String())
	cfg.Consensus.Endpoint, cfg.Consensus.FailureThreshold, cfg.Consensus.ResetTimeoutSeconds = proxy.Listen, 1, 3600
	local := tn.clients(b, cfg).Consensus
	proxy.Stop()
	local.GetTimestamp(bg, 1) // a refused dial: the circuit opens
	b.Run("client/local-fallback", func(b *testing.B) {
		for b.Loop() {
			if r, err := local.GetTimestamp(bg, 1); err != nil || r.Consensus {
				b.Fatal(r, err)
			}
		}
	})
}
