package engine

import (
	cedar "github.com/cedar-policy/cedar-go"
)

// scopeIndex pre-selects the policies whose scope can match a request. For
// each of principal, action and resource it buckets policies by the entity
// (==, in, is-in, in-set) or type (is) their scope names, or as a wildcard.
// A request looks up its entity, the entity's ancestors and its type, so a
// policy is reached exactly when its scope can match: the index only ever
// drops policies that provably cannot apply.
type scopeIndex struct {
	principal, action, resource dimension
}

// dimension indexes one of the three scope constraints.
type dimension struct {
	byUID  map[cedar.EntityUID][]int32
	byType map[cedar.EntityType][]int32
	any    []int32
}

func newDimension() dimension {
	return dimension{byUID: map[cedar.EntityUID][]int32{}, byType: map[cedar.EntityType][]int32{}}
}

func (d *dimension) add(i int32, s *scope) {
	switch s.kind {
	case scopeAll:
		d.any = append(d.any, i)
	case scopeEq, scopeIn, scopeIsIn:
		d.byUID[s.uid] = append(d.byUID[s.uid], i)
	case scopeIs:
		d.byType[s.typ] = append(d.byType[s.typ], i)
	case scopeInSet:
		for j, u := range s.uids {
			if !containsBefore(s.uids, j, u) {
				d.byUID[u] = append(d.byUID[u], i)
			}
		}
	}
}

func containsBefore(uids []cedar.EntityUID, j int, u cedar.EntityUID) bool {
	for _, v := range uids[:j] {
		if v == u {
			return true
		}
	}
	return false
}

// buckets appends to dst every bucket entity e (with ancestors anc) can
// reach and returns them with their total length.
func (d *dimension) buckets(dst [][]int32, e cedar.EntityUID, anc []cedar.EntityUID) ([][]int32, int) {
	total := 0
	add := func(b []int32) {
		if len(b) > 0 {
			dst = append(dst, b)
			total += len(b)
		}
	}
	add(d.any)
	add(d.byType[e.Type])
	add(d.byUID[e])
	for _, a := range anc {
		add(d.byUID[a])
	}
	return dst, total
}

func buildIndex(policies []*compiled) *scopeIndex {
	idx := &scopeIndex{principal: newDimension(), action: newDimension(), resource: newDimension()}
	for i, c := range policies {
		idx.principal.add(int32(i), &c.principal)
		idx.action.add(int32(i), &c.action)
		idx.resource.add(int32(i), &c.resource)
	}
	return idx
}
