package nhi

import (
	"context"
	"fmt"
	"testing"

	"github.com/creto-systems/creto/services/crypto"
)

// go test -run '^$' -bench . -benchmem ./services/nhi/

func BenchmarkResolveToken(b *testing.B) {
	e := newEnv(b)
	e.register("agent", "alice")
	tok := e.token("agent", 0)
	ctx := context.Background()
	b.Run("uncached", func(b *testing.B) {
		h := sha256Of(b, e.s, tok)
		for b.Loop() {
			e.s.tokens.remove(h)
			if _, err := e.s.ResolveToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("cached", func(b *testing.B) {
		if _, err := e.s.ResolveToken(ctx, tok); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := e.s.ResolveToken(ctx, tok); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func sha256Of(b *testing.B, s *Service, tok string) [32]byte {
	d, err := s.p.Hash(crypto.SHA256, []byte(tok))
	if err != nil {
		b.Fatal(err)
	}
	return [32]byte(d)
}

func BenchmarkIssueToken(b *testing.B) {
	e := newEnv(b)
	e.register("agent", "alice")
	ctx := context.Background()
	for b.Loop() {
		if _, err := e.s.IssueToken(ctx, "agent", 0); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyDelegation verifies a whole chain from the store: every
// link read, decoded and checked. Uncached, every signature is verified
// too; cached, signatures verified before are not, while expiry,
// revocation and key validity still are.
func BenchmarkVerifyDelegation(b *testing.B) {
	for _, hops := range []int{1, 10} {
		e := newEnv(b)
		links := chainOf(e, hops)
		leaf := links[len(links)-1].ID()
		ctx := context.Background()
		for _, cached := range []bool{false, true} {
			name := fmt.Sprintf("hops=%d/uncached", hops)
			if cached {
				name = fmt.Sprintf("hops=%d/cached", hops)
			}
			b.Run(name, func(b *testing.B) {
				for b.Loop() {
					if !cached {
						e.s.verifiedLinks.drain(func(struct{}) {})
					}
					if _, err := e.s.VerifyDelegation(ctx, leaf); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}

// BenchmarkSign puts Service.Sign beside the bare provider call with the
// same kind of key, message and context: the difference is what NHI adds
// (agent lookup, status and key-window checks, key cache).
func BenchmarkSign(b *testing.B) {
	e := newEnv(b)
	e.register("agent", "alice")
	ctx := context.Background()
	msg := make([]byte, 256)
	b.Run("nhi", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.s.Sign(ctx, "agent", msg); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		p := crypto.New()
		k, err := p.GenerateKey(crypto.Ed25519MLDSA65)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := p.Sign(k, msg, contextAgentMessage); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkVerify(b *testing.B) {
	e := newEnv(b)
	e.register("agent", "alice")
	ctx := context.Background()
	msg := make([]byte, 256)
	sig, err := e.s.Sign(ctx, "agent", msg)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("nhi", func(b *testing.B) {
		for b.Loop() {
			if err := e.s.Verify(ctx, "agent", msg, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("raw", func(b *testing.B) {
		pk, err := e.s.GetPublicKeys(ctx, "agent")
		if err != nil {
			b.Fatal(err)
		}
		p := crypto.New()
		for b.Loop() {
			if err := p.Verify(pk.Signing, msg, contextAgentMessage, sig); err != nil {
				b.Fatal(err)
			}
		}
	})
}
