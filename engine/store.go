package engine

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	cedar "github.com/cedar-policy/cedar-go"
)

// Op is the kind of one policy change.
type Op uint8

// The policy changes ApplyPolicies accepts.
const (
	// OpCreate adds a policy; its id must be free.
	OpCreate Op = iota + 1
	// OpUpdate replaces an existing policy's text.
	OpUpdate
	// OpUpsert creates or replaces.
	OpUpsert
	// OpDelete removes a policy.
	OpDelete
)

// Change is one policy change in an atomic ApplyPolicies call.
type Change struct {
	Op Op
	// ID names the policy. For creates and upserts it may be empty when the
	// text carries an @id annotation.
	ID   string
	Text string
	// IfVersion, when non-zero, makes the change conditional on the
	// policy's current Version (its etag): ErrConflict otherwise.
	IfVersion uint64
}

// CreatePolicy adds one policy. id may be empty when the text has @id.
func (e *Engine) CreatePolicy(ctx context.Context, id, text string) (Policy, error) {
	out, err := e.ApplyPolicies(ctx, Change{Op: OpCreate, ID: id, Text: text})
	if err != nil {
		return Policy{}, err
	}
	return out[0], nil
}

// UpdatePolicy replaces a policy's text. A non-zero ifVersion makes the
// update conditional on the policy still being at that version.
func (e *Engine) UpdatePolicy(ctx context.Context, id, text string, ifVersion uint64) (Policy, error) {
	out, err := e.ApplyPolicies(ctx, Change{Op: OpUpdate, ID: id, Text: text, IfVersion: ifVersion})
	if err != nil {
		return Policy{}, err
	}
	return out[0], nil
}

// DeletePolicy removes a policy, conditionally on ifVersion when non-zero.
func (e *Engine) DeletePolicy(ctx context.Context, id string, ifVersion uint64) error {
	_, err := e.ApplyPolicies(ctx, Change{Op: OpDelete, ID: id, IfVersion: ifVersion})
	return err
}

// GetPolicy returns one policy.
func (e *Engine) GetPolicy(id string) (Policy, error) {
	c, ok := e.snap.Load().byID[id]
	if !ok {
		return Policy{}, &PolicyError{Kind: ErrPolicyNotFound, PolicyID: id}
	}
	return c.public(), nil
}

// ListPolicies returns every policy, sorted by id.
func (e *Engine) ListPolicies() []Policy {
	s := e.snap.Load()
	out := make([]Policy, len(s.policies))
	for i, c := range s.policies {
		out[i] = c.public()
	}
	return out
}

// ApplyPolicies applies changes atomically: either every change takes
// effect in one new snapshot, or none does and the error (a *PolicyError,
// or several joined) says why. It returns the resulting policies of the
// non-delete changes, in order.
func (e *Engine) ApplyPolicies(ctx context.Context, changes ...Change) ([]Policy, error) {
	if len(changes) == 0 {
		return nil, nil
	}
	// Parsing and validation are the expensive part and need no lock; the
	// schema is checked again under the lock only if it changed meanwhile.
	sch := e.snap.Load().schema
	parsed := make([]*compiled, len(changes))
	var errs []error
	for i, ch := range changes {
		switch ch.Op {
		case OpCreate, OpUpdate, OpUpsert:
			c, err := parsePolicy(ch.ID, "", ch.Text)
			if err == nil {
				err = sch.check(c)
			}
			if err != nil {
				errs = append(errs, err)
				continue
			}
			parsed[i] = c
		case OpDelete:
			if ch.ID == "" {
				errs = append(errs, &PolicyError{Kind: ErrInvalidPolicy, Message: "delete needs a policy id"})
			}
		default:
			errs = append(errs, &PolicyError{Kind: ErrInvalidPolicy, PolicyID: ch.ID, Message: fmt.Sprintf("unknown change op %d", ch.Op)})
		}
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}

	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old := e.snap.Load()
	next := maps.Clone(old.byID)
	rev := old.revision
	var out []Policy
	for i, ch := range changes {
		id := ch.ID
		if parsed[i] != nil {
			id = parsed[i].ID
		}
		cur, exists := next[id]
		switch {
		case ch.Op == OpCreate && exists:
			errs = append(errs, &PolicyError{Kind: ErrPolicyExists, PolicyID: id})
			continue
		case (ch.Op == OpUpdate || ch.Op == OpDelete) && !exists:
			errs = append(errs, &PolicyError{Kind: ErrPolicyNotFound, PolicyID: id})
			continue
		case ch.IfVersion != 0 && (!exists || cur.Version != ch.IfVersion):
			have := uint64(0)
			if exists {
				have = cur.Version
			}
			errs = append(errs, &PolicyError{Kind: ErrConflict, PolicyID: id,
				Message: fmt.Sprintf("expected version %d, the policy is at %d", ch.IfVersion, have)})
			continue
		}
		if ch.Op == OpDelete {
			delete(next, id)
			continue
		}
		rev++
		c := *parsed[i]
		c.Version = rev
		if old.schema != sch {
			if err := old.schema.check(&c); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		next[id] = &c
		out = append(out, c.public())
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	e.install(newSnapshot(old.epoch+1, rev, next, old.schema, e.cfg.indexed, old))
	return out, nil
}

// ReplacePolicies makes sources the whole policy set, atomically. Policies
// whose text is unchanged keep their version.
func (e *Engine) ReplacePolicies(ctx context.Context, sources []PolicySource) error {
	sch := e.snap.Load().schema
	parsed := make(map[string]*compiled, len(sources))
	var errs []error
	for _, src := range sources {
		c, err := src.compile()
		if err == nil {
			err = sch.check(c)
		}
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if _, dup := parsed[c.ID]; dup {
			errs = append(errs, &PolicyError{Kind: ErrPolicyExists, PolicyID: c.ID, File: src.File, Message: "the id is used twice"})
			continue
		}
		parsed[c.ID] = c
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old := e.snap.Load()
	rev := old.revision
	for _, id := range slices.Sorted(maps.Keys(parsed)) {
		c := parsed[id]
		if prev, ok := old.byID[id]; ok && prev.Text == c.Text {
			parsed[id] = prev
			continue
		}
		if old.schema != sch {
			if err := old.schema.check(c); err != nil {
				errs = append(errs, err)
				continue
			}
		}
		rev++
		c.Version = rev
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	e.install(newSnapshot(old.epoch+1, rev, parsed, old.schema, e.cfg.indexed, old))
	return nil
}

// SetSchema loads a Cedar schema (human-readable, or JSON when the text
// starts with '{'); every later policy change is validated against it. The
// current policies must already conform, or nothing changes. An empty text
// removes the schema.
func (e *Engine) SetSchema(name string, text []byte) error {
	var sch *schema
	if len(text) > 0 {
		var err error
		if sch, err = parseSchema(name, text); err != nil {
			return err
		}
	}
	e.writeMu.Lock()
	defer e.writeMu.Unlock()
	old := e.snap.Load()
	if sch != nil {
		var errs []error
		for _, c := range old.policies {
			if err := sch.check(c); err != nil {
				errs = append(errs, err)
			}
		}
		if len(errs) > 0 {
			return errors.Join(errs...)
		}
	}
	e.install(newSnapshot(old.epoch+1, old.revision, old.byID, sch, e.cfg.indexed, old))
	return nil
}

// CheckEntities validates entity data against the loaded schema; without a
// schema any well-formed entity data passes.
func (e *Engine) CheckEntities(m cedar.EntityMap) error {
	if s := e.snap.Load().schema; s != nil {
		return s.checkEntities(m)
	}
	return nil
}

// install publishes a snapshot; the caller holds writeMu.
func (e *Engine) install(s *snapshot) {
	e.snap.Store(s)
	if e.cache != nil {
		e.cache.purge()
	}
}
