package memory

import (
	"math"
	"math/rand/v2"
	"slices"
)

// An agent's memories are searched exactly until they number more than
// Config.ApproximateAbove. Past that, an exact scan grows linearly with
// the agent while the answer stays ten rows, so the agent gets an
// inverted-file (IVF) index: its vectors are partitioned by k-means into
// about sqrt(n) lists, and a query scores only the lists whose centroids
// are closest to it. Vectors stay in agentIndex.vecs (laid out list by
// list when an index is installed); the lists hold entries, so the exact
// path and the index share one copy.
//
// The index is built in the background from a snapshot (see
// Service.reindex), so neither queries nor stores wait for k-means.
// Until it is installed the agent is searched exactly; afterwards inserts
// go to the nearest list and deletes leave theirs. Centroids drift from
// their lists as memories change, so the index is rebuilt once the
// changes since the last build equal its size (that includes the agent
// doubling), and dropped when the agent shrinks to half the threshold.

// Tuning of the index, fixed rather than configured. How deep a query
// probes is not fixed: each build measures it (calibrate).
const (
	// trainPerList bounds the k-means training sample to this many
	// vectors per list: centroids settle long before every vector is
	// seen, and training on all of them would dominate the build.
	trainPerList = 48
	// kmeansIterations of Lloyd's algorithm after k-means++ seeding.
	kmeansIterations = 6
	// firstScale is the probe scale calibration starts from: a query
	// scores scale * n / sqrt(lists) admitted memories, which with
	// sqrt(n) lists is about scale * sqrt(lists) lists' worth. Each step
	// raises the scale by a quarter.
	firstScale = 0.25
	// targetRecall is the recall@10 against exact search a build must
	// measure on the agent's own memories before it is used. It sits
	// well above the 0.95 the index is held to because memories are
	// easier queries than new text: k-means fitted the partition to them.
	// At 0.97 held-out recall came out 0.93-0.94 (BenchmarkMemoryQueryANN);
	// at 0.99 it is 0.977 there and at least 0.99 in TestIVFRecall.
	targetRecall = 0.99
	// calibrationQueries is the number of the agent's own memories used
	// as queries when calibrating.
	calibrationQueries = 256
	// probeFloor is the least number of admitted memories scored per
	// result asked for, so a large limit is not answered from the few
	// lists that suffice for ten.
	probeFloor = 20
)

// ivf partitions one agent's entries into lists around unit centroids.
type ivf struct {
	centroids []float32 // len(lists) rows of dims
	lists     [][]*entry
	built     int     // entries at build time
	changes   int     // inserts and deletes since
	scale     float64 // probe depth, set by calibrate
}

// nearestList returns the list whose centroid has the highest cosine
// similarity to v, the lowest index on a tie.
func nearestList(centroids, v []float32, dims int) int {
	best, bestScore := 0, float32(math.Inf(-1))
	for c := 0; c*dims < len(centroids); c++ {
		if s := dot(v, centroids[c*dims:(c+1)*dims]); s > bestScore {
			best, bestScore = c, s
		}
	}
	return best
}

func (p *ivf) put(e *entry, list int) {
	e.list, e.pos = list, len(p.lists[list])
	p.lists[list] = append(p.lists[list], e)
}

func (p *ivf) add(e *entry, vec []float32, dims int) {
	p.put(e, nearestList(p.centroids, vec, dims))
	p.changes++
}

// remove moves the list's last entry into e's place, as agentIndex.remove
// does with rows, so removal is O(1).
func (p *ivf) remove(e *entry) {
	l := p.lists[e.list]
	last := len(l) - 1
	if e.pos != last {
		l[e.pos] = l[last]
		l[e.pos].pos = e.pos
	}
	l[last] = nil
	p.lists[e.list] = l[:last]
	p.changes++
}

// search scores lists in order of their centroid's similarity to q until
// it has scored enough admitted memories (ivf.scale, probeFloor).
// Counting admitted memories rather than lists keeps recall when filters
// are selective: a query for one type in six reads about six times as
// many lists, and one whose filters admit almost nothing reads them all,
// which is then an exact search and reported as one.
func (p *ivf) search(ix *agentIndex, q []float32, dims int, f *filter, threshold float32, k int) ([]hit, int, bool) {
	order := p.order(q, dims)
	want := p.want(len(ix.entries), k)
	top := newTopK(k)
	scored := 0
	for i, c := range order {
		scored += ix.scan(p.lists[c], q, dims, f, threshold, top)
		if scored >= want {
			return top.hits, scored, i == len(order)-1
		}
	}
	return top.hits, scored, true
}

// order returns the lists by decreasing similarity of their centroid to
// q, the lower index first on a tie.
func (p *ivf) order(q []float32, dims int) []int {
	order := make([]int, len(p.lists))
	sims := make([]float32, len(p.lists))
	for c := range order {
		order[c] = c
		sims[c] = dot(q, p.centroids[c*dims:(c+1)*dims])
	}
	slices.SortFunc(order, func(a, b int) int {
		switch {
		case sims[a] > sims[b]:
			return -1
		case sims[a] < sims[b]:
			return 1
		}
		return a - b
	})
	return order
}

// want is how many admitted memories a query for k results over n
// memories scores before it stops.
func (p *ivf) want(n, k int) int {
	return max(int(p.scale*float64(n)/math.Sqrt(float64(len(p.lists)))), probeFloor*k)
}

// listsFor is the number of lists for n vectors: sqrt(n) balances the
// cost of ranking centroids against the cost of scanning lists.
func listsFor(n int) int {
	return max(1, int(math.Round(math.Sqrt(float64(n)))))
}

// kmeans partitions the n unit vectors in vecs into k clusters by cosine
// similarity (spherical k-means) and returns the unit centroids and each
// vector's cluster. It trains on an evenly strided sample, seeded by
// k-means++ from a fixed seed, so the same vectors always give the same
// partition. It returns nil if stop reports true between iterations.
func kmeans(vecs []float32, dims, k int, stop func() bool) (centroids []float32, assign []int) {
	n := len(vecs) / dims
	row := func(i int) []float32 { return vecs[i*dims : (i+1)*dims] }
	m := min(n, trainPerList*k)
	sample := make([]int, m)
	for i := range sample {
		sample[i] = int(int64(i) * int64(n) / int64(m))
	}

	// k-means++: each further centroid is a sample vector drawn with
	// probability proportional to its squared distance to the nearest
	// centroid so far (for unit vectors, 2 - 2cos).
	rng := rand.New(rand.NewPCG(0x6d656d, 0x697666))
	centroids = make([]float32, 0, k*dims)
	centroids = append(centroids, row(sample[rng.IntN(m)])...)
	d2 := make([]float64, m)
	for i := range d2 {
		d2[i] = math.Inf(1)
	}
	for len(centroids) < k*dims {
		last := centroids[len(centroids)-dims:]
		var total float64
		for i, x := range sample {
			d2[i] = min(d2[i], max(0, 2-2*float64(dot(row(x), last))))
			total += d2[i]
		}
		pick := m - 1
		if total > 0 {
			r := rng.Float64() * total
			for i, d := range d2 {
				if r -= d; r < 0 {
					pick = i
					break
				}
			}
		}
		centroids = append(centroids, row(sample[pick])...)
	}

	sums := make([]float64, k*dims)
	for range kmeansIterations {
		if stop() {
			return nil, nil
		}
		clear(sums)
		for _, x := range sample {
			v := row(x)
			c := nearestList(centroids, v, dims)
			for j, y := range v {
				sums[c*dims+j] += float64(y)
			}
		}
		for c := range k {
			// A cluster left empty, or summing to zero, keeps its
			// centroid rather than becoming a vector that matches nothing.
			if s := sums[c*dims : (c+1)*dims]; norm(s) > 0 {
				inv := 1 / norm(s)
				for j, y := range s {
					centroids[c*dims+j] = float32(y * inv)
				}
			}
		}
	}
	if stop() {
		return nil, nil
	}
	assign = make([]int, n)
	for i := range assign {
		assign[i] = nearestList(centroids, row(i), dims)
	}
	return centroids, assign
}

func norm(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x * x
	}
	return math.Sqrt(s)
}

// reindex starts a background build of agent's approximate index when it
// has grown past Config.ApproximateAbove or changed as much as it had
// memories at the last build, and drops the index once the agent has
// shrunk to half the threshold, where exact search is cheap again. The
// caller holds the write lock, or owns s exclusively while opening.
func (s *Service) reindex(agent string, ix *agentIndex) {
	above, n := s.cfg.ApproximateAbove, len(ix.entries)
	if above < 0 || s.closed {
		return
	}
	if ix.ann != nil && n <= above/2 {
		ix.ann = nil
	}
	if ix.building || (ix.ann == nil && n <= above) || (ix.ann != nil && ix.ann.changes < ix.ann.built) {
		return
	}
	ix.building = true
	s.builds.Go(func() { s.build(agent, ix) })
}

// build runs k-means on a snapshot of ix and installs the result. The
// snapshot is copied under the read lock, so queries carry on meanwhile;
// memories stored or deleted during the build are reconciled when it is
// installed under the write lock.
func (s *Service) build(agent string, ix *agentIndex) {
	s.mu.RLock()
	entries, vecs := slices.Clone(ix.entries), slices.Clone(ix.vecs)
	s.mu.RUnlock()
	stop := func() bool {
		s.mu.RLock()
		defer s.mu.RUnlock()
		return s.closed
	}
	centroids, assign := kmeans(vecs, s.dims, listsFor(len(entries)), stop)
	if centroids == nil {
		s.mu.Lock()
		ix.building = false
		s.mu.Unlock()
		return
	}
	// Calibrate on a private copy of the snapshot: the live entries'
	// slots and lists change under the write lock, which is not held.
	snap := &agentIndex{vecs: vecs, entries: make([]*entry, len(entries))}
	listOf := make(map[*entry]int, len(entries))
	p := &ivf{centroids: centroids, lists: make([][]*entry, len(centroids)/s.dims)}
	for i, e := range entries {
		listOf[e] = assign[i]
		snap.entries[i] = &entry{mem: e.mem, slot: i}
		p.put(snap.entries[i], assign[i])
	}
	scale := p.calibrate(snap, s.dims)

	s.mu.Lock()
	defer s.mu.Unlock()
	ix.building = false
	if s.closed || s.agents[agent] != ix || len(ix.entries) <= s.cfg.ApproximateAbove/2 {
		return
	}
	p = &ivf{centroids: centroids, lists: make([][]*entry, len(p.lists)), built: len(ix.entries), scale: scale}
	for _, e := range ix.entries {
		l, ok := listOf[e]
		if !ok { // stored since the snapshot
			l = nearestList(centroids, ix.vecs[e.slot*s.dims:(e.slot+1)*s.dims], s.dims)
		}
		p.put(e, l)
	}
	// Lay the rows out list by list, so that scanning a list reads memory
	// in order as the exact scan does; scattered rows made each vector a
	// cache and TLB miss and the scan several times slower per memory.
	// Exact search does not care about row order. Later inserts and
	// deletes loosen the layout until the next build.
	vecs = make([]float32, 0, len(ix.vecs))
	order := ix.entries[:0]
	for _, list := range p.lists {
		for _, e := range list {
			vecs = append(vecs, ix.vecs[e.slot*s.dims:(e.slot+1)*s.dims]...)
			order = append(order, e)
		}
	}
	for i, e := range order {
		e.slot = i
	}
	ix.vecs, ix.entries, ix.ann = vecs, order, p
}

// calibrate returns the least probe scale, raising it from firstScale, at
// which p finds targetRecall of the exact 10 nearest neighbours of a
// strided sample of ix's own memories (each excluding itself). An
// agent's queries are about the things it stored, so its memories stand
// in for them; the deeper probing that weakly clustered vectors need is
// paid in speed rather than recall.
//
// It needs no search per scale: a query without filters reads list after
// list until it has scored want memories, so it finds a neighbour exactly
// when the lists it reads ahead of the neighbour's hold fewer than want.
// Recording that count per neighbour once gives the recall at every scale.
func (p *ivf) calibrate(ix *agentIndex, dims int) float64 {
	const k = 10
	n := len(ix.entries)
	m := min(n, calibrationQueries)
	var none filter
	var ahead []int // per neighbour: memories in the lists read before its own
	readFrom := make([]int, len(p.lists))
	for i := range m {
		self := ix.entries[i*n/m]
		q := ix.vecs[self.slot*dims : (self.slot+1)*dims]
		hits, _ := ix.search(q, dims, &none, -1, k+1)
		sum := 0
		for _, c := range p.order(q, dims) {
			readFrom[c] = sum
			sum += len(p.lists[c])
		}
		for _, h := range others(hits, self, k) {
			ahead = append(ahead, readFrom[h.e.list])
		}
	}
	slices.Sort(ahead)
	// Finding the first ceil(target * total) neighbours in this order
	// meets the target; the last of them needs want above its count.
	need := ahead[max(0, int(math.Ceil(targetRecall*float64(len(ahead))))-1)]
	p.scale = firstScale
	for p.want(n, k) <= need {
		p.scale *= 1.25
	}
	return p.scale
}

// others is hits without the query's own entry, cut to k.
func others(hits []hit, self *entry, k int) []hit {
	hits = slices.DeleteFunc(hits, func(h hit) bool { return h.e == self })
	return hits[:min(k, len(hits))]
}
