package storage

import "sync"

// quotas accounts each owner's bytes: used is what committed versions hold
// (rebuilt from the records at Open), reserved what stores in flight have
// read so far. A store reserves each chunk before it keeps it, under one
// mutex, so concurrent writers can never together pass a quota; it turns
// the reservation into use when it commits and gives it back if it fails.
type quotas struct {
	limit int64

	mu       sync.Mutex
	used     map[string]int64
	reserved map[string]int64
}

func newQuotas(limit int64) *quotas {
	return &quotas{limit: limit, used: map[string]int64{}, reserved: map[string]int64{}}
}

// reserve claims n more bytes for owner, or fails with
// *QuotaExceededError and claims nothing.
func (q *quotas) reserve(owner string, n int64) error {
	q.mu.Lock()
	defer q.mu.Unlock()
	have := q.used[owner] + q.reserved[owner]
	if n > q.limit-have {
		return &QuotaExceededError{Owner: owner, Used: have, Limit: q.limit}
	}
	q.reserved[owner] += n
	return nil
}

// check fails, like reserve, if n more bytes would not fit now; it
// reserves nothing. A store that declares its size calls it to fail before
// reading anything.
func (q *quotas) check(owner string, n int64) error {
	if err := q.reserve(owner, n); err != nil {
		return err
	}
	q.release(owner, n)
	return nil
}

// release gives back n reserved bytes.
func (q *quotas) release(owner string, n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	add(q.reserved, owner, -n)
}

// commit turns n reserved bytes into used ones.
func (q *quotas) commit(owner string, n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	add(q.reserved, owner, -n)
	add(q.used, owner, n)
}

// free drops n used bytes, after a version is deleted.
func (q *quotas) free(owner string, n int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	add(q.used, owner, -n)
}

// add adjusts a counter, dropping it at zero so idle owners cost nothing.
func add(m map[string]int64, owner string, n int64) {
	if m[owner] += n; m[owner] == 0 {
		delete(m, owner)
	}
}

// usage returns owner's used and reserved bytes.
func (q *quotas) usage(owner string) (used, reserved int64) {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.used[owner], q.reserved[owner]
}
