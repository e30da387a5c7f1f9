package engine

import (
	"fmt"
	"iter"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	cedar "github.com/cedar-policy/cedar-go"
)

// snapshot is one immutable generation of the policy store. Checks read the
// current snapshot through an atomic pointer and never lock; writers build a
// new snapshot beside it and swap it in.
type snapshot struct {
	epoch    uint64               // changes with every write; the cache keys on it
	revision uint64               // store-wide write counter, source of policy versions
	policies []*compiled          // sorted by id
	byID     map[string]*compiled //
	index    *scopeIndex          // nil when the index is disabled
	schema   *schema              // nil when no schema is loaded

	// resolutions caches how request entities map onto the index (their
	// interned id, type and ancestors), per entity revision: resolving
	// takes several map lookups and, for providers without an ancestor
	// list, a graph walk.
	resolutions     sync.Map // cedar.EntityUID → *resolution
	resolutionCount atomic.Int64
}

type resolution struct {
	rev uint64
	e   ientity
}

// maxResolutions bounds the resolution cache of one snapshot; past it,
// entities are resolved on every check.
const maxResolutions = 1 << 17

func (s *snapshot) resolve(view EntityView, uid cedar.EntityUID) ientity {
	rev := view.Revision()
	if v, ok := s.resolutions.Load(uid); ok {
		if r := v.(*resolution); r.rev == rev {
			return r.e
		}
	}
	e := s.index.resolve(uid, ancestorsIn(view, uid), nil)
	if s.resolutionCount.Load() < maxResolutions {
		if _, replaced := s.resolutions.Swap(uid, &resolution{rev: rev, e: e}); !replaced {
			s.resolutionCount.Add(1)
		}
	}
	return e
}

// newSnapshot builds a snapshot of byID. base, when not nil, is the
// snapshot this one replaces: its order is reused so that a small change to
// a large set costs a merge, not a sort.
func newSnapshot(epoch, revision uint64, byID map[string]*compiled, sch *schema, indexed bool, base *snapshot) *snapshot {
	s := &snapshot{epoch: epoch, revision: revision, byID: byID, schema: sch}
	s.policies = sortedPolicies(byID, base)
	if indexed {
		var baseIndex *scopeIndex
		if base != nil {
			baseIndex = base.index
		}
		s.index = buildIndex(s.policies, baseIndex)
	}
	return s
}

func sortedPolicies(byID map[string]*compiled, base *snapshot) []*compiled {
	byIDOrder := func(a, b *compiled) int { return strings.Compare(a.ID, b.ID) }
	if base == nil {
		out := make([]*compiled, 0, len(byID))
		for _, c := range byID {
			out = append(out, c)
		}
		slices.SortFunc(out, byIDOrder)
		return out
	}
	kept := make([]*compiled, 0, len(byID))
	for _, c := range base.policies {
		if now, ok := byID[c.ID]; ok {
			kept = append(kept, now)
		}
	}
	var added []*compiled
	if len(kept) < len(byID) {
		for id, c := range byID {
			if _, ok := base.byID[id]; !ok {
				added = append(added, c)
			}
		}
		slices.SortFunc(added, byIDOrder)
	}
	if len(added) == 0 {
		return kept
	}
	out := make([]*compiled, 0, len(byID))
	i, j := 0, 0
	for i < len(kept) && j < len(added) {
		if kept[i].ID < added[j].ID {
			out = append(out, kept[i])
			i++
		} else {
			out = append(out, added[j])
			j++
		}
	}
	out = append(out, kept[i:]...)
	return append(out, added[j:]...)
}

// policyIter lets cedar.Authorize range over a subset of policies, either
// whole or (when the index has already matched their scopes) only their
// conditions.
type policyIter struct {
	list       []*compiled
	conditions bool
}

func (l *policyIter) All() iter.Seq2[cedar.PolicyID, *cedar.Policy] {
	return func(yield func(cedar.PolicyID, *cedar.Policy) bool) {
		for _, c := range l.list {
			p := c.policy
			if l.conditions {
				p = c.conditions
			}
			if !yield(cedar.PolicyID(c.ID), p) {
				return
			}
		}
	}
}

// match is the outcome of Cedar's semantics over the policies that apply:
// the satisfied permits and forbids, each sorted by id, and the errors.
type match struct {
	permits, forbids []*compiled
	errors           []EvalError
}

// evaluate finds the satisfied policies for req. With the index, policies
// without conditions are decided from their scope alone, and only policies
// with conditions go through cedar.Authorize (so the context is decoded
// only then); without it, every policy does.
func (s *snapshot) evaluate(view EntityView, req *Request, dec *decoded) (match, error) {
	uids := req.uids()
	if s.index == nil {
		return s.authorize(&policyIter{list: s.policies}, view, req, dec, &uids, match{})
	}
	var ie [dims]ientity
	for d := range dims {
		ie[d] = s.resolve(view, uids[d])
	}
	var hitBuf [32]int32
	hits := s.index.candidates(&ie, hitBuf[:0])
	// An in-set scope is filed under several entities, so a policy can be
	// found twice; sorting also puts the hits in policy-id order.
	slices.Sort(hits)
	hits = slices.Compact(hits)

	var m match
	var condBuf [8]*compiled
	conditional := condBuf[:0]
	for _, i := range hits {
		c := s.policies[i]
		switch {
		case !c.scopeOnly:
			conditional = append(conditional, c)
		case c.permit:
			m.permits = append(m.permits, c)
		default:
			m.forbids = append(m.forbids, c)
		}
	}
	if len(conditional) == 0 {
		return m, nil
	}
	return s.authorize(&policyIter{list: conditional, conditions: true}, view, req, dec, &uids, m)
}

// authorize runs Cedar over policies and merges what it finds into m.
// Cedar reports only the forbids when any forbid is satisfied, which is all
// a decision needs: a satisfied forbid denies whatever the permits say.
func (s *snapshot) authorize(policies *policyIter, view EntityView, req *Request, dec *decoded, uids *[dims]cedar.EntityUID, m match) (match, error) {
	creq, view, err := req.forCedar(uids, view, dec)
	if err != nil {
		return match{}, err
	}
	_, diag := cedar.Authorize(policies, view, creq)
	for _, r := range diag.Reasons {
		c := s.byID[string(r.PolicyID)]
		if c.permit {
			m.permits = append(m.permits, c)
		} else {
			m.forbids = append(m.forbids, c)
		}
	}
	for _, e := range diag.Errors {
		m.errors = append(m.errors, EvalError{PolicyID: string(e.PolicyID), Message: e.Message})
	}
	byID := func(a, b *compiled) int { return strings.Compare(a.ID, b.ID) }
	slices.SortFunc(m.permits, byID)
	slices.SortFunc(m.forbids, byID)
	slices.SortFunc(m.errors, func(a, b EvalError) int { return strings.Compare(a.PolicyID, b.PolicyID) })
	return m, nil
}

// DefaultDenyReason is the reason of a Deny when no permit matched.
const DefaultDenyReason = "no policy permits this request"

// decision maps Cedar's outcome onto the engine's decisions: a satisfied
// forbid denies with its @reason; otherwise a satisfied permit allows,
// unless a satisfied permit asks for oversight.
func (m *match) decision() Decision {
	d := Decision{Errors: m.errors}
	switch {
	case len(m.forbids) > 0:
		first := m.forbids[0]
		d.Kind, d.PolicyID, d.Reason = Deny, first.ID, first.reason
		if d.Reason == "" {
			d.Reason = fmt.Sprintf("forbidden by policy %q", first.ID)
		}
		d.MatchedPolicies = ids(m.forbids)
	case len(m.permits) > 0:
		d.Kind = Allow
		d.MatchedPolicies = ids(m.permits)
		// Any satisfied permit that demands oversight makes the request
		// wait for approval, even when an unannotated permit also matches:
		// otherwise a broad permit would silently bypass oversight.
		for _, c := range m.permits {
			if c.oversight != nil {
				d.Kind, d.PolicyID, d.Oversight = RequiresOversight, c.ID, *c.oversight
				break
			}
		}
	default:
		d.Kind, d.Reason = Deny, DefaultDenyReason
	}
	return d
}

func ids(cs []*compiled) []string {
	out := make([]string, len(cs))
	for i, c := range cs {
		out[i] = c.ID
	}
	return out
}
