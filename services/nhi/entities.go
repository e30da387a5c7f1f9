package nhi

import (
	"container/heap"
	"maps"
	"math"
	"sync"
	"sync/atomic"
	"time"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/entity"
)

// Entities returns an entity.Provider that shows every agent as a
// Cedar entity of type Config.EntityType ("Agent") with these attributes:
//
//	name        String
//	type        String  ("autonomous", "assistant", "service", "workflow")
//	owner       entity  (Config.OwnerEntityType, "User"::<owner id>)
//	status      String  ("active", "suspended", "revoked", or "expired"
//	                     once an active agent's expiry has passed)
//	created_at  datetime
//	expires_at  datetime, only when the agent has an expiry
//	<key>       String, one per agent attribute
//
// Every change the service makes, and every agent expiry as it passes,
// changes the view's Revision, so the engine's decision cache never
// reuses a decision made before a revocation.
//
// base, if not nil, supplies every other entity (users, teams,
// resources). For an agent both know, base's parents (its teams) are kept
// and NHI's attributes win over base's; an agent only base knows does not
// exist, because NHI decides which agents exist.
func (s *Service) Entities(base entity.Provider) entity.Provider {
	if base == nil {
		return agentProvider{s.ents}
	}
	return &combinedProvider{st: s.ents, base: base}
}

// entityState keeps the Cedar form of every agent as an immutable
// snapshot that checks read without locking. Writes copy a small overlay
// map instead of the whole set, and fold the overlay into a new base map
// once it grows past about the square root of the set: a write costs
// O(√n), not O(n), even with a hundred thousand agents.
type entityState struct {
	agentType, ownerType cedar.EntityType
	now                  func() time.Time

	mu       sync.Mutex // serialises writers
	agents   map[string]*AgentIdentity
	expiries expiryHeap

	cur atomic.Pointer[entitySnap]
}

func newEntityState(cfg Config, now func() time.Time, agents map[string]*AgentIdentity) *entityState {
	st := &entityState{
		agentType: cedar.EntityType(cfg.EntityType),
		ownerType: cedar.EntityType(cfg.OwnerEntityType),
		now:       now,
		agents:    maps.Clone(agents),
	}
	nowMS := now().UnixMilli()
	base := make(map[cedar.EntityUID]cedar.Entity, len(agents))
	for _, a := range agents {
		e := st.entity(a, nowMS)
		base[e.UID] = e
		st.trackExpiry(a, nowMS)
	}
	st.cur.Store(&entitySnap{agentType: st.agentType, base: base, rev: 1, nextExpiry: st.expiries.next()})
	return st
}

// update publishes an agent's new state.
func (st *entityState) update(a *AgentIdentity) {
	st.mu.Lock()
	defer st.mu.Unlock()
	nowMS := st.now().UnixMilli()
	st.agents[a.ID] = a
	st.trackExpiry(a, nowMS)
	e := st.entity(a, nowMS)
	st.publish(map[cedar.EntityUID]cedar.Entity{e.UID: e})
}

// bump publishes a new revision for a change that alters no entity (a
// key rotation, a delegation), so anything keyed on the revision sees
// every change of the service.
func (st *entityState) bump() {
	st.mu.Lock()
	defer st.mu.Unlock()
	st.publish(nil)
}

// view returns the current snapshot, first publishing a new one if an
// agent's expiry has passed since it was built.
func (st *entityState) view() *entitySnap {
	snap := st.cur.Load()
	if st.now().UnixMilli() < snap.nextExpiry {
		return snap
	}
	st.mu.Lock()
	defer st.mu.Unlock()
	nowMS := st.now().UnixMilli()
	snap = st.cur.Load()
	if nowMS < snap.nextExpiry {
		return snap
	}
	changes := make(map[cedar.EntityUID]cedar.Entity)
	for len(st.expiries) > 0 && st.expiries[0].ms <= nowMS {
		x := heap.Pop(&st.expiries).(expiry)
		// An entry is stale when the agent's expiry changed since.
		if a := st.agents[x.id]; a != nil && a.ExpiresAt.UnixMilli() == x.ms {
			e := st.entity(a, nowMS)
			changes[e.UID] = e
		}
	}
	st.publish(changes)
	return st.cur.Load()
}

func (st *entityState) trackExpiry(a *AgentIdentity, nowMS int64) {
	if !a.ExpiresAt.IsZero() && a.ExpiresAt.UnixMilli() > nowMS {
		heap.Push(&st.expiries, expiry{ms: a.ExpiresAt.UnixMilli(), id: a.ID})
	}
}

// publish installs a snapshot with changes applied and the next revision.
// The caller holds mu.
func (st *entityState) publish(changes map[cedar.EntityUID]cedar.Entity) {
	old := st.cur.Load()
	next := &entitySnap{agentType: st.agentType, base: old.base, overlay: old.overlay, rev: old.rev + 1, nextExpiry: st.expiries.next()}
	if len(changes) > 0 {
		next.overlay = make(map[cedar.EntityUID]cedar.Entity, len(old.overlay)+len(changes))
		maps.Copy(next.overlay, old.overlay)
		maps.Copy(next.overlay, changes)
		if len(next.overlay) > max(64, int(math.Sqrt(float64(len(old.base))))) {
			next.base = make(map[cedar.EntityUID]cedar.Entity, len(old.base)+len(next.overlay))
			maps.Copy(next.base, old.base)
			maps.Copy(next.base, next.overlay)
			next.overlay = nil
		}
	}
	st.cur.Store(next)
}

// entity builds an agent's Cedar form as of nowMS.
func (st *entityState) entity(a *AgentIdentity, nowMS int64) cedar.Entity {
	status := string(a.Status)
	if a.Status == StatusActive && a.expiredAt(nowMS) {
		status = "expired"
	}
	attrs := make(cedar.RecordMap, 6+len(a.Attributes))
	for k, v := range a.Attributes {
		attrs[cedar.String(k)] = cedar.String(v)
	}
	attrs["name"] = cedar.String(a.Name)
	attrs["type"] = cedar.String(a.Type)
	attrs["owner"] = cedar.NewEntityUID(st.ownerType, cedar.String(a.OwnerID))
	attrs["status"] = cedar.String(status)
	attrs["created_at"] = cedar.NewDatetime(a.CreatedAt)
	if !a.ExpiresAt.IsZero() {
		attrs["expires_at"] = cedar.NewDatetime(a.ExpiresAt)
	}
	return cedar.Entity{
		UID:        cedar.NewEntityUID(st.agentType, cedar.String(a.ID)),
		Attributes: cedar.NewRecord(attrs),
	}
}

// entitySnap is one immutable generation of the agents' entities.
type entitySnap struct {
	agentType     cedar.EntityType
	base, overlay map[cedar.EntityUID]cedar.Entity
	rev           uint64
	nextExpiry    int64 // unix ms of the next agent expiry; MaxInt64 if none
}

var (
	_ entity.View           = (*entitySnap)(nil)
	_ entity.AncestorLister = (*entitySnap)(nil)
)

// Get reads the overlay first: it holds the entries newer than the base.
func (s *entitySnap) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if e, ok := s.overlay[uid]; ok {
		return e, true
	}
	e, ok := s.base[uid]
	return e, ok
}

// Revision implements entity.View.
func (s *entitySnap) Revision() uint64 { return s.rev }

// Ancestors is always empty: NHI gives agents no parents, and saying so
// spares the engine a graph walk.
func (s *entitySnap) Ancestors(cedar.EntityUID) []cedar.EntityUID { return nil }

type agentProvider struct{ st *entityState }

// View implements entity.Provider.
func (p agentProvider) View() entity.View { return p.st.view() }

// combinedProvider lays NHI's agents over another provider's entities.
type combinedProvider struct {
	st   *entityState
	base entity.Provider

	// The combined revision must change when either side's does, and never
	// repeat: each distinct pair of revisions gets a number from a counter,
	// which holds even if the base's revisions are not monotonic.
	last    atomic.Pointer[revPair]
	counter atomic.Uint64
}

type revPair struct{ nhi, base, rev uint64 }

// View pairs the two sides' current views under one revision.
func (p *combinedProvider) View() entity.View {
	n := p.st.view()
	b := p.base.View()
	v := combinedView{nhi: n, base: b, rev: p.revision(n.rev, b.Revision())}
	if l, ok := b.(entity.AncestorLister); ok {
		return &listerView{combinedView: v, lister: l}
	}
	return &v
}

func (p *combinedProvider) revision(nhi, base uint64) uint64 {
	for {
		old := p.last.Load()
		if old != nil && old.nhi == nhi && old.base == base {
			return old.rev
		}
		next := &revPair{nhi: nhi, base: base, rev: p.counter.Add(1)}
		if p.last.CompareAndSwap(old, next) {
			return next.rev
		}
	}
}

type combinedView struct {
	nhi  *entitySnap
	base entity.View
	rev  uint64
}

// Get serves agents from NHI, merged with what the base knows of them,
// and everything else from the base.
func (v *combinedView) Get(uid cedar.EntityUID) (cedar.Entity, bool) {
	if uid.Type != v.nhi.agentType {
		return v.base.Get(uid)
	}
	e, ok := v.nhi.Get(uid)
	if !ok {
		return cedar.Entity{}, false
	}
	be, ok := v.base.Get(uid)
	if !ok {
		return e, true
	}
	attrs := make(cedar.RecordMap, be.Attributes.Len()+e.Attributes.Len())
	for k, val := range be.Attributes.All() {
		attrs[k] = val
	}
	for k, val := range e.Attributes.All() {
		attrs[k] = val
	}
	return cedar.Entity{UID: uid, Parents: be.Parents, Attributes: cedar.NewRecord(attrs), Tags: be.Tags}, true
}

// Revision implements entity.View.
func (v *combinedView) Revision() uint64 { return v.rev }

// listerView is a combinedView over a base that lists ancestors itself.
type listerView struct {
	combinedView
	lister entity.AncestorLister
}

// Ancestors hides the base's ancestors of agents NHI does not know, as
// Get hides the agents themselves.
func (v *listerView) Ancestors(uid cedar.EntityUID) []cedar.EntityUID {
	if uid.Type == v.nhi.agentType {
		if _, ok := v.nhi.Get(uid); !ok {
			return nil
		}
	}
	return v.lister.Ancestors(uid)
}

// expiryHeap orders agent expiries, soonest first.
type expiryHeap []expiry

type expiry struct {
	ms int64
	id string
}

// Len implements heap.Interface.
func (h expiryHeap) Len() int { return len(h) }

// Less orders by expiry.
func (h expiryHeap) Less(i, j int) bool { return h[i].ms < h[j].ms }

// Swap implements heap.Interface.
func (h expiryHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }

// Push implements heap.Interface.
func (h *expiryHeap) Push(x any) { *h = append(*h, x.(expiry)) }

// Pop implements heap.Interface.
func (h *expiryHeap) Pop() any {
	old := *h
	x := old[len(old)-1]
	*h = old[:len(old)-1]
	return x
}

func (h expiryHeap) next() int64 {
	if len(h) == 0 {
		return math.MaxInt64
	}
	return h[0].ms
}
