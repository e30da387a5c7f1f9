package storage

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/creto-systems/creto/internal/kv"
)

// cursorVersion prefixes cursors, so their format can change without an
// old cursor being misread.
const cursorVersion = "1\x00"

// List returns a page of one owner's objects, in (bucket, key) order: the
// latest live version of each key or, with AllVersions, every live version
// (oldest first within a key). It reads the owner index, filtering class
// and expiry there, and reads records only for the page it returns. The
// caller must be the owner or hold a storage:read delegation from it.
func (s *Service) List(ctx context.Context, caller Caller, req ListRequest) (ListResponse, error) {
	if err := s.enter(); err != nil {
		return ListResponse{}, fmt.Errorf("storage: list: %w", err)
	}
	defer s.life.RUnlock()
	resp, err := s.list(ctx, caller, req)
	if err != nil {
		return ListResponse{}, fmt.Errorf("storage: list: %w", err)
	}
	return resp, nil
}

// listEntry is one owner-index entry: a version and what a listing
// filters on.
type listEntry struct {
	bucket, key, vid string
	class            Classification
	expiresAt        int64
}

// position is where an entry sorts in a listing; a cursor holds the
// position of the last entry returned.
func (e *listEntry) position(allVersions bool) string {
	p := e.bucket + "\x00" + e.key
	if allVersions {
		p += "\x00" + e.vid
	}
	return p
}

func (s *Service) list(ctx context.Context, caller Caller, req ListRequest) (ListResponse, error) {
	owner := req.Owner
	if owner == "" {
		owner = caller.Agent
	}
	if err := validateAgent("owner", owner); err != nil {
		return ListResponse{}, err
	}
	prefix := ownerPrefix(owner)
	switch {
	case req.Classification != ClassificationUnspecified && !req.Classification.valid():
		return ListResponse{}, invalid("classification %v is not one of agent_data … compliance", req.Classification)
	case req.Prefix != "" && req.Bucket == "":
		return ListResponse{}, invalid("a key prefix needs a bucket")
	case req.Limit < 0:
		return ListResponse{}, invalid("negative limit %d", req.Limit)
	case req.Bucket != "":
		if err := validateBucket(req.Bucket); err != nil {
			return ListResponse{}, err
		}
		if req.Prefix != "" {
			if err := validateKey(req.Prefix); err != nil {
				return ListResponse{}, fmt.Errorf("prefix: %w", err)
			}
		}
		prefix = append(prefix, req.Bucket+"\x00"+req.Prefix...)
	}
	limit := req.Limit
	if limit == 0 {
		limit = defaultListLimit
	}
	limit = min(limit, maxListLimit)
	after, err := decodeCursor(req.Cursor)
	if err != nil {
		return ListResponse{}, err
	}
	if err := s.authorize(ctx, caller, owner, StorageRef{Bucket: req.Bucket}, PermRead); err != nil {
		return ListResponse{}, err
	}

	nowMS := s.now().UnixMilli()
	var page []listEntry
	var candidate *listEntry // latest-version mode: the latest live version of the current key
	emit := func(e listEntry) error {
		if req.Classification != ClassificationUnspecified && e.class != req.Classification {
			return nil
		}
		page = append(page, e)
		if len(page) > limit {
			return errStop // one past the page: there is a next one
		}
		return nil
	}
	base := len(ownerPrefix(owner))
	err = s.store.Scan(ctx, prefix, func(k, v []byte) error {
		bucket, key, vid, ok := keyParts(k[base:])
		if !ok || len(v) != 9 {
			return corrupt("owner index entry %s", quote(string(k)))
		}
		e := listEntry{bucket: bucket, key: key, vid: vid, class: Classification(v[0]), expiresAt: int64(binary.BigEndian.Uint64(v[1:]))}
		if after != "" && e.position(req.AllVersions) <= after {
			return nil
		}
		live := e.expiresAt == 0 || nowMS < e.expiresAt
		if req.AllVersions {
			if !live {
				return nil
			}
			return emit(e)
		}
		if candidate != nil && (candidate.bucket != e.bucket || candidate.key != e.key) {
			if err := emit(*candidate); err != nil {
				return err
			}
			candidate = nil
		}
		if live {
			candidate = &e
		}
		return nil
	})
	if err == nil && candidate != nil {
		err = emit(*candidate)
	}
	if err != nil && !errors.Is(err, errStop) {
		return ListResponse{}, err
	}
	var resp ListResponse
	if len(page) > limit {
		page = page[:limit]
		resp.NextCursor = encodeCursor(page[limit-1].position(req.AllVersions))
	}
	for _, e := range page {
		key := objectKey(e.bucket, e.key, e.vid)
		v, err := s.store.Get(ctx, key)
		if errors.Is(err, kv.ErrNotFound) {
			continue // deleted since the scan
		}
		if err != nil {
			return ListResponse{}, err
		}
		r, err := decodeRecord(key, v)
		if err != nil {
			return ListResponse{}, err
		}
		resp.Objects = append(resp.Objects, r.metadata())
	}
	return resp, nil
}

func encodeCursor(position string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorVersion + position))
}

// decodeCursor returns the position a cursor holds, checking that it is
// one a listing could have produced.
func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	bad := invalid("malformed cursor")
	raw, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil || !strings.HasPrefix(string(raw), cursorVersion) {
		return "", bad
	}
	pos := string(raw[len(cursorVersion):])
	bucket, rest, _ := strings.Cut(pos, "\x00")
	key, vid, hasVID := strings.Cut(rest, "\x00")
	if validateBucket(bucket) != nil || validateKey(key) != nil || (hasVID && validateVersionID(vid) != nil) {
		return "", bad
	}
	return pos, nil
}
