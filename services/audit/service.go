package audit

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/internal/wire"
	"github.com/creto-systems/creto/services/crypto"
)

// Store layout. Every key of this service starts with "audit/";
// docs/audit.md describes the values.
const (
	keySchema              = "audit/meta/schema"
	keyKeys                = "audit/meta/keys"
	keySize                = "audit/meta/size"
	keyLatest              = "audit/meta/checkpoint"
	prefixRecords          = "audit/rec/"
	prefixHashes           = "audit/h/"
	prefixCheckpoints      = "audit/cp/"
	prefixIndex            = "audit/ix/"
	prefixPageTimes        = "audit/pt/"
	schemaVersion          = "1"
	pageBits               = 16 // a page is 65,536 consecutive records
	indexWho          byte = 'w'
	indexWhat         byte = 'a'
	indexResource     byte = 'r'
)

// recordKey is "audit/rec/" + index (8 bytes, big-endian), so records
// scan in log order and a page of them shares a 6-byte prefix.
func recordKey(idx int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixRecords), uint64(idx))
}

func checkpointKey(size int64) []byte {
	return binary.BigEndian.AppendUint64([]byte(prefixCheckpoints), uint64(size))
}

// indexPrefix is the key prefix of one field value's index entries:
// "audit/ix/" + field + value length (2 bytes) + value. The length makes
// one value's prefix never a prefix of another's.
func indexPrefix(field byte, value string) []byte {
	k := make([]byte, 0, len(prefixIndex)+3+len(value)+8)
	k = append(k, prefixIndex...)
	k = append(k, field)
	e := wire.Encoder(k)
	e.Str16(value)
	return e
}

// pageKey appends the 6-byte page number of the records idx belongs to.
func pageKey(prefix []byte, page int64) []byte {
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(page)<<pageBits)
	return append(prefix, b[:6]...)
}

// Service is the node's verifiable audit log (seed §9): an append-only
// RFC 6962 Merkle tree of records, durable in the node's store, with
// signed checkpoints, proofs and queries. It is safe for concurrent use.
// Appends are sequenced by one goroutine that commits whatever has
// queued up in one fsync'd batch (group commit); reads never wait for it.
type Service struct {
	cfg   Config
	p     crypto.Provider
	store kv.Store
	now   func() time.Time
	keys  *signingKeys

	// life guards against Close, as in the other services: public
	// methods hold the read lock, Close takes the write lock.
	life   sync.RWMutex
	closed bool

	reqs   chan *appendReq
	cpReqs chan chan error
	stop   chan struct{}
	done   chan struct{}
	// failed is set when a commit fails: the log then refuses appends
	// until the node restarts, since what reached the disk is unknown.
	failed atomic.Pointer[error]

	mu     sync.RWMutex // guards t and latest
	t      tree
	latest signedCheckpoint

	seq sequencer // the sequencer goroutine's own state

	commits, appended, signed atomic.Uint64
}

// Stats counts what the log has done since it was opened, for metrics.
type Stats struct {
	// Commits is the number of fsync'd store batches; Records / Commits
	// is the group-commit factor.
	Commits uint64
	// Records is the number of records appended.
	Records uint64
	// Checkpoints is the number of checkpoints signed.
	Checkpoints uint64
	// Size is the number of records in the log.
	Size int64
}

// Stats returns the log's counters.
func (s *Service) Stats() Stats {
	return Stats{Commits: s.commits.Load(), Records: s.appended.Load(), Checkpoints: s.signed.Load(), Size: s.Size()}
}

// signedCheckpoint is a checkpoint with its signed note.
type signedCheckpoint struct {
	Checkpoint
	note []byte
}

// Open starts the audit log kept in store, the node's shared store, which
// stays the caller's: Close does not close it. On first open it creates
// the log: an origin (Config.Origin or a random one) and the two signing
// keys, sealed with sealer. Later opens unseal them with the same sealer,
// or fail with ErrSealed. The sealer is used only during Open.
func Open(ctx context.Context, store kv.Store, sealer Sealer, cfg Config) (*Service, error) {
	return open(ctx, store, sealer, cfg, time.Now)
}

// open is Open with a clock, which tests set.
func open(ctx context.Context, store kv.Store, sealer Sealer, cfg Config, now func() time.Time) (*Service, error) {
	cfg, err := cfg.resolve()
	if err != nil {
		return nil, err
	}
	s := &Service{
		cfg:    cfg,
		p:      crypto.New(),
		store:  store,
		now:    now,
		reqs:   make(chan *appendReq, 1024),
		cpReqs: make(chan chan error, 64),
		stop:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	s.t.budget = int64(cfg.HashCacheBytes / tlog.HashSize)
	if err := s.start(ctx, sealer); err != nil {
		s.keys.destroy()
		return nil, opError("open", "", err)
	}
	go s.run()
	return s, nil
}

func (s *Service) start(ctx context.Context, sealer Sealer) error {
	if v, err := s.store.Get(ctx, []byte(keySchema)); err == nil && string(v) != schemaVersion {
		return detail(ErrMalformed, "store schema %q, this build reads %q", v, schemaVersion)
	} else if err != nil && !errors.Is(err, kv.ErrNotFound) {
		return err
	}
	rec, err := readKeyRecord(ctx, s.store)
	if err != nil {
		return err
	}
	if rec == nil {
		return s.create(ctx, sealer)
	}
	if s.cfg.Origin != "" && s.cfg.Origin != rec.Origin {
		return detail(ErrInvalidArgument, "the log's origin is %s; config says %s", quote(rec.Origin), quote(s.cfg.Origin))
	}
	if s.keys, err = openKeys(ctx, s.p, sealer, rec); err != nil {
		return err
	}
	return s.load(ctx)
}

// create writes a new, empty log: schema, keys and size in one commit.
func (s *Service) create(ctx context.Context, sealer Sealer) error {
	keys, rec, err := createKeys(ctx, s.p, sealer, s.cfg.Origin)
	if err != nil {
		return err
	}
	s.keys = keys
	raw, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	var b kv.Batch
	b.Set([]byte(keySchema), []byte(schemaVersion))
	b.Set([]byte(keyKeys), raw)
	b.Set([]byte(keySize), binary.BigEndian.AppendUint64(nil, 0))
	if err := s.store.Apply(ctx, &b); err != nil {
		return err
	}
	s.seq.init(&s.t, signedCheckpoint{}, 0)
	return nil
}

// load reads the tree and the latest checkpoint, and checks that they
// agree: the checkpoint verifies under the log's keys and its root is
// the root the stored hashes give. A full check of every record is
// VerifyStore's job (`creto audit verify`).
func (s *Service) load(ctx context.Context) error {
	raw, err := s.store.Get(ctx, []byte(keySize))
	if err != nil {
		return fmt.Errorf("tree size: %w", err)
	}
	if len(raw) != 8 || int64(binary.BigEndian.Uint64(raw)) < 0 {
		return detail(ErrMalformed, "tree size record")
	}
	size := int64(binary.BigEndian.Uint64(raw))
	if err := s.t.load(ctx, s.store, size); err != nil {
		return err
	}
	var latest signedCheckpoint
	note, err := s.store.Get(ctx, []byte(keyLatest))
	switch {
	case errors.Is(err, kv.ErrNotFound):
	case err != nil:
		return err
	default:
		c, err := s.keys.verifier.Open(note)
		if err != nil {
			return err
		}
		if c.Size > size {
			return detail(ErrVerification, "the latest checkpoint covers %d records, the log has %d", c.Size, size)
		}
		root, err := tlog.TreeHash(c.Size, s.hashReader(ctx))
		if err != nil {
			return err
		}
		if root != c.Root {
			return badCheckpoint(c.Size, "the stored tree does not hash to the checkpoint's root")
		}
		latest = signedCheckpoint{c, note}
	}
	s.latest = latest
	loggedAt := int64(0)
	if size > 0 {
		leaf, err := s.store.Get(ctx, recordKey(size-1))
		if err != nil {
			return fmt.Errorf("record %d: %w", size-1, err)
		}
		r, err := DecodeLeaf(leaf)
		if err != nil {
			return err
		}
		loggedAt = r.LoggedAt.UnixNano()
	}
	return s.seq.loadPage(ctx, s.store, &s.t, latest, loggedAt)
}

// Close stops the sequencer once the appends in flight are committed,
// signs a final checkpoint so every record is covered, and wipes the
// signing keys from memory. Calls after Close fail with ErrClosed; the
// store stays open for its owner.
func (s *Service) Close() error {
	s.life.Lock()
	defer s.life.Unlock()
	if s.closed {
		return opError("close", "", ErrClosed)
	}
	s.closed = true
	close(s.stop)
	<-s.done
	s.keys.destroy()
	if p := s.failed.Load(); p != nil {
		return opError("close", "", ErrUnavailable, *p)
	}
	return nil
}

// enter admits a public method unless the service is closed; the caller
// must defer s.life.RUnlock() when it returns nil.
func (s *Service) enter() error {
	s.life.RLock()
	if s.closed {
		s.life.RUnlock()
		return ErrClosed
	}
	return nil
}

// Verifier returns the verifier of this log's checkpoints, whose keys
// `creto audit verifier-key` prints.
func (s *Service) Verifier() *Verifier { return s.keys.verifier }

// Origin returns the log's origin.
func (s *Service) Origin() string { return s.keys.verifier.origin }

// Size returns the number of committed records.
func (s *Service) Size() int64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.t.size
}

// LatestCheckpoint returns the latest signed checkpoint and its parsed
// form. A log that has never signed one (an empty log) returns
// ErrNotFound.
func (s *Service) LatestCheckpoint(ctx context.Context) ([]byte, Checkpoint, error) {
	const op = "latest checkpoint"
	if err := s.enter(); err != nil {
		return nil, Checkpoint{}, opError(op, "", err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return nil, Checkpoint{}, opError(op, "", err)
	}
	s.mu.RLock()
	l := s.latest
	s.mu.RUnlock()
	if l.note == nil {
		return nil, Checkpoint{}, opError(op, "", detail(ErrNotFound, "the log has no checkpoint yet"))
	}
	return l.note, l.Checkpoint, nil
}

// Log appends one record on behalf of caller, the authenticated identity
// (seed Log). The caller may log records about itself; about another
// identity only with the Authorizer's grant. It returns once the record
// and its tree hashes are on stable storage.
func (s *Service) Log(ctx context.Context, caller string, req LogRequest) (LogResponse, error) {
	resp, err := s.logBatch(ctx, "log", caller, []Record{req.Record})
	if err != nil {
		return LogResponse{}, err
	}
	return LogResponse{Index: resp.FirstIndex, LoggedAt: resp.LoggedAt}, nil
}

// LogBatch appends records atomically on behalf of caller (seed
// LogBatch): all of them, at consecutive indexes in request order, or —
// when any is invalid, too large or not the caller's to log — none.
func (s *Service) LogBatch(ctx context.Context, caller string, req LogBatchRequest) (LogBatchResponse, error) {
	return s.logBatch(ctx, "log batch", caller, req.Records)
}

func (s *Service) logBatch(ctx context.Context, op, caller string, recs []Record) (LogBatchResponse, error) {
	if err := s.enter(); err != nil {
		return LogBatchResponse{}, opError(op, caller, err)
	}
	defer s.life.RUnlock()
	checked := map[string]bool{}
	for i := range recs {
		who := recs[i].Who
		if checked[who] {
			continue
		}
		if err := s.authorize(ctx, caller, who, AccessWrite); err != nil {
			return LogBatchResponse{}, opError(op, caller, err)
		}
		checked[who] = true
	}
	first, loggedAt, err := s.appendRecords(ctx, recs)
	if err != nil {
		return LogBatchResponse{}, opError(op, caller, err)
	}
	return LogBatchResponse{FirstIndex: first, Count: len(recs), LoggedAt: loggedAt}, nil
}

// Append appends records atomically, as LogBatch does, for components of
// the node itself (the asynchronous Logger, the engine and service
// adapters): it checks no caller. It is not an API for agents; the gRPC
// adapter maps Log and LogBatch, never Append. It returns the index of
// the first record.
func (s *Service) Append(ctx context.Context, recs []Record) (uint64, error) {
	if err := s.enter(); err != nil {
		return 0, opError("append", "", err)
	}
	defer s.life.RUnlock()
	first, _, err := s.appendRecords(ctx, recs)
	if err != nil {
		return 0, opError("append", "", err)
	}
	return first, nil
}

// appendRecords validates and encodes the records on the caller's
// goroutine, then hands them to the sequencer and waits for the commit.
// If ctx ends during the commit, the records may or may not be in the
// log.
func (s *Service) appendRecords(ctx context.Context, recs []Record) (uint64, time.Time, error) {
	if err := ctx.Err(); err != nil {
		return 0, time.Time{}, err
	}
	switch {
	case len(recs) == 0:
		return 0, time.Time{}, detail(ErrInvalidArgument, "no records")
	case len(recs) > s.cfg.MaxBatch:
		return 0, time.Time{}, detail(ErrTooLarge, "%d records, limit %d per batch", len(recs), s.cfg.MaxBatch)
	}
	if p := s.failed.Load(); p != nil {
		return 0, time.Time{}, fmt.Errorf("%w: %w", ErrUnavailable, *p)
	}
	pend, err := s.prepare(ctx, recs)
	if err != nil {
		return 0, time.Time{}, err
	}
	req := &appendReq{recs: pend, done: make(chan appendResult, 1)}
	select {
	case s.reqs <- req:
	case <-ctx.Done():
		return 0, time.Time{}, ctx.Err()
	}
	select {
	case res := <-req.done:
		if res.err != nil {
			return 0, time.Time{}, res.err
		}
		return uint64(res.first), time.Unix(0, res.loggedAt).UTC(), nil
	case <-ctx.Done():
		return 0, time.Time{}, ctx.Err()
	}
}

// pending is one record ready for the sequencer: everything but the leaf
// header encoded, and the fields the indexes need.
type pending struct {
	tail                []byte // body || signature, what follows the leaf header
	ts                  int64
	who, what, resource string
}

// prepare validates every record before any is appended, so a bad one
// rejects the batch, and encodes them off the sequencer's goroutine.
func (s *Service) prepare(ctx context.Context, recs []Record) ([]pending, error) {
	now := s.now()
	out := make([]pending, len(recs))
	for i := range recs {
		p, err := s.prepareOne(ctx, recs[i], now)
		if err != nil {
			if len(recs) > 1 {
				return nil, fmt.Errorf("record %d: %w", i, err)
			}
			return nil, err
		}
		out[i] = p
	}
	return out, nil
}

func (s *Service) prepareOne(ctx context.Context, r Record, now time.Time) (pending, error) {
	if r.Timestamp.IsZero() {
		r.Timestamp = now
	} else if r.Timestamp.After(now.Add(s.cfg.MaxClockSkew)) {
		return pending{}, detail(ErrInvalidArgument, "timestamp is %v ahead of the log's clock", r.Timestamp.Sub(now).Round(time.Millisecond))
	}
	body, err := r.validate()
	if err != nil {
		return pending{}, err
	}
	if n := leafHeaderSize + len(body) + 2 + len(r.Signature); n > s.cfg.MaxRecordBytes {
		return pending{}, detail(ErrTooLarge, "record encodes to %d bytes, limit %d", n, s.cfg.MaxRecordBytes)
	}
	if len(r.Signature) > 0 && s.cfg.Signatures != nil {
		msg := append([]byte(signingDomain), body...)
		if err := s.cfg.Signatures.Verify(ctx, r.Who, msg, r.Signature); err != nil {
			return pending{}, fmt.Errorf("%w: the signature of %s does not verify: %w", ErrInvalidArgument, quote(r.Who), err)
		}
	}
	return pending{
		tail: appendTail(body, r.Signature),
		ts:   r.Timestamp.UnixNano(),
		who:  r.Who, what: r.What, resource: r.Resource,
	}, nil
}
