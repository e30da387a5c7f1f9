package consensus

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// Handler applies one replicated command type: the place where replicated
// state (policies, the extension registry, vault use counts, quotas) is
// changed. Register it in Config.Handlers under a stable type name; the
// name is written into every raft entry, so it must never change, and
// every node of the cluster must register the same handlers before a
// command of a new type is proposed (a node that meets an unknown type in
// its log halts rather than diverge; docs/consensus.md, "Adding a command
// type").
type Handler interface {
	// Validate checks a payload on the leader before it is proposed, so a
	// malformed command is refused with no log entry. It sees no state.
	// Errors should wrap ErrInvalidArgument.
	Validate(payload []byte) error
	// Apply applies a committed command. It runs on every node, in log
	// order, and must be deterministic: its result and its writes may
	// depend only on the payload and on what tx shows (state, index, log
	// time, caller) — never on the local clock, randomness, maps'
	// iteration order or the node it runs on. The result goes back to the
	// proposer. An error rejects the command: its writes are discarded and
	// the error is returned to the proposer (on every node alike, so it
	// must be deterministic too).
	Apply(tx *Tx, payload []byte) ([]byte, error)
}

// Tx is a handler's view of the replicated state while it applies one
// command. Keys are private to the command type: the node stores them
// under the type's own prefix, so handlers cannot touch each other's
// state, and snapshots carry all of them. Reads see the writes of earlier
// commands in the same batch and of this command. A Tx is valid only
// during Apply.
type Tx struct {
	batch  *applyBatch
	ns     string
	writes map[string]pending
	index  uint64
	time   time.Time
	caller string
	err    error // a store failure: the state machine halts
}

// pending is a write not yet committed to the store.
type pending struct {
	value   []byte
	deleted bool
}

// Index returns the raft log index of the command.
func (t *Tx) Index() uint64 { return t.index }

// Time returns when the leader appended the command to its log. It is the
// same on every node, so handlers may use it for expiry; it is the
// leader's wall clock, so it may step back across leader changes.
func (t *Tx) Time() time.Time { return t.time }

// Caller returns the caller that proposed the command.
func (t *Tx) Caller() string { return t.caller }

// Get returns a copy of the value under key, or an error matching
// ErrNotFound.
func (t *Tx) Get(key []byte) ([]byte, error) {
	k, err := t.key(key)
	if err != nil {
		return nil, err
	}
	if p, ok := t.writes[k]; ok {
		return p.get()
	}
	v, err := t.batch.get(k)
	if err != nil && !errors.Is(err, ErrNotFound) {
		t.fail(err)
	}
	return v, err
}

// Set writes value under key when the command commits.
func (t *Tx) Set(key, value []byte) error {
	k, err := t.key(key)
	if err != nil {
		return err
	}
	t.writes[k] = pending{value: clone(value)}
	return nil
}

// Delete removes key when the command commits; a missing key is no error.
func (t *Tx) Delete(key []byte) error {
	k, err := t.key(key)
	if err != nil {
		return err
	}
	t.writes[k] = pending{deleted: true}
	return nil
}

// key turns a handler key into a store key.
func (t *Tx) key(key []byte) (string, error) {
	if len(key) == 0 || len(t.ns)+len(key) > kv.MaxKeySize {
		return "", invalid(nil, "state key of %d bytes (1..%d)", len(key), kv.MaxKeySize-len(t.ns))
	}
	return t.ns + string(key), nil
}

func (t *Tx) fail(err error) {
	if t.err == nil {
		t.err = err
	}
}

func (p pending) get() ([]byte, error) {
	if p.deleted {
		return nil, ErrNotFound
	}
	return clone(p.value), nil
}

func clone(b []byte) []byte { return append([]byte(nil), b...) }

// applyBatch gathers the writes of every command in one ApplyBatch call,
// committed to the store in one atomic, fsync'd write together with the
// applied index.
type applyBatch struct {
	store  kv.Store
	writes map[string]pending
}

func newApplyBatch(store kv.Store) *applyBatch {
	return &applyBatch{store: store, writes: map[string]pending{}}
}

// get reads through the batch's pending writes to the store.
func (b *applyBatch) get(key string) ([]byte, error) {
	if p, ok := b.writes[key]; ok {
		return p.get()
	}
	v, err := b.store.Get(context.Background(), []byte(key))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, fmt.Errorf("consensus: state read: %w", err)
	}
	return v, nil
}

func (b *applyBatch) set(key string, value []byte) { b.writes[key] = pending{value: value} }

func (b *applyBatch) delete(key string) { b.writes[key] = pending{deleted: true} }

// merge adopts a command's writes once its handler succeeded.
func (b *applyBatch) merge(writes map[string]pending) {
	for k, p := range writes {
		b.writes[k] = p
	}
}

// commit writes everything atomically.
func (b *applyBatch) commit() error {
	var kb kv.Batch
	for k, p := range b.writes {
		if p.deleted {
			kb.Delete([]byte(k))
		} else {
			kb.Set([]byte(k), p.value)
		}
	}
	return b.store.Apply(context.Background(), &kb)
}

// newTx opens a transaction on behalf of one command.
func (b *applyBatch) newTx(typ, caller string, index uint64, at time.Time) *Tx {
	return &Tx{batch: b, ns: handlerPrefix(typ), writes: map[string]pending{}, index: index, time: at, caller: caller}
}
