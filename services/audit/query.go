package audit

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"
)

// Query returns one page of the records that match every filter of req,
// in log order (seed Query). A query for one identity's records (Who)
// needs the caller to be that identity or the Authorizer's grant; a query
// without Who reads every identity's records and needs the grant for ""
// (an auditor role).
//
// How it runs: the log is cut into pages of 65,536 records. A query with
// Resource, Who or What reads that field's index entries page by page (an
// exact match, so the most selective of the three is used, in that
// order); one without reads the records of each page. A time range skips
// the pages whose records all fall outside it. The other filters are
// applied to each record read. At most Config.QueryMaxScan records are
// examined per call.
func (s *Service) Query(ctx context.Context, caller string, req QueryRequest) (QueryResponse, error) {
	const op = "query"
	if err := s.enter(); err != nil {
		return QueryResponse{}, opError(op, caller, err)
	}
	defer s.life.RUnlock()
	if err := ctx.Err(); err != nil {
		return QueryResponse{}, opError(op, caller, err)
	}
	if err := s.authorize(ctx, caller, req.Who, AccessRead); err != nil {
		return QueryResponse{}, opError(op, caller, err)
	}
	q, err := s.planQuery(&req)
	if err != nil {
		return QueryResponse{}, opError(op, caller, err)
	}
	resp, err := s.runQuery(ctx, q)
	if err != nil {
		return QueryResponse{}, opError(op, caller, err)
	}
	return resp, nil
}

// query is a validated QueryRequest and how to run it.
type query struct {
	req          *QueryRequest
	since, until int64 // nanoseconds; until exclusive
	timed        bool
	limit        int
	from, size   int64 // examine indexes from..size-1
	field        byte  // 0: read records, not an index
	value        string
}

func (s *Service) planQuery(req *QueryRequest) (*query, error) {
	q := &query{req: req, since: 0, until: 1<<63 - 1, size: s.Size()}
	for _, f := range []struct {
		name, v string
		max     int
	}{{"who", req.Who, MaxIDLen}, {"what", req.What, MaxIDLen}, {"resource", req.Resource, MaxResourceLen}, {"source", req.Source, MaxSourceLen}} {
		if err := checkString(f.name, f.v, f.max, false, true); err != nil {
			return nil, err
		}
	}
	for _, o := range req.Outcomes {
		if !o.valid() {
			return nil, detail(ErrInvalidArgument, "outcome %d", uint8(o))
		}
	}
	switch {
	case req.Limit < 0:
		return nil, detail(ErrInvalidArgument, "negative limit")
	case req.Limit == 0:
		q.limit = s.cfg.QueryDefaultLimit
	case req.Limit > s.cfg.QueryMaxLimit:
		return nil, detail(ErrTooLarge, "limit %d, at most %d", req.Limit, s.cfg.QueryMaxLimit)
	default:
		q.limit = req.Limit
	}
	if !req.Since.IsZero() {
		q.since, q.timed = clampNanos(req.Since), true
	}
	if !req.Until.IsZero() {
		q.until, q.timed = clampNanos(req.Until), true
	}
	if q.since >= q.until {
		return nil, detail(ErrInvalidArgument, "empty time range")
	}
	if req.Cursor != "" {
		c, err := strconv.ParseInt(req.Cursor, 10, 64)
		if err != nil || c < 0 || strconv.FormatInt(c, 10) != req.Cursor {
			return nil, detail(ErrInvalidArgument, "cursor %s", quote(req.Cursor))
		}
		q.from = c
	}
	switch {
	case req.Resource != "":
		q.field, q.value = indexResource, req.Resource
	case req.Who != "":
		q.field, q.value = indexWho, req.Who
	case req.What != "":
		q.field, q.value = indexWhat, req.What
	}
	return q, nil
}

// clampNanos maps a time onto the int64 nanoseconds records carry.
func clampNanos(t time.Time) int64 {
	switch {
	case t.Before(time.Unix(0, 0)):
		return 0
	case t.After(maxTimestamp):
		return 1<<63 - 1
	}
	return t.UnixNano()
}

func (q *query) matches(r *Record) bool {
	req := q.req
	ts := r.Timestamp.UnixNano()
	return (req.Who == "" || r.Who == req.Who) &&
		(req.What == "" || r.What == req.What) &&
		(req.Resource == "" || r.Resource == req.Resource) &&
		(req.Source == "" || r.Source == req.Source) &&
		(len(req.Outcomes) == 0 || slices.Contains(req.Outcomes, r.Outcome)) &&
		ts >= q.since && ts < q.until
}

func (s *Service) runQuery(ctx context.Context, q *query) (QueryResponse, error) {
	var resp QueryResponse
	if q.from >= q.size {
		return resp, nil
	}
	var pages map[int64][2]int64
	if q.timed {
		var err error
		if pages, err = s.pageTimes(ctx); err != nil {
			return resp, err
		}
	}
	examined := 0
	next := q.from
	// visit examines the record at idx; leaf is nil when it must be read.
	visit := func(idx int64, leaf []byte) error {
		if idx < next || idx >= q.size {
			return nil
		}
		if leaf == nil {
			var err error
			if leaf, err = s.store.Get(ctx, recordKey(idx)); err != nil {
				return fmt.Errorf("record %d: %w", idx, err)
			}
		}
		r, err := DecodeLeaf(leaf)
		if err != nil {
			return fmt.Errorf("record %d: %w", idx, err)
		}
		if r.Index != uint64(idx) {
			return detail(ErrMalformed, "record %d says it is %d", idx, r.Index)
		}
		next, examined = idx+1, examined+1
		if q.matches(&r) {
			resp.Records = append(resp.Records, r)
		}
		if len(resp.Records) == q.limit || examined == s.cfg.QueryMaxScan {
			return errStop
		}
		return nil
	}
	var prefix []byte
	if q.field != 0 {
		prefix = indexPrefix(q.field, q.value)
	} else {
		prefix = []byte(prefixRecords)
	}
	for page := q.from >> pageBits; page <= (q.size-1)>>pageBits; page++ {
		if pages != nil {
			if r, ok := pages[page]; ok && (r[1] < q.since || r[0] >= q.until) {
				next = max(next, (page+1)<<pageBits)
				continue
			}
		}
		p := pageKey(slices.Clip(prefix), page)
		err := s.store.Scan(ctx, p, func(key, val []byte) error {
			if len(key) != len(p)+2 {
				return detail(ErrMalformed, "key of %d bytes under %q", len(key), p)
			}
			idx := int64(binary.BigEndian.Uint64(key[len(key)-8:]))
			if q.field == 0 {
				return visit(idx, val)
			}
			// An index entry lists a commit's records with the value:
			// the first in the key, the gaps to the rest in the value.
			for {
				if err := visit(idx, nil); err != nil {
					return err
				}
				if len(val) == 0 {
					return nil
				}
				gap, n := binary.Uvarint(val)
				if n <= 0 || gap == 0 || gap >= 1<<pageBits {
					return detail(ErrMalformed, "index entry under %q", p)
				}
				idx, val = idx+int64(gap), val[n:]
			}
		})
		if errors.Is(err, errStop) {
			if next < q.size {
				resp.NextCursor = strconv.FormatInt(next, 10)
			}
			return resp, nil
		}
		if err != nil {
			return resp, err
		}
		if err := ctx.Err(); err != nil {
			return resp, err
		}
	}
	return resp, nil
}

// pageTimes returns the timestamp range of every page.
func (s *Service) pageTimes(ctx context.Context) (map[int64][2]int64, error) {
	out := map[int64][2]int64{}
	err := s.store.Scan(ctx, []byte(prefixPageTimes), func(key, val []byte) error {
		if len(key) != len(prefixPageTimes)+6 || len(val) != 16 {
			return detail(ErrMalformed, "page summary %q", key)
		}
		var b [8]byte
		copy(b[:6], key[len(prefixPageTimes):])
		page := int64(binary.BigEndian.Uint64(b[:]) >> pageBits)
		out[page] = [2]int64{int64(binary.BigEndian.Uint64(val)), int64(binary.BigEndian.Uint64(val[8:]))}
		return nil
	})
	return out, err
}
