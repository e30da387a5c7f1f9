// Package entity defines how Cedar entities reach the engine: the
// interfaces an entity source implements and the reference type requests
// use. It depends on nothing but cedar-go, so a service that supplies
// entities (NHI, for one) implements them without importing the engine.
package entity

import cedar "github.com/cedar-policy/cedar-go"

// Ref names a Cedar entity: its type, possibly namespaced
// ("Acme::Agent"), and its id.
type Ref struct {
	Type string `json:"type"`
	ID   string `json:"id"`
}

// UID returns the reference as a Cedar entity uid.
func (r Ref) UID() cedar.EntityUID {
	return cedar.NewEntityUID(cedar.EntityType(r.Type), cedar.String(r.ID))
}

// Provider supplies the entities (attributes and parents) policies see.
type Provider interface {
	// View returns a consistent view for one check. The engine calls it once
	// per check and never mixes two views in one decision.
	View() View
}

// View is a read-only, consistent set of entities.
type View interface {
	cedar.EntityGetter
	// Revision identifies the view's content. It must change whenever any
	// entity changes: the engine only reuses a decision, or what it learnt
	// about an entity, under the same revision.
	Revision() uint64
}

// AncestorLister is an optional View method: the transitive closure of
// uid's parents. Views that implement it spare the engine a graph walk.
type AncestorLister interface {
	Ancestors(uid cedar.EntityUID) []cedar.EntityUID
}
