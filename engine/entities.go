package engine

import (
	"fmt"
	"sync/atomic"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/entity"
)

// The entity interfaces live in package entity, so services can implement
// them without importing the engine; these names keep the engine's API
// whole.
type (
	// EntityProvider supplies the entities policies see (entity.Provider).
	EntityProvider = entity.Provider
	// EntityView is a consistent set of entities (entity.View).
	EntityView = entity.View
	// AncestorLister is an optional EntityView method (entity.AncestorLister).
	AncestorLister = entity.AncestorLister
)

// Entities is the built-in in-memory EntityProvider. Replace swaps its whole
// content atomically; checks in flight keep the view they started with.
type Entities struct {
	cur atomic.Pointer[entitySet]
	rev atomic.Uint64
}

var _ EntityProvider = (*Entities)(nil)

// NewEntities returns an empty in-memory entity store.
func NewEntities() *Entities {
	e := &Entities{}
	e.cur.Store(newEntitySet(nil, 0))
	return e
}

// Replace installs m as the new content.
func (e *Entities) Replace(m cedar.EntityMap) {
	e.cur.Store(newEntitySet(m, e.rev.Add(1)))
}

// ReplaceJSON parses Cedar entity JSON (an array of {uid, attrs, parents,
// tags}) and installs it. On error the content is unchanged.
func (e *Entities) ReplaceJSON(b []byte) error {
	m, err := ParseEntities(b)
	if err != nil {
		return err
	}
	e.Replace(m)
	return nil
}

// ParseEntities decodes Cedar entity JSON.
func ParseEntities(b []byte) (cedar.EntityMap, error) {
	var m cedar.EntityMap
	if err := m.UnmarshalJSON(b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidEntities, err)
	}
	return m, nil
}

// View returns the current content.
func (e *Entities) View() EntityView { return e.cur.Load() }

// entitySet is one immutable generation of an Entities store, with the
// ancestor closure of every entity precomputed so the scope index and
// native scope matching need no graph walk per check.
type entitySet struct {
	m   cedar.EntityMap
	anc map[cedar.EntityUID][]cedar.EntityUID
	rev uint64
}

func newEntitySet(m cedar.EntityMap, rev uint64) *entitySet {
	s := &entitySet{m: m, rev: rev, anc: make(map[cedar.EntityUID][]cedar.EntityUID, len(m))}
	for uid := range m {
		if a := walkAncestors(m, uid); len(a) > 0 {
			s.anc[uid] = a
		}
	}
	return s
}

func (s *entitySet) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	e, ok := s.m[uid]
	return e, ok
}

func (s *entitySet) Revision() uint64 { return s.rev }

func (s *entitySet) Ancestors(uid cedar.EntityUID) []cedar.EntityUID { return s.anc[uid] }

// walkAncestors returns the transitive parents of uid, following Cedar's
// rule: every listed parent is an ancestor, and a parent's own parents are
// followed only when the store holds that parent. The entity itself is never
// included, even on a cycle.
func walkAncestors(g cedar.EntityGetter, uid cedar.EntityUID) []cedar.EntityUID {
	start, ok := g.Get(uid)
	if !ok || start.Parents.Len() == 0 {
		return nil
	}
	var out []cedar.EntityUID
	seen := map[cedar.EntityUID]struct{}{uid: {}}
	todo := []cedar.Entity{start}
	for len(todo) > 0 {
		e := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		for p := range e.Parents.All() {
			if _, dup := seen[p]; dup {
				continue
			}
			seen[p] = struct{}{}
			out = append(out, p)
			if pe, ok := g.Get(p); ok {
				todo = append(todo, pe)
			}
		}
	}
	return out
}

// ancestorsIn returns uid's ancestors from a view, walking the graph only
// when the view cannot list them itself.
func ancestorsIn(v EntityView, uid cedar.EntityUID) []cedar.EntityUID {
	if l, ok := v.(AncestorLister); ok {
		return l.Ancestors(uid)
	}
	return walkAncestors(v, uid)
}

// overlayView shows the request's principal attributes on top of what the
// view holds for the principal.
type overlayView struct {
	EntityView
	principal cedar.Entity
}

func (o *overlayView) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if uid == o.principal.UID {
		return o.principal, true
	}
	return o.EntityView.Get(uid)
}

func withPrincipalAttributes(v EntityView, uid cedar.EntityUID, attrs cedar.Record) *overlayView {
	e, ok := v.Get(uid)
	if !ok {
		e = cedar.Entity{UID: uid}
	}
	merged := make(cedar.RecordMap, e.Attributes.Len()+attrs.Len())
	for k, val := range e.Attributes.All() {
		merged[k] = val
	}
	for k, val := range attrs.All() {
		merged[k] = val
	}
	e.Attributes = cedar.NewRecord(merged)
	return &overlayView{EntityView: v, principal: e}
}
