package consensus

import (
	"context"
	"errors"
	"fmt"

	"github.com/creto-systems/creto/internal/kv"
)

// Command is a proposal of a registered command type.
type Command struct {
	// Type names the handler (Config.Handlers).
	Type string
	// Payload is the handler's input.
	Payload []byte
	// IdempotencyKey, if set, makes a retry by the same caller within
	// Config.IdempotencyWindow return the first result instead of applying
	// again. Reusing a key for another command fails with
	// ErrIdempotencyConflict. Retry with it after ErrIndeterminate.
	IdempotencyKey string
}

// CommandResult is what the handler returned.
type CommandResult struct {
	Result []byte
	// Index is the raft index the command was applied at.
	Index uint64
	// Duplicate reports a retry answered from the idempotency record.
	Duplicate bool
}

// Propose replicates a command and returns its handler's result once it
// is applied on this node (the leader). Only the leader can propose;
// without a quorum Propose fails at once with ErrNoQuorum. A handler's
// rejection comes back as its error, wrapped.
func (n *Node) Propose(ctx context.Context, caller string, cmd Command) (CommandResult, error) {
	if err := n.authorize(ctx, caller, OpPropose, cmd.Type); err != nil {
		return CommandResult{}, err
	}
	h, err := n.handler(cmd.Type)
	if err != nil {
		return CommandResult{}, err
	}
	if err := checkIdemKey(cmd.IdempotencyKey); err != nil {
		return CommandResult{}, err
	}
	if err := h.Validate(cmd.Payload); err != nil {
		if !errors.Is(err, ErrInvalidArgument) {
			err = fmt.Errorf("%w: %w", ErrInvalidArgument, err)
		}
		return CommandResult{}, fmt.Errorf("consensus: command %s: %w", quote(cmd.Type), err)
	}
	env := envelope{typ: cmd.Type, caller: caller, idemKey: cmd.IdempotencyKey,
		fingerprint: n.fingerprint(cmd.IdempotencyKey, cmd.Payload), payload: cmd.Payload}
	if size := env.encodedLen(); size > n.cfg.MaxCommandBytes {
		return CommandResult{}, invalid(ErrTooLarge, "command of %d bytes (limit %d)", size, n.cfg.MaxCommandBytes)
	}
	if err := n.writable(); err != nil {
		return CommandResult{}, err
	}
	res, err := n.apply(ctx, env.encode())
	if err != nil {
		return CommandResult{}, err
	}
	if res.err != nil {
		return CommandResult{}, res.err
	}
	return CommandResult{Result: res.data, Index: res.index, Duplicate: res.duplicate}, nil
}

// handler finds a caller-proposable handler.
func (n *Node) handler(typ string) (Handler, error) {
	if err := checkTypeName(typ); err != nil {
		return nil, err
	}
	h, ok := n.fsm.handlers[typ]
	if !ok || isReserved(typ) {
		return nil, invalid(ErrUnknownCommand, "no handler for command type %s", quote(typ))
	}
	return h, nil
}

// Get reads a key of a command type's replicated state as this node has
// applied it (a follower may lag the leader by a commit). It fails with
// ErrNotFound for a missing key.
func (n *Node) Get(ctx context.Context, caller, typ string, key []byte) ([]byte, error) {
	if err := n.authorize(ctx, caller, OpRead, typ); err != nil {
		return nil, err
	}
	if _, err := n.handler(typ); err != nil {
		return nil, err
	}
	if err := n.usable(); err != nil {
		return nil, err
	}
	full := handlerPrefix(typ) + string(key)
	if len(key) == 0 || len(full) > kv.MaxKeySize {
		return nil, invalid(nil, "state key of %d bytes", len(key))
	}
	v, err := n.store.Get(ctx, []byte(full))
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("%w: command type %s has no such key", ErrNotFound, quote(typ))
	}
	if err != nil {
		return nil, fmt.Errorf("consensus: get: %w", err)
	}
	return v, nil
}
