package memory

// entry is a live memory in an agent's index. mem is never changed after
// insertion, so readers holding the service's read lock may share it.
type entry struct {
	mem  Memory
	slot int // position of its vector in agentIndex.vecs
}

// agentIndex holds one agent's memories for exact search. Vectors sit in
// one contiguous slice, row i belonging to entries[i], so a scan walks
// memory linearly with no pointer chasing per vector.
type agentIndex struct {
	vecs    []float32
	entries []*entry
}

func (ix *agentIndex) add(e *entry, vec []float32) {
	e.slot = len(ix.entries)
	ix.entries = append(ix.entries, e)
	ix.vecs = append(ix.vecs, vec...)
}

// remove moves the last row into e's slot, so removal is O(dims) and
// the slice stays dense.
func (ix *agentIndex) remove(e *entry, dims int) {
	last := len(ix.entries) - 1
	if e.slot != last {
		moved := ix.entries[last]
		copy(ix.vecs[e.slot*dims:(e.slot+1)*dims], ix.vecs[last*dims:])
		ix.entries[e.slot] = moved
		moved.slot = e.slot
	}
	ix.entries[last] = nil
	ix.entries = ix.entries[:last]
	ix.vecs = ix.vecs[:last*dims]
}

// filter is a query's conditions other than similarity, checked before a
// vector is touched because they are far cheaper than a dot product.
type filter struct {
	types        uint8 // bit t set: type t admitted; 0 admits all
	since, until int64 // created-at bounds, unix ns, inclusive; 0 = open
	now          int64 // memories expired at now are skipped
}

func (f *filter) admits(m *Memory) bool {
	if f.types != 0 && f.types&(1<<m.Type) == 0 {
		return false
	}
	c := m.CreatedAt.UnixNano()
	if (f.since != 0 && c < f.since) || (f.until != 0 && c > f.until) {
		return false
	}
	return !m.expired(f.now)
}

type hit struct {
	e     *entry
	score float32
}

// better orders results: higher score first, then the newer memory, then
// the id, so equal scores never come back in a different order.
func (h hit) better(o hit) bool {
	if h.score != o.score {
		return h.score > o.score
	}
	if c, oc := h.e.mem.CreatedAt, o.e.mem.CreatedAt; !c.Equal(oc) {
		return c.After(oc)
	}
	return h.e.mem.ID < o.e.mem.ID
}

// search returns the k best memories admitted by f scoring at least
// threshold against the unit vector q, best first, and how many memories
// were scored. The top-k list is kept sorted by insertion: k is at most
// Config.MaxQueryLimit and, once the list fills, few rows beat its worst.
func (ix *agentIndex) search(q []float32, dims int, f *filter, threshold float32, k int) ([]hit, int) {
	top := make([]hit, 0, k)
	scored := 0
	for i, e := range ix.entries {
		if !f.admits(&e.mem) {
			continue
		}
		scored++
		s := dot(q, ix.vecs[i*dims:(i+1)*dims])
		if s < threshold {
			continue
		}
		h := hit{e: e, score: s}
		if len(top) == k {
			if !h.better(top[k-1]) {
				continue
			}
			top = top[:k-1]
		}
		at := len(top)
		for at > 0 && h.better(top[at-1]) {
			at--
		}
		top = append(top, hit{})
		copy(top[at+1:], top[at:])
		top[at] = h
	}
	return top, scored
}
