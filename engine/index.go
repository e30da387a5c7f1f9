package engine

import (
	"maps"

	cedar "github.com/cedar-policy/cedar-go"
)

// Dimensions of a policy scope.
const (
	dimPrincipal = iota
	dimAction
	dimResource
	dims
)

// scopeIndex pre-selects the policies whose scope can match a request.
//
// Every policy is filed once, under its most selective scope constraint
// (its "home"): the entity it names with ==, in, is-in or in-set, or the
// type it names with is, in whichever of principal, action and resource
// that bucket is smallest. A request visits, in each dimension, the bucket
// of its entity, of each of the entity's ancestors and of its type: exactly
// the buckets a matching policy can be filed under. So the index only ever
// leaves out policies that provably cannot apply, and the candidates are
// then matched exactly on all three constraints.
type scopeIndex struct {
	// uids and types intern the entities and types policy scopes name. A
	// new index extends its predecessor's tables (cloned, never shared
	// mutably) so unchanged policies keep their interned scopes.
	uids   map[cedar.EntityUID]int32
	types  map[cedar.EntityType]int32
	scopes [][dims]iscope      // per policy, in snapshot order
	byUID  [dims][][]int32     // per dimension, indexed by interned entity
	byType [dims][][]int32     // per dimension, indexed by interned type
	any    []int32             // policies with no constraint to file under
	pos    map[*compiled]int32 // where each policy's scopes are, for reuse
}

// typeWeight makes a type bucket look this many times larger than an entity
// bucket of the same size when choosing a home: every entity of the type
// reaches it, while only an entity and its descendants reach an entity's.
const typeWeight = 8

// buildIndex indexes policies. base, when not nil, is the index being
// replaced: its interned scopes are reused for the policies the two share,
// so a small change to a large set does not re-intern everything.
func buildIndex(policies []*compiled, base *scopeIndex) *scopeIndex {
	x := &scopeIndex{
		scopes: make([][dims]iscope, len(policies)),
		pos:    make(map[*compiled]int32, len(policies)),
	}
	// Interned ids of removed policies linger in an extended table; start
	// afresh once they could make up half of it.
	if base != nil && len(base.uids) <= 2*len(policies)+1024 {
		x.uids, x.types = maps.Clone(base.uids), maps.Clone(base.types)
	} else {
		base = nil
		x.uids, x.types = make(map[cedar.EntityUID]int32, len(policies)), map[cedar.EntityType]int32{}
	}
	for i, c := range policies {
		x.pos[c] = int32(i)
		if base != nil {
			if j, ok := base.pos[c]; ok {
				x.scopes[i] = base.scopes[j]
				continue
			}
		}
		for d, s := range [dims]*scope{&c.principal, &c.action, &c.resource} {
			x.scopes[i][d] = x.intern(s)
		}
	}
	var uidCount, typeCount [dims][]int
	for d := range dims {
		uidCount[d] = make([]int, len(x.uids))
		typeCount[d] = make([]int, len(x.types))
		x.byUID[d] = make([][]int32, len(x.uids))
		x.byType[d] = make([][]int32, len(x.types))
	}
	for i := range x.scopes {
		for d := range dims {
			s := &x.scopes[i][d]
			for _, u := range s.keys() {
				uidCount[d][u]++
			}
			if s.kind == scopeIs {
				typeCount[d][s.typ]++
			}
		}
	}
	for i := range x.scopes {
		home, best := -1, 0
		for d := range dims {
			s := &x.scopes[i][d]
			cost := 0
			switch s.kind {
			case scopeAll:
				continue
			case scopeIs:
				cost = typeWeight * typeCount[d][s.typ]
			default:
				for _, u := range s.keys() {
					cost += uidCount[d][u]
				}
			}
			if home < 0 || cost < best {
				home, best = d, cost
			}
		}
		if home < 0 {
			x.any = append(x.any, int32(i))
			continue
		}
		s := &x.scopes[i][home]
		if s.kind == scopeIs {
			x.byType[home][s.typ] = append(x.byType[home][s.typ], int32(i))
			continue
		}
		keys := s.keys()
		for j, u := range keys {
			if !containsBefore(keys, j, u) {
				x.byUID[home][u] = append(x.byUID[home][u], int32(i))
			}
		}
	}
	return x
}

func (x *scopeIndex) intern(s *scope) iscope {
	is := iscope{kind: s.kind, typ: -1, uid: -1}
	if s.kind == scopeIs || s.kind == scopeIsIn {
		is.typ = internKey(x.types, s.typ)
	}
	if s.kind == scopeInSet {
		is.set = make([]int32, len(s.uids))
		for i, u := range s.uids {
			is.set[i] = internKey(x.uids, u)
		}
	} else if len(s.uids) == 1 {
		is.uid = internKey(x.uids, s.uids[0])
	}
	return is
}

func internKey[K comparable](m map[K]int32, k K) int32 {
	id, ok := m[k]
	if !ok {
		id = int32(len(m))
		m[k] = id
	}
	return id
}

func containsBefore(uids []int32, j int, u int32) bool {
	for _, v := range uids[:j] {
		if v == u {
			return true
		}
	}
	return false
}

// resolve interns a request entity; buf provides room for its ancestors.
func (x *scopeIndex) resolve(uid cedar.EntityUID, anc []cedar.EntityUID, buf []int32) ientity {
	e := ientity{self: -1, typ: -1, anc: buf}
	if id, ok := x.uids[uid]; ok {
		e.self = id
	}
	if id, ok := x.types[uid.Type]; ok {
		e.typ = id
	}
	for _, a := range anc {
		if id, ok := x.uids[a]; ok {
			e.anc = append(e.anc, id)
		}
	}
	return e
}

// candidates appends to hits every policy whose scope matches the request
// exactly, in policy order, without duplicates.
func (x *scopeIndex) candidates(req *[dims]ientity, hits []int32) []int32 {
	visit := func(bucket []int32) {
		for _, i := range bucket {
			s := &x.scopes[i]
			if s[dimPrincipal].matches(&req[dimPrincipal]) &&
				s[dimAction].matches(&req[dimAction]) &&
				s[dimResource].matches(&req[dimResource]) {
				hits = append(hits, i)
			}
		}
	}
	visit(x.any)
	for d := range dims {
		e := &req[d]
		if e.typ >= 0 {
			visit(x.byType[d][e.typ])
		}
		if e.self >= 0 {
			visit(x.byUID[d][e.self])
		}
		for _, a := range e.anc {
			visit(x.byUID[d][a])
		}
	}
	return hits
}
