package memory

// entry is a live memory in an agent's index. mem is never changed after
// insertion, so readers holding the service's read lock may share it.
type entry struct {
	mem  Memory
	slot int // position of its vector in agentIndex.vecs
	// list and pos place the entry in agentIndex.ann, when there is one:
	// ann.lists[list][pos] == e.
	list, pos int
}

// agentIndex holds one agent's memories. Vectors sit in one contiguous
// slice, row i belonging to entries[i], so an exact scan walks memory
// linearly with no pointer chasing per vector. Past
// Config.ApproximateAbove memories it also carries an approximate index
// over the same rows (ivf.go).
type agentIndex struct {
	vecs    []float32
	entries []*entry
	// ann, when set, partitions entries for approximate search; building
	// is true while a build for this index runs in the background.
	ann      *ivf
	building bool
}

func (ix *agentIndex) add(e *entry, vec []float32, dims int) {
	e.slot = len(ix.entries)
	ix.entries = append(ix.entries, e)
	ix.vecs = append(ix.vecs, vec...)
	if ix.ann != nil {
		ix.ann.add(e, vec, dims)
	}
}

// remove moves the last row into e's slot, so removal is O(dims) and
// the slice stays dense.
func (ix *agentIndex) remove(e *entry, dims int) {
	if ix.ann != nil {
		ix.ann.remove(e)
	}
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

// topK keeps the k best hits seen, best first. The list is kept sorted
// by insertion: k is at most Config.MaxQueryLimit and, once the list
// fills, few rows beat its worst.
type topK struct {
	k    int
	hits []hit
}

func newTopK(k int) *topK { return &topK{k: k, hits: make([]hit, 0, k)} }

func (t *topK) offer(h hit) {
	top := t.hits
	if len(top) == t.k {
		if !h.better(top[t.k-1]) {
			return
		}
		top = top[:t.k-1]
	}
	at := len(top)
	for at > 0 && h.better(top[at-1]) {
		at--
	}
	top = append(top, hit{})
	copy(top[at+1:], top[at:])
	top[at] = h
	t.hits = top
}

// scan offers every entry of es that f admits and that scores at least
// threshold against q to top, and returns how many it scored. Exact and
// approximate search both go through it, so they apply the same filters
// and order ties the same way.
func (ix *agentIndex) scan(es []*entry, q []float32, dims int, f *filter, threshold float32, top *topK) int {
	scored := 0
	for _, e := range es {
		if !f.admits(&e.mem) {
			continue
		}
		scored++
		if s := dot(q, ix.vecs[e.slot*dims:(e.slot+1)*dims]); s >= threshold {
			top.offer(hit{e: e, score: s})
		}
	}
	return scored
}

// search returns the k best memories admitted by f scoring at least
// threshold against the unit vector q, best first, and how many memories
// were scored, by scoring every memory.
func (ix *agentIndex) search(q []float32, dims int, f *filter, threshold float32, k int) ([]hit, int) {
	top := newTopK(k)
	scored := ix.scan(ix.entries, q, dims, f, threshold, top)
	return top.hits, scored
}

// query is search through the approximate index when the agent has one.
// exact reports that every admitted memory was scored.
func (ix *agentIndex) query(q []float32, dims int, f *filter, threshold float32, k int) (hits []hit, scored int, exact bool) {
	if ix.ann == nil {
		hits, scored = ix.search(q, dims, f, threshold, k)
		return hits, scored, true
	}
	return ix.ann.search(ix, q, dims, f, threshold, k)
}
