package audit

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/transparency-dev/merkle/proof"
	"github.com/transparency-dev/merkle/rfc6962"
	"github.com/transparency-dev/merkle/testonly"
	"golang.org/x/mod/sumdb/tlog"
)

// checkpointAt makes the log sign a checkpoint covering everything
// committed, as a proof request for a fresh record would.
func (e *logEnv) checkpointAt() Checkpoint {
	e.t.Helper()
	if err := e.svc.requestCheckpoint(context.Background()); err != nil {
		e.t.Fatal(err)
	}
	_, c, err := e.svc.LatestCheckpoint(context.Background())
	if err != nil {
		e.t.Fatal(err)
	}
	return c
}

func hashesToBytes(hs []tlog.Hash) [][]byte {
	out := make([][]byte, len(hs))
	for i := range hs {
		out[i] = hs[i][:]
	}
	return out
}

// growLog appends records in uneven batches, checkpointing after each,
// and returns the checkpoints in order with every leaf.
func growLog(t *testing.T, e *logEnv, batches ...int) ([]Checkpoint, [][]byte) {
	t.Helper()
	ctx := context.Background()
	var cps []Checkpoint
	n := 0
	for _, b := range batches {
		e.appendN(b, b, func(i int) Record { return rec(fmt.Sprintf("agent-%d", (n+i)%3), fmt.Sprint(n+i)) })
		n += b
		cps = append(cps, e.checkpointAt())
	}
	var leaves [][]byte
	for i := range n {
		leaf, err := e.store.Get(ctx, recordKey(int64(i)))
		if err != nil {
			t.Fatal(err)
		}
		leaves = append(leaves, leaf)
	}
	return cps, leaves
}

func TestInclusionProofsInterop(t *testing.T) {
	for _, cache := range []int{0, 64} { // default: upper levels in memory; 64: two hashes, nearly all from the store
		t.Run(fmt.Sprintf("hash_cache_bytes=%d", cache), func(t *testing.T) {
			ctx := context.Background()
			e := newEnv(t, Config{HashCacheBytes: cache})
			cps, leaves := growLog(t, e, 1, 4, 8, 24)
			v, err := ParseVerifier(e.svc.Verifier().Ed25519Key(), e.svc.Verifier().HybridKey())
			if err != nil {
				t.Fatal(err)
			}
			ref := testonly.New(rfc6962.DefaultHasher)
			ref.AppendData(leaves...)
			latest := cps[len(cps)-1]
			if string(ref.Hash()) != string(latest.Root[:]) {
				t.Fatal("transparency-dev's reference tree has another root")
			}
			for i := range leaves {
				who := fmt.Sprintf("agent-%d", i%3)
				p, err := e.svc.GetProof(ctx, who, GetProofRequest{Kind: Inclusion, Index: uint64(i), WithLeaf: true})
				if err != nil {
					t.Fatal(err)
				}
				if p.TreeSize != uint64(latest.Size) || string(p.Leaf) != string(leaves[i]) {
					t.Fatalf("proof %d: size %d", i, p.TreeSize)
				}
				if _, err := e.svc.Verify(ctx, "anyone", VerifyRequest{Proof: p}); err != nil {
					t.Fatalf("record %d: %v", i, err)
				}
				if _, err := VerifyProof(v, VerifyRequest{Proof: p}); err != nil {
					t.Fatalf("record %d, offline: %v", i, err)
				}
				// Our (tlog) proof verified by transparency-dev/merkle...
				lh := rfc6962.DefaultHasher.HashLeaf(leaves[i])
				if err := proof.VerifyInclusion(rfc6962.DefaultHasher, uint64(i), p.TreeSize, lh, hashesToBytes(p.Hashes), latest.Root[:]); err != nil {
					t.Fatalf("merkle/proof rejects record %d: %v", i, err)
				}
				// ...and transparency-dev's proof verified by tlog against
				// our signed root.
				rp, err := ref.InclusionProof(uint64(i), p.TreeSize)
				if err != nil {
					t.Fatal(err)
				}
				var hs tlog.RecordProof
				for _, h := range rp {
					hs = append(hs, tlog.Hash(h))
				}
				if err := tlog.CheckRecord(hs, latest.Size, latest.Root, int64(i), tlog.RecordHash(leaves[i])); err != nil {
					t.Fatalf("tlog rejects merkle's proof of %d: %v", i, err)
				}
			}
			// Proofs to an earlier checkpoint.
			p, err := e.svc.GetProof(ctx, "agent-0", GetProofRequest{Kind: Inclusion, Index: 3, TreeSize: uint64(cps[1].Size), WithLeaf: true})
			if err != nil || p.TreeSize != uint64(cps[1].Size) {
				t.Fatalf("%+v %v", p, err)
			}
			if _, err := e.svc.Verify(ctx, "anyone", VerifyRequest{Proof: p}); err != nil {
				t.Fatal(err)
			}
			e.reopen()
			p, err = e.svc.GetProof(ctx, "agent-1", GetProofRequest{Kind: Inclusion, Index: 31, WithLeaf: true})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Verify(ctx, "anyone", VerifyRequest{Proof: p}); err != nil {
				t.Fatalf("after reopen: %v", err)
			}
		})
	}
}

func TestConsistencyProofsInterop(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	cps, leaves := growLog(t, e, 3, 5, 1, 16, 7)
	ref := testonly.New(rfc6962.DefaultHasher)
	ref.AppendData(leaves...)
	notes := map[int64][]byte{}
	for _, c := range cps {
		p, err := e.svc.GetProof(ctx, "x", GetProofRequest{Kind: Consistency, OldSize: 1, TreeSize: uint64(c.Size)})
		if err != nil {
			t.Fatal(err)
		}
		notes[c.Size] = p.Checkpoint
	}
	for i, old := range cps {
		for _, cur := range cps[i:] {
			p, err := e.svc.GetProof(ctx, "x", GetProofRequest{Kind: Consistency, OldSize: uint64(old.Size), TreeSize: uint64(cur.Size)})
			if err != nil {
				t.Fatal(err)
			}
			if _, err := e.svc.Verify(ctx, "x", VerifyRequest{Proof: p, OldCheckpoint: notes[old.Size]}); err != nil {
				t.Fatalf("%d→%d: %v", old.Size, cur.Size, err)
			}
			if err := proof.VerifyConsistency(rfc6962.DefaultHasher, uint64(old.Size), uint64(cur.Size), hashesToBytes(p.Hashes), old.Root[:], cur.Root[:]); err != nil {
				t.Fatalf("merkle/proof rejects %d→%d: %v", old.Size, cur.Size, err)
			}
			rp, err := ref.ConsistencyProof(uint64(old.Size), uint64(cur.Size))
			if err != nil {
				t.Fatal(err)
			}
			var tp tlog.TreeProof
			for _, h := range rp {
				tp = append(tp, tlog.Hash(h))
			}
			if err := tlog.CheckTree(tp, cur.Size, cur.Root, old.Size, old.Root); err != nil {
				t.Fatalf("tlog rejects merkle's proof %d→%d: %v", old.Size, cur.Size, err)
			}
		}
	}
	// A consistency proof checked against an old checkpoint of another
	// size fails with that checkpoint named.
	p, _ := e.svc.GetProof(ctx, "x", GetProofRequest{Kind: Consistency, OldSize: uint64(cps[1].Size), TreeSize: uint64(cps[3].Size)})
	_, err := e.svc.Verify(ctx, "x", VerifyRequest{Proof: p, OldCheckpoint: notes[cps[0].Size]})
	var ve *VerificationError
	if !errors.As(err, &ve) || ve.Checkpoint != cps[0].Size {
		t.Fatalf("wrong old checkpoint: %v", err)
	}
}

func TestBadProofsFailWithPosition(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	cps, _ := growLog(t, e, 6, 10)
	get := func(i uint64, size int64) MerkleProof {
		p, err := e.svc.GetProof(ctx, "agent-0", GetProofRequest{Kind: Inclusion, Index: i, TreeSize: uint64(size), WithLeaf: true})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	p := get(3, cps[1].Size)
	other := get(3, cps[0].Size)
	flipped := p
	flipped.Hashes = append([]tlog.Hash(nil), p.Hashes...)
	flipped.Hashes[0][0] ^= 1
	wrongIndex := p
	wrongIndex.Index = 4
	altered, _ := DecodeLeaf(p.Leaf)
	altered.Why = "rewritten"
	cases := map[string]struct {
		req       VerifyRequest
		wantIndex int64
		wantCP    int64
	}{
		"flipped hash":         {VerifyRequest{Proof: flipped}, 3, cps[1].Size},
		"wrong index":          {VerifyRequest{Proof: wrongIndex}, 4, -1},
		"altered record":       {VerifyRequest{Proof: p, Record: &altered}, 3, cps[1].Size},
		"proof for other size": {VerifyRequest{Proof: p, Checkpoint: other.Checkpoint}, -1, cps[0].Size},
	}
	for name, c := range cases {
		_, err := e.svc.Verify(ctx, "x", c.req)
		var ve *VerificationError
		if !errors.As(err, &ve) || ve.Index != c.wantIndex || ve.Checkpoint != c.wantCP {
			t.Errorf("%s: got %v (%+v), want entry %d checkpoint %d", name, err, ve, c.wantIndex, c.wantCP)
		}
	}
	// The untouched proof still verifies, also from the record itself.
	r, _ := DecodeLeaf(p.Leaf)
	if _, err := e.svc.Verify(ctx, "x", VerifyRequest{Proof: p, Record: &r}); err != nil {
		t.Fatal(err)
	}
	// Without the leaf, a proof is hashes: anyone may have it, and it
	// verifies for whoever holds the record.
	bare, err := e.svc.GetProof(ctx, "stranger", GetProofRequest{Kind: Inclusion, Index: 3, TreeSize: uint64(cps[1].Size)})
	if err != nil || bare.Leaf != nil {
		t.Fatalf("%+v %v", bare, err)
	}
	if _, err := e.svc.Verify(ctx, "x", VerifyRequest{Proof: bare, Leaf: p.Leaf}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.svc.Verify(ctx, "x", VerifyRequest{Proof: bare}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("nothing to verify: %v", err)
	}

	for name, c := range map[string]struct {
		caller string
		req    GetProofRequest
		want   error
	}{
		"past the end":        {"agent-0", GetProofRequest{Kind: Inclusion, Index: 16}, ErrNotFound},
		"no such checkpoint":  {"agent-0", GetProofRequest{Kind: Inclusion, Index: 0, TreeSize: 7}, ErrNotFound},
		"not in that tree":    {"agent-1", GetProofRequest{Kind: Inclusion, Index: 10, TreeSize: uint64(cps[0].Size)}, ErrInvalidArgument},
		"someone else's leaf": {"agent-2", GetProofRequest{Kind: Inclusion, Index: 0, WithLeaf: true}, ErrAccessDenied},
		"old size 0":          {"x", GetProofRequest{Kind: Consistency, OldSize: 0}, ErrInvalidArgument},
		"old size too big":    {"x", GetProofRequest{Kind: Consistency, OldSize: 17, TreeSize: 16}, ErrInvalidArgument},
		"no kind":             {"x", GetProofRequest{}, ErrInvalidArgument},
	} {
		if _, err := e.svc.GetProof(ctx, c.caller, c.req); !errors.Is(err, c.want) {
			t.Errorf("%s: got %v, want %v", name, err, c.want)
		}
	}
}

// TestProofOfFreshRecordSignsCheckpoint: a record appended after the
// latest checkpoint gets one signed for it on request.
func TestProofOfFreshRecordSignsCheckpoint(t *testing.T) {
	ctx := context.Background()
	e := newEnv(t, Config{})
	e.appendN(2, 2, func(int) Record { return rec("a", "x") }) // the first commit signs
	e.appendN(3, 1, func(int) Record { return rec("a", "y") })
	if _, c, _ := e.svc.LatestCheckpoint(ctx); c.Size != 2 {
		t.Fatalf("latest covers %d; the interval has not passed, so it should still cover 2", c.Size)
	}
	p, err := e.svc.GetProof(ctx, "a", GetProofRequest{Kind: Inclusion, Index: 4, WithLeaf: true})
	if err != nil || p.TreeSize != 5 {
		t.Fatalf("%+v %v", p, err)
	}
	if _, err := e.svc.Verify(ctx, "a", VerifyRequest{Proof: p}); err != nil {
		t.Fatal(err)
	}
}
