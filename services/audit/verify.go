package audit

import (
	"bytes"
	"cmp"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/transparency-dev/merkle/compact"
	"github.com/transparency-dev/merkle/rfc6962"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/crypto"
)

// Report is what a full verification of a log found. A log that fails
// verification returns an error matching ErrVerification instead.
type Report struct {
	Origin string
	// Entries is the number of records checked.
	Entries int64
	// Checkpoints is the number of signed checkpoints checked.
	Checkpoints int
	// Latest is the latest checkpoint; zero when the log has none.
	Latest Checkpoint
	// Uncovered counts the records after the latest checkpoint: committed
	// but not yet signed for.
	Uncovered int64
	// TrustedKeys is false when no verifier was given and the log was
	// checked against the keys it carries itself: that proves the log is
	// intact, not that it is the log those keys' owner signed.
	TrustedKeys bool
	// Elapsed is how long the verification took.
	Elapsed time.Duration
}

// logSource is a log to verify, from a node's store or an export.
type logSource interface {
	// verifier returns the keys the log carries.
	verifier() (*Verifier, error)
	// checkpoints returns every signed checkpoint with the size it is
	// filed under, in increasing size order.
	checkpoints() ([]filedCheckpoint, error)
	// records calls fn for each record in order with its position in the
	// source, its leaf bytes, and the check the source can make of the
	// leaf's tree hashes.
	records(fn func(pos int64, leaf []byte, check hashCheck) error) error
	// finish checks what only the end of the records can tell: a count
	// the source declared.
	finish(count int64) error
}

// hashCheck compares a record's recomputed tree hashes with the ones the
// source holds, returning why they differ.
type hashCheck func(hashes []tlog.Hash) error

type filedCheckpoint struct {
	size int64
	note []byte
}

// verifyLog is the one verification both sources go through: every
// checkpoint's signatures, then every record in order — it must decode
// canonically, say its own index, have logged_at never go backwards, and
// match the tree hashes the source holds — and, at each checkpoint's
// size, the root recomputed from the records (with transparency-dev's
// compact range, independently of the tlog code that built the tree) must
// be the signed root. Equal roots at every checkpoint is consistency
// between every pair of them.
func verifyLog(ctx context.Context, src logSource, trusted *Verifier) (Report, error) {
	start := time.Now()
	var rep Report
	own, err := src.verifier()
	if err != nil {
		return rep, err
	}
	v := own
	if trusted != nil {
		if !trusted.Equal(own) {
			return rep, badCheckpoint(-1, "the log carries keys other than the trusted ones (origin %s)", quote(own.origin))
		}
		v, rep.TrustedKeys = trusted, true
	}
	rep.Origin = v.origin
	filed, err := src.checkpoints()
	if err != nil {
		return rep, err
	}
	cps := make([]Checkpoint, 0, len(filed))
	for _, f := range filed {
		c, err := v.open(f.note)
		if err != nil {
			var ve *VerificationError
			if errors.As(err, &ve) && f.size >= 0 {
				ve.Checkpoint = f.size
			}
			return rep, err
		}
		if f.size >= 0 && c.Size != f.size {
			return rep, badCheckpoint(f.size, "filed under size %d but signed for %d", f.size, c.Size)
		}
		cps = append(cps, c)
	}
	slices.SortStableFunc(cps, func(a, b Checkpoint) int { return cmp.Compare(a.Size, b.Size) })
	rep.Checkpoints = len(cps)
	rf := compact.RangeFactory{Hash: rfc6962.DefaultHasher.HashChildren}
	cr := rf.NewEmptyRange(0)
	var (
		count, lastLogged int64
		last              [maxLevels]tlog.Hash
		next              int // the next checkpoint to reach
	)
	err = src.records(func(pos int64, leaf []byte, check hashCheck) error {
		if pos != count {
			return tampered(count, "missing: the next entry present is %d", pos)
		}
		r, err := decodeLeaf(leaf)
		if err != nil {
			return tampered(pos, "does not decode: %v", err)
		}
		if r.Index != uint64(pos) {
			return tampered(pos, "the record says it is entry %d", r.Index)
		}
		if r.LoggedAt.UnixNano() < lastLogged {
			return tampered(pos, "logged_at goes backwards")
		}
		lastLogged = r.LoggedAt.UnixNano()
		h := tlog.RecordHash(leaf)
		hashes, err := tlog.StoredHashesForRecordHash(pos, h, frontierReader(pos, &last))
		if err != nil {
			return err
		}
		if err := check(hashes); err != nil {
			return tampered(pos, "%v", err)
		}
		copy(last[:], hashes)
		if err := cr.Append(h[:], nil); err != nil {
			return err
		}
		count++
		for ; next < len(cps) && cps[next].Size == count; next++ {
			root, err := cr.GetRootHash(nil)
			if err != nil {
				return err
			}
			if !bytes.Equal(root, cps[next].Root[:]) {
				from := int64(0)
				if next > 0 {
					from = cps[next-1].Size
				}
				return badCheckpoint(count, "its root is not the root of the entries: entries %d..%d were altered", from, count-1)
			}
		}
		if count%4096 == 0 {
			return ctx.Err()
		}
		return nil
	})
	if err != nil {
		return rep, err
	}
	if next < len(cps) {
		return rep, tampered(count, "missing: the log ends after %d entries, a checkpoint covers %d", count, cps[next].Size)
	}
	if err := src.finish(count); err != nil {
		return rep, err
	}
	rep.Entries = count
	if len(cps) > 0 {
		rep.Latest = cps[len(cps)-1]
	}
	rep.Uncovered = count - rep.Latest.Size
	rep.Elapsed = time.Since(start)
	return rep, nil
}

// VerifyStore checks the audit log kept in a node's store end to end:
// run it on a stopped node's store. With trusted nil it checks against
// the keys the log carries (Report.TrustedKeys false). A log that does
// not verify returns an error matching ErrVerification, a
// *VerificationError naming the first entry or checkpoint found wrong; a
// store without an audit log returns ErrNotFound.
func VerifyStore(ctx context.Context, store kv.Store, trusted *Verifier) (Report, error) {
	rep, err := verifyLog(ctx, &storeSource{ctx: ctx, store: store}, trusted)
	if err != nil {
		return rep, fmt.Errorf("audit: verify store: %w", err)
	}
	return rep, nil
}

// storeSource reads a log from a node's store. Besides the records it
// checks every stored tree hash, the declared size and that the latest
// checkpoint record is the last of the history.
type storeSource struct {
	ctx   context.Context
	store kv.Store
	size  int64
	cps   []filedCheckpoint
}

func (s *storeSource) verifier() (*Verifier, error) {
	rec, err := readKeyRecord(s.ctx, s.store)
	if err == nil && rec == nil {
		err = detail(ErrNotFound, "the store holds no audit log")
	}
	if err != nil {
		return nil, err
	}
	raw, err := s.store.Get(s.ctx, []byte(keySize))
	if err != nil {
		return nil, fmt.Errorf("tree size: %w", err)
	}
	if len(raw) != 8 || int64(binary.BigEndian.Uint64(raw)) < 0 {
		return nil, tampered(-1, "the log's size record is malformed")
	}
	s.size = int64(binary.BigEndian.Uint64(raw))
	return verifierFrom(crypto.New(), rec)
}

func (s *storeSource) checkpoints() ([]filedCheckpoint, error) {
	err := s.store.Scan(s.ctx, []byte(prefixCheckpoints), func(key, val []byte) error {
		if len(key) != len(prefixCheckpoints)+8 {
			return badCheckpoint(-1, "malformed checkpoint key %q", key)
		}
		s.cps = append(s.cps, filedCheckpoint{int64(binary.BigEndian.Uint64(key[len(prefixCheckpoints):])), bytes.Clone(val)})
		return nil
	})
	if err != nil {
		return nil, err
	}
	latest, err := s.store.Get(s.ctx, []byte(keyLatest))
	switch {
	case errors.Is(err, kv.ErrNotFound):
		if len(s.cps) > 0 {
			return nil, badCheckpoint(s.cps[len(s.cps)-1].size, "the latest-checkpoint record is missing")
		}
	case err != nil:
		return nil, err
	case len(s.cps) == 0 || !bytes.Equal(latest, s.cps[len(s.cps)-1].note):
		return nil, badCheckpoint(-1, "the latest-checkpoint record is not the last checkpoint of the history")
	}
	return s.cps, nil
}

func (s *storeSource) records(fn func(pos int64, leaf []byte, check hashCheck) error) error {
	streams := newHashStreams(s.ctx, s.store)
	defer streams.close()
	return s.store.Scan(s.ctx, []byte(prefixRecords), func(key, val []byte) error {
		if len(key) != len(prefixRecords)+8 {
			return tampered(-1, "malformed record key %q", key)
		}
		pos := int64(binary.BigEndian.Uint64(key[len(prefixRecords):]))
		return fn(pos, val, func(hashes []tlog.Hash) error {
			for l, h := range hashes {
				stored, err := streams.next(l, pos>>l)
				if err != nil {
					return err
				}
				if stored != h {
					if l == 0 {
						return errors.New("the record does not match its stored leaf hash")
					}
					return fmt.Errorf("stored tree hash (level %d) does not match the records", l)
				}
			}
			return nil
		})
	})
}

func (s *storeSource) finish(count int64) error {
	switch {
	case count < s.size:
		return tampered(count, "missing: the log's size is %d", s.size)
	case count > s.size:
		return tampered(s.size, "present past the log's size of %d", s.size)
	}
	return nil
}
