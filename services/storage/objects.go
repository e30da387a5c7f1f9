package storage

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/creto-systems/creto/internal/kv"
)

// versions returns every stored version of (bucket, key), oldest first,
// expired ones included.
func (s *Service) versions(ctx context.Context, bucket, key string) ([]*record, error) {
	var out []*record
	err := s.store.Scan(ctx, objectPrefix(bucket, key), func(k, v []byte) error {
		r, err := decodeRecord(k, v)
		if err != nil {
			return err
		}
		out = append(out, r)
		return nil
	})
	return out, err
}

// resolve returns the live version ref names: its VersionID, or the latest
// live version. Expired versions are not found, swept or not.
func (s *Service) resolve(ctx context.Context, ref StorageRef, nowMS int64) (*record, error) {
	if ref.VersionID != "" {
		v, err := s.store.Get(ctx, objectKey(ref.Bucket, ref.Key, ref.VersionID))
		if errors.Is(err, kv.ErrNotFound) {
			return nil, &NotFoundError{Ref: ref}
		}
		if err != nil {
			return nil, err
		}
		r, err := decodeRecord(objectKey(ref.Bucket, ref.Key, ref.VersionID), v)
		if err != nil {
			return nil, err
		}
		if r.expiredAt(nowMS) {
			return nil, &NotFoundError{Ref: ref}
		}
		return r, nil
	}
	all, err := s.versions(ctx, ref.Bucket, ref.Key)
	if err != nil {
		return nil, err
	}
	for i := len(all) - 1; i >= 0; i-- {
		if !all[i].expiredAt(nowMS) {
			return all[i], nil
		}
	}
	return nil, &NotFoundError{Ref: ref}
}

// GetMetadata returns the metadata of the version ref names. The caller
// must be the owner or hold a storage:read delegation from it.
func (s *Service) GetMetadata(ctx context.Context, caller Caller, ref StorageRef) (ObjectMetadata, error) {
	if err := s.enter(); err != nil {
		return ObjectMetadata{}, fmt.Errorf("storage: get metadata: %w", err)
	}
	defer s.life.RUnlock()
	rec, err := s.readable(ctx, caller, ref)
	if err != nil {
		return ObjectMetadata{}, fmt.Errorf("storage: get metadata %v: %w", ref, err)
	}
	return rec.metadata(), nil
}

// readable resolves ref for a caller who wants to read it.
func (s *Service) readable(ctx context.Context, caller Caller, ref StorageRef) (*record, error) {
	if err := validateRef(ref); err != nil {
		return nil, err
	}
	rec, err := s.resolve(ctx, ref, s.now().UnixMilli())
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, caller, rec.Owner, rec.ref(), PermRead); err != nil {
		return nil, err
	}
	if err := checkHash(ref.ContentHash, rec.ContentHash); err != nil {
		return nil, err
	}
	return rec, nil
}

// Delete deletes the version ref names or, when ref has no VersionID,
// every version of the object. It is all or nothing: if any version to
// delete is under compliance retention, nothing is deleted and the error
// is *RetainedError. A ContentHash in ref must match the version named (or
// the latest). The caller must be the owner or hold a storage:delete
// delegation from it.
func (s *Service) Delete(ctx context.Context, caller Caller, ref StorageRef) error {
	if err := s.enter(); err != nil {
		return fmt.Errorf("storage: delete: %w", err)
	}
	defer s.life.RUnlock()
	if err := s.delete(ctx, caller, ref); err != nil {
		return fmt.Errorf("storage: delete %v: %w", ref, err)
	}
	return nil
}

func (s *Service) delete(ctx context.Context, caller Caller, ref StorageRef) error {
	if err := validateRef(ref); err != nil {
		return err
	}
	l := s.lock(ref.Bucket, ref.Key)
	l.Lock()
	defer l.Unlock()
	nowMS := s.now().UnixMilli()
	named, err := s.resolve(ctx, ref, nowMS)
	if err != nil {
		return err
	}
	if err := s.authorize(ctx, caller, named.Owner, named.ref(), PermDelete); err != nil {
		return err
	}
	if err := checkHash(ref.ContentHash, named.ContentHash); err != nil {
		return err
	}
	doomed := []*record{named}
	if ref.VersionID == "" {
		if doomed, err = s.versions(ctx, ref.Bucket, ref.Key); err != nil {
			return err
		}
	}
	for _, r := range doomed {
		if r.retainedAt(nowMS) {
			return r.retainedError()
		}
	}
	return s.remove(ctx, doomed)
}

// remove deletes versions in one commit, then their files. The caller
// holds the locks of their objects and has checked retention. A crash
// between the commit and the file removal leaves files Open deletes.
func (s *Service) remove(ctx context.Context, doomed []*record) error {
	var b kv.Batch
	for _, r := range doomed {
		deleteRecord(&b, r)
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		return err
	}
	for _, r := range doomed {
		s.quota.free(r.Owner, r.Size)
		if !r.Inline {
			if err := os.Remove(s.filePath(r.VersionID)); err != nil && !errors.Is(err, os.ErrNotExist) {
				return fmt.Errorf("deleted, but its file stays until the next start: %w", err)
			}
		}
	}
	return nil
}

// UpdateMetadata changes one version's metadata in place and returns the
// result. A version under compliance retention accepts only a new expiry,
// and only one no earlier than the retention's end: its metadata, content
// type and classification are frozen and its retention can be neither
// shortened nor dropped. The
// caller must be the owner or hold a storage:write delegation from it.
func (s *Service) UpdateMetadata(ctx context.Context, caller Caller, req UpdateMetadataRequest) (ObjectMetadata, error) {
	if err := s.enter(); err != nil {
		return ObjectMetadata{}, fmt.Errorf("storage: update metadata: %w", err)
	}
	defer s.life.RUnlock()
	rec, err := s.updateMetadata(ctx, caller, req)
	if err != nil {
		return ObjectMetadata{}, fmt.Errorf("storage: update metadata %v: %w", req.Ref, err)
	}
	return rec.metadata(), nil
}

func (s *Service) updateMetadata(ctx context.Context, caller Caller, req UpdateMetadataRequest) (*record, error) {
	if err := validateRef(req.Ref); err != nil {
		return nil, err
	}
	l := s.lock(req.Ref.Bucket, req.Ref.Key)
	l.Lock()
	defer l.Unlock()
	nowMS := s.now().UnixMilli()
	old, err := s.resolve(ctx, req.Ref, nowMS)
	if err != nil {
		return nil, err
	}
	if err := s.authorize(ctx, caller, old.Owner, old.ref(), PermWrite); err != nil {
		return nil, err
	}
	if err := checkHash(req.Ref.ContentHash, old.ContentHash); err != nil {
		return nil, err
	}
	changesContent := req.Metadata != nil || req.ContentType != nil ||
		(req.Classification != ClassificationUnspecified && req.Classification != old.Classification)
	if old.retainedAt(nowMS) && changesContent {
		return nil, fmt.Errorf("only the expiry of a retained version can change: %w", old.retainedError())
	}
	next := *old
	if req.Metadata != nil {
		if err := validateMetadata(req.Metadata); err != nil {
			return nil, err
		}
		next.Metadata = cloneMetadata(req.Metadata)
	}
	if req.ContentType != nil {
		if err := validateContentType(*req.ContentType); err != nil {
			return nil, err
		}
		next.ContentType = *req.ContentType
	}
	if req.Classification != ClassificationUnspecified {
		if !req.Classification.valid() {
			return nil, invalid("classification %v is not one of agent_data … compliance", req.Classification)
		}
		next.Classification = req.Classification
	}
	startRetention := next.Classification == Compliance && old.Classification != Compliance
	if err := s.setLifetime(&next, req.TTL, startRetention, nowMS); err != nil {
		return nil, err
	}
	var b kv.Batch
	if old.ExpiresAt != 0 {
		b.Delete(expiryKey(old))
	}
	putRecord(&b, &next)
	if err := s.store.Apply(ctx, &b); err != nil {
		return nil, err
	}
	return &next, nil
}
