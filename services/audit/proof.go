package audit

import (
	"context"
	"errors"
	"fmt"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
)

// GetProof returns an inclusion or consistency proof with the signed
// checkpoint it leads to (seed GetProof). Proofs are hashes and need no
// access to any record; an inclusion proof asked WithLeaf also returns
// the record's leaf, and then needs read access to it (its Who is the
// caller, or the Authorizer grants it). With TreeSize 0 an inclusion
// proof leads to the latest checkpoint, which is first brought up to
// date if it does not cover the record yet.
func (s *Service) GetProof(ctx context.Context, caller string, req GetProofRequest) (MerkleProof, error) {
	const op = "get proof"
	if err := s.enter(); err != nil {
		return MerkleProof{}, opError(op, caller, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return MerkleProof{}, opError(op, caller, err)
	}
	if err := checkString("caller", caller, MaxIDLen, true, true); err != nil {
		return MerkleProof{}, opError(op, caller, err)
	}
	var (
		p   MerkleProof
		err error
	)
	switch req.Kind {
	case Inclusion:
		p, err = s.inclusionProof(ctx, caller, req)
	case Consistency:
		p, err = s.consistencyProof(ctx, req)
	default:
		err = detail(ErrInvalidArgument, "proof kind %d", req.Kind)
	}
	if err != nil {
		return MerkleProof{}, opError(op, caller, err)
	}
	return p, nil
}

func (s *Service) inclusionProof(ctx context.Context, caller string, req GetProofRequest) (MerkleProof, error) {
	idx := int64(req.Index)
	if req.Index >= 1<<63 || idx >= s.Size() {
		return MerkleProof{}, detail(ErrNotFound, "record %d (the log has %d)", req.Index, s.Size())
	}
	var leaf []byte
	if req.WithLeaf {
		var err error
		if leaf, err = s.store.Get(ctx, recordKey(idx)); err != nil {
			return MerkleProof{}, fmt.Errorf("record %d: %w", idx, err)
		}
		who, err := leafWho(leaf)
		if err != nil {
			return MerkleProof{}, fmt.Errorf("record %d: %w: %w", idx, ErrMalformed, err)
		}
		if err := s.authorize(ctx, caller, who, AccessRead); err != nil {
			return MerkleProof{}, err
		}
	}
	cp, err := s.checkpointFor(ctx, req.TreeSize, idx+1)
	if err != nil {
		return MerkleProof{}, err
	}
	if idx >= cp.Size {
		return MerkleProof{}, detail(ErrInvalidArgument, "record %d is not in the tree of size %d", idx, cp.Size)
	}
	proof, err := tlog.ProveRecord(cp.Size, idx, s.hashReader(ctx))
	if err != nil {
		return MerkleProof{}, err
	}
	return MerkleProof{Kind: Inclusion, Index: req.Index, TreeSize: uint64(cp.Size), Hashes: proof, Leaf: leaf, Checkpoint: cp.note}, nil
}

func (s *Service) consistencyProof(ctx context.Context, req GetProofRequest) (MerkleProof, error) {
	cp, err := s.checkpointFor(ctx, req.TreeSize, 0)
	if err != nil {
		return MerkleProof{}, err
	}
	if req.OldSize < 1 || req.OldSize > uint64(cp.Size) {
		return MerkleProof{}, detail(ErrInvalidArgument, "old size %d outside 1..%d", req.OldSize, cp.Size)
	}
	proof, err := tlog.ProveTree(cp.Size, int64(req.OldSize), s.hashReader(ctx))
	if err != nil {
		return MerkleProof{}, err
	}
	return MerkleProof{Kind: Consistency, OldSize: req.OldSize, TreeSize: uint64(cp.Size), Hashes: proof, Checkpoint: cp.note}, nil
}

// checkpointFor returns the signed checkpoint of size, or with size 0 the
// latest, after asking for a new one if the latest covers fewer than
// cover records.
func (s *Service) checkpointFor(ctx context.Context, size uint64, cover int64) (signedCheckpoint, error) {
	if size == 0 {
		s.mu.RLock()
		l := s.latest
		s.mu.RUnlock()
		if l.note != nil && l.Size >= cover {
			return l, nil
		}
		if err := s.requestCheckpoint(ctx); err != nil {
			return signedCheckpoint{}, err
		}
		s.mu.RLock()
		l = s.latest
		s.mu.RUnlock()
		if l.note == nil {
			return l, detail(ErrNotFound, "the log has no checkpoint yet")
		}
		return l, nil
	}
	if size >= 1<<63 {
		return signedCheckpoint{}, detail(ErrNotFound, "no checkpoint of size %d", size)
	}
	note, err := s.store.Get(ctx, checkpointKey(int64(size)))
	if errors.Is(err, kv.ErrNotFound) {
		return signedCheckpoint{}, detail(ErrNotFound, "no checkpoint of size %d", size)
	}
	if err != nil {
		return signedCheckpoint{}, err
	}
	c, err := s.keys.verifier.Open(note)
	if err != nil {
		return signedCheckpoint{}, err
	}
	if c.Size != int64(size) {
		return signedCheckpoint{}, badCheckpoint(int64(size), "stored under size %d but says %d", size, c.Size)
	}
	return signedCheckpoint{c, note}, nil
}

// Verify checks a proof against a checkpoint signed by this log (seed
// Verify). It is pure computation over what the request carries and the
// log's public keys, so it needs no access to any record; caller is
// checked only to be a valid identity.
func (s *Service) Verify(ctx context.Context, caller string, req VerifyRequest) (VerifyResponse, error) {
	const op = "verify"
	if err := s.enter(); err != nil {
		return VerifyResponse{}, opError(op, caller, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return VerifyResponse{}, opError(op, caller, err)
	}
	if err := checkString("caller", caller, MaxIDLen, true, true); err != nil {
		return VerifyResponse{}, opError(op, caller, err)
	}
	c, err := VerifyProof(s.keys.verifier, req)
	if err != nil {
		return VerifyResponse{}, opError(op, caller, err)
	}
	return VerifyResponse{Checkpoint: c}, nil
}

// VerifyProof checks a proof against a checkpoint of the log v verifies,
// with no service: what a client holding the log's verifier keys runs.
// Failures match ErrVerification and say where (*VerificationError);
// requests that cannot be a proof at all match ErrInvalidArgument.
func VerifyProof(v *Verifier, req VerifyRequest) (Checkpoint, error) {
	if v == nil {
		return Checkpoint{}, detail(ErrInvalidArgument, "no verifier")
	}
	note := req.Checkpoint
	if note == nil {
		note = req.Proof.Checkpoint
	}
	c, err := v.open(note)
	if err != nil {
		return Checkpoint{}, err
	}
	p := req.Proof
	if p.TreeSize != uint64(c.Size) {
		return Checkpoint{}, badCheckpoint(c.Size, "the proof is for a tree of size %d", p.TreeSize)
	}
	switch p.Kind {
	case Inclusion:
		return c, verifyInclusion(c, req)
	case Consistency:
		return c, verifyConsistency(v, c, req)
	}
	return Checkpoint{}, detail(ErrInvalidArgument, "proof kind %d", p.Kind)
}

func verifyInclusion(c Checkpoint, req VerifyRequest) error {
	leaf := req.Leaf
	if leaf == nil && req.Record != nil {
		var err error
		if leaf, err = EncodeLeaf(req.Record); err != nil {
			return err
		}
	}
	return c.VerifyInclusion(req.Proof, leaf)
}

// VerifyInclusion checks an inclusion proof against c, a checkpoint
// already opened with Verifier.Open: what a client checking many proofs
// against one checkpoint runs, paying for the signatures once. leaf is
// the record's leaf encoding; nil means p.Leaf. The leaf must be a
// record that says it is entry p.Index.
func (c Checkpoint) VerifyInclusion(p MerkleProof, leaf []byte) error {
	if leaf == nil {
		leaf = p.Leaf
	}
	if p.Kind != Inclusion {
		return detail(ErrInvalidArgument, "a %v proof is not an inclusion proof", p.Kind)
	}
	if p.TreeSize != uint64(c.Size) {
		return badCheckpoint(c.Size, "the proof is for a tree of size %d", p.TreeSize)
	}
	r, err := DecodeLeaf(leaf)
	if err != nil {
		return err
	}
	if r.Index != p.Index {
		return tampered(int64(p.Index), "the record says it is entry %d", r.Index)
	}
	if p.Index >= uint64(c.Size) {
		return tampered(int64(p.Index), "not in a tree of size %d", c.Size)
	}
	if err := tlog.CheckRecord(p.Hashes, c.Size, c.Root, int64(p.Index), tlog.RecordHash(leaf)); err != nil {
		return &VerificationError{Index: int64(p.Index), Checkpoint: c.Size, Reason: "the inclusion proof does not lead to the checkpoint's root"}
	}
	return nil
}

func verifyConsistency(v *Verifier, c Checkpoint, req VerifyRequest) error {
	old, err := v.open(req.OldCheckpoint)
	if err != nil {
		return err
	}
	p := req.Proof
	if uint64(old.Size) != p.OldSize || old.Size > c.Size {
		return badCheckpoint(old.Size, "the proof is from size %d to %d", p.OldSize, c.Size)
	}
	if err := tlog.CheckTree(p.Hashes, c.Size, c.Root, old.Size, old.Root); err != nil {
		return badCheckpoint(old.Size, "not consistent with the checkpoint of size %d", c.Size)
	}
	return nil
}
