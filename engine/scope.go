package engine

import (
	"slices"

	cedar "github.com/cedar-policy/cedar-go"
	xast "github.com/cedar-policy/cedar-go/x/exp/ast"
)

type scopeKind uint8

const (
	scopeAll   scopeKind = iota // principal
	scopeEq                     // principal == E
	scopeIn                     // principal in E
	scopeInSet                  // action in [E, F]
	scopeIs                     // principal is T
	scopeIsIn                   // principal is T in E
)

// scope is one of a policy's three scope constraints as Cedar wrote it.
type scope struct {
	kind scopeKind
	typ  cedar.EntityType
	uids []cedar.EntityUID // one entity, or the set of an in-set
}

func scopeOf(n xast.IsScopeNode) scope {
	switch s := n.(type) {
	case xast.ScopeTypeEq:
		return scope{kind: scopeEq, uids: []cedar.EntityUID{s.Entity}}
	case xast.ScopeTypeIn:
		return scope{kind: scopeIn, uids: []cedar.EntityUID{s.Entity}}
	case xast.ScopeTypeInSet:
		return scope{kind: scopeInSet, uids: s.Entities}
	case xast.ScopeTypeIs:
		return scope{kind: scopeIs, typ: s.Type}
	case xast.ScopeTypeIsIn:
		return scope{kind: scopeIsIn, typ: s.Type, uids: []cedar.EntityUID{s.Entity}}
	default:
		return scope{kind: scopeAll}
	}
}

// iscope is a scope with its entities and type replaced by the integers a
// snapshot's index interned them as, so matching compares integers instead
// of strings.
type iscope struct {
	kind scopeKind
	typ  int32
	uid  int32   // the entity of ==, in and is-in
	set  []int32 // the entities of an in-set
}

// keys returns the interned entities the scope names.
func (s *iscope) keys() []int32 {
	if s.kind == scopeInSet {
		return s.set
	}
	if s.kind == scopeEq || s.kind == scopeIn || s.kind == scopeIsIn {
		return []int32{s.uid}
	}
	return nil
}

// ientity is a request's principal, action or resource in interned form:
// -1 for an entity or type no policy scope mentions (so no scope can name
// it), and the interned ids of its ancestors that some scope mentions.
type ientity struct {
	self, typ int32
	anc       []int32
}

// in reports whether the entity is uid or descends from it (Cedar's `in`).
func (e *ientity) in(uid int32) bool {
	return e.self == uid || slices.Contains(e.anc, uid)
}

// matches reports, with Cedar's semantics, whether e satisfies the scope.
// Scope constraints never raise errors in Cedar, so a boolean is the whole
// answer.
func (s *iscope) matches(e *ientity) bool {
	switch s.kind {
	case scopeAll:
		return true
	case scopeEq:
		return e.self == s.uid
	case scopeIn:
		return e.in(s.uid)
	case scopeInSet:
		for _, u := range s.set {
			if e.in(u) {
				return true
			}
		}
		return false
	case scopeIs:
		return e.typ == s.typ
	case scopeIsIn:
		return e.typ == s.typ && e.in(s.uid)
	}
	return false
}
