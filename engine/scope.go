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

// scope is one of a policy's three scope constraints in a form that can be
// matched without Cedar's evaluator.
type scope struct {
	kind scopeKind
	typ  cedar.EntityType
	uid  cedar.EntityUID
	uids []cedar.EntityUID
}

func scopeOf(n xast.IsScopeNode) scope {
	switch s := n.(type) {
	case xast.ScopeTypeEq:
		return scope{kind: scopeEq, uid: s.Entity}
	case xast.ScopeTypeIn:
		return scope{kind: scopeIn, uid: s.Entity}
	case xast.ScopeTypeInSet:
		return scope{kind: scopeInSet, uids: s.Entities}
	case xast.ScopeTypeIs:
		return scope{kind: scopeIs, typ: s.Type}
	case xast.ScopeTypeIsIn:
		return scope{kind: scopeIsIn, typ: s.Type, uid: s.Entity}
	default:
		return scope{kind: scopeAll}
	}
}

// matches reports, with Cedar's semantics, whether entity e, whose ancestors
// are anc, satisfies the scope. Scope constraints never raise errors in
// Cedar, so a boolean is the whole answer.
func (s *scope) matches(e cedar.EntityUID, anc []cedar.EntityUID) bool {
	switch s.kind {
	case scopeAll:
		return true
	case scopeEq:
		return e == s.uid
	case scopeIn:
		return e == s.uid || slices.Contains(anc, s.uid)
	case scopeInSet:
		for _, u := range s.uids {
			if e == u || slices.Contains(anc, u) {
				return true
			}
		}
		return false
	case scopeIs:
		return e.Type == s.typ
	case scopeIsIn:
		return e.Type == s.typ && (e == s.uid || slices.Contains(anc, s.uid))
	}
	return false
}
