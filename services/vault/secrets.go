package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/secret"
)

// Secrets follow HashiCorp Vault's KV v2 model: a metadata record (type,
// labels, rotation policy, owner, and the history of every kept version)
// plus one immutable record per version holding the encrypted value.
// Writing never rewrites a version; it adds the next one, and versions past
// max_versions are destroyed oldest first.

func refKey(prefix string, ref SecretRef) []byte {
	k := make([]byte, 0, len(prefix)+len(ref.Path)+1+len(ref.Name)+5)
	k = append(k, prefix...)
	k = append(append(k, ref.Path...), 0)
	return append(k, ref.Name...)
}

func metaKey(ref SecretRef) []byte { return refKey(prefixMeta, ref) }

func valueKey(ref SecretRef, version uint32) []byte {
	return binary.BigEndian.AppendUint32(append(refKey(prefixValue, ref), 0), version)
}

// readMeta returns the secret's metadata, or an error matching
// ErrNotFound (with a nil record) or ErrCorrupt.
func (s *Service) readMeta(ctx context.Context, ref SecretRef) (*metaRecord, error) {
	key := metaKey(ref)
	ct, err := s.store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		return nil, fmt.Errorf("%w: no secret %s", ErrNotFound, ref)
	}
	if err != nil {
		return nil, err
	}
	m, err := openRecord(s, key, ct, decodeMeta)
	if err != nil {
		return nil, err
	}
	if m.ref != ref {
		return nil, &corruptError{key: key, cause: errors.New("reference differs from its key")}
	}
	return m, nil
}

// readAuthorized reads the metadata and checks caller's access: the order
// every operation on one secret starts with. A caller without access
// learns nothing, not even whether the secret exists.
func (s *Service) readAuthorized(ctx context.Context, caller string, ref SecretRef, access Access) (*metaRecord, error) {
	m, err := s.readMeta(ctx, ref)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, err
	}
	if aerr := s.authorize(ctx, caller, ref, m, access); aerr != nil {
		return nil, aerr
	}
	return m, err
}

// readVersion decrypts version v (0: the current one) of the secret m
// describes, checking that it is live and unexpired at now.
func (s *Service) readVersion(ctx context.Context, m *metaRecord, v uint32, now time.Time) (*Secret, error) {
	if v == 0 {
		v = m.current
	}
	i := m.find(v)
	if i < 0 {
		return nil, fmt.Errorf("%w: %s has no version %d", ErrNotFound, m.ref, v)
	}
	vr := m.versions[i]
	switch {
	case vr.destroyed:
		return nil, fmt.Errorf("%w: %w: %s version %d", ErrNotFound, ErrSecretDestroyed, m.ref, v)
	case vr.deleted != 0:
		return nil, fmt.Errorf("%w: %w: %s version %d", ErrNotFound, ErrSecretDeleted, m.ref, v)
	case vr.expires != 0 && now.UnixNano() >= vr.expires:
		return nil, fmt.Errorf("%w: %s version %d", ErrSecretExpired, m.ref, v)
	}
	key := valueKey(m.ref, v)
	ct, err := s.store.Get(ctx, key)
	if errors.Is(err, kv.ErrNotFound) {
		// A concurrent write pruned the version after m was read.
		return nil, fmt.Errorf("%w: %s version %d", ErrNotFound, m.ref, v)
	}
	if err != nil {
		return nil, err
	}
	pt, err := s.openValue(key, ct)
	if err != nil {
		return nil, err
	}
	return &Secret{
		Ref: m.ref, Value: secret.Wrap(pt), Version: v, Metadata: m.meta.clone(),
		CreatedAt: unixTime(vr.created), CreatedBy: vr.createdBy, ExpiresAt: unixTime(vr.expires),
	}, nil
}

// GetSecret returns a version of a secret — the current one unless
// req.Version names another — if caller may read it (seed GetSecret). The
// read is recorded before the value is returned; if it cannot be, nothing
// is returned. Destroy the value when done.
func (s *Service) GetSecret(ctx context.Context, caller string, req GetSecretRequest) (*Secret, error) {
	const op = "get secret"
	if err := validateCall(caller, req.Ref); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	sec, ev, err := s.getOne(ctx, caller, OpGet, req.Ref, req.Version)
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	if err := s.auditRead(ctx, ev); err != nil {
		sec.Destroy()
		return nil, opError(op, req.Ref.String(), err)
	}
	return sec, nil
}

// getOne reads one secret for caller and returns the event to record,
// of operation op.
func (s *Service) getOne(ctx context.Context, caller string, op Operation, ref SecretRef, version uint32) (*Secret, AccessEvent, error) {
	ev := s.event(caller, op, ref)
	ev.Version = version
	m, err := s.readAuthorized(ctx, caller, ref, AccessRead)
	if err != nil {
		return nil, ev, err
	}
	sec, err := s.readVersion(ctx, m, version, ev.Time)
	if err != nil {
		return nil, ev, err
	}
	ev.Version = sec.Version
	return sec, withOutcome(ev, nil), nil
}

// GetSecrets returns the current versions of several secrets, in request
// order (seed GetSecrets). It is all or nothing: if any secret cannot be
// read, no value is returned and the error names the first failure. The
// reads are recorded in one commit.
func (s *Service) GetSecrets(ctx context.Context, caller string, req GetSecretsRequest) (*GetSecretsResponse, error) {
	const op = "get secrets"
	if err := s.validateRefs(caller, req.Refs); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, "", err)
	}
	defer s.life.RUnlock()
	resp := &GetSecretsResponse{Secrets: make([]Secret, 0, len(req.Refs))}
	evs := make([]AccessEvent, 0, len(req.Refs))
	for _, ref := range req.Refs {
		sec, ev, err := s.getOne(ctx, caller, OpGet, ref, 0)
		if err != nil {
			resp.Destroy()
			return nil, opError(op, ref.String(), s.refused(ctx, ev, err))
		}
		resp.Secrets = append(resp.Secrets, *sec)
		evs = append(evs, ev)
	}
	if err := s.auditRead(ctx, evs...); err != nil {
		resp.Destroy()
		return nil, opError(op, "", err)
	}
	return resp, nil
}

// GetSecretMetadata returns a secret's metadata and version history,
// without values. It needs AccessMetadata and never counts as a use of
// anything.
func (s *Service) GetSecretMetadata(ctx context.Context, caller string, ref SecretRef) (*SecretInfo, error) {
	const op = "get secret metadata"
	if err := validateCall(caller, ref); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, ref.String(), err)
	}
	defer s.life.RUnlock()
	ev := s.event(caller, OpMetadata, ref)
	m, err := s.readAuthorized(ctx, caller, ref, AccessMetadata)
	if err != nil {
		return nil, opError(op, ref.String(), s.refused(ctx, ev, err))
	}
	if err := s.auditRead(ctx, withOutcome(ev, nil)); err != nil {
		return nil, opError(op, ref.String(), err)
	}
	info := m.info()
	return &info, nil
}

// CreateSecret creates a secret with its first version (seed
// CreateSecret). An agent may create secrets in its own namespace
// ("agents/<caller>/…"), which it then owns; anywhere else the Authorizer
// must grant AccessWrite, and the creator becomes the owner. The response
// carries no value.
func (s *Service) CreateSecret(ctx context.Context, caller string, req CreateSecretRequest) (*Secret, error) {
	const op = "create secret"
	meta := req.Metadata.clone()
	if err := s.validateWrite(caller, req.Ref, req.Value, req.TTL, &meta); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	out, err := s.write(ctx, writeRequest{op: OpCreate, caller: caller, ref: req.Ref, value: req.Value, meta: &meta, ttl: req.TTL, create: true})
	if err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	return out, nil
}

// UpdateSecret writes a new version of a secret (seed UpdateSecret), with
// KV v2's check-and-set (req.CAS); with CAS 0 it creates the secret if it
// does not exist. The response carries no value.
func (s *Service) UpdateSecret(ctx context.Context, caller string, req UpdateSecretRequest) (*Secret, error) {
	const op = "update secret"
	var meta *SecretMetadata
	if req.Metadata != nil {
		m := req.Metadata.clone()
		meta = &m
	}
	if err := s.validateWrite(caller, req.Ref, req.Value, req.TTL, meta); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	out, err := s.write(ctx, writeRequest{op: OpUpdate, caller: caller, ref: req.Ref, value: req.Value, meta: meta, ttl: req.TTL, cas: req.CAS})
	if err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	return out, nil
}

func validateCall(caller string, ref SecretRef) error {
	if err := validateID("caller", caller); err != nil {
		return err
	}
	return ref.validate()
}

// validateRefs checks a call's reference list: 1..max_refs, valid, no
// duplicates.
func (s *Service) validateRefs(caller string, refs []SecretRef) error {
	if err := validateID("caller", caller); err != nil {
		return err
	}
	if len(refs) == 0 || len(refs) > s.cfg.MaxRefs {
		return invalid("%d references, want 1..%d", len(refs), s.cfg.MaxRefs)
	}
	seen := make(map[SecretRef]bool, len(refs))
	for _, r := range refs {
		if err := r.validate(); err != nil {
			return err
		}
		if seen[r] {
			return invalid("%s is listed twice", r)
		}
		seen[r] = true
	}
	return nil
}

func (s *Service) validateWrite(caller string, ref SecretRef, value SecretValue, ttl time.Duration, meta *SecretMetadata) error {
	if err := validateCall(caller, ref); err != nil {
		return err
	}
	if err := s.validateValue(value); err != nil {
		return err
	}
	if ttl < 0 {
		return invalid("negative TTL")
	}
	if meta != nil {
		return meta.validate(&s.cfg)
	}
	return nil
}

func (s *Service) validateValue(v SecretValue) error {
	if n := v.Len(); n == 0 || n > s.cfg.MaxValueBytes {
		return invalid("value is %d bytes, want 1..%d", n, s.cfg.MaxValueBytes)
	}
	return nil
}

// writeRequest is one new version: from CreateSecret, UpdateSecret,
// RotateSecret or the scheduler.
type writeRequest struct {
	op     Operation
	caller string
	ref    SecretRef
	value  SecretValue
	// meta replaces the metadata (nil keeps it); required to create.
	meta *SecretMetadata
	ttl  time.Duration
	cas  *uint32
	// create refuses an existing secret with ErrAlreadyExists.
	create bool
	// system skips authorization: the scheduler's own rotations.
	system bool
}

// write adds a version under the write lock, so the check-and-set and the
// version numbering are atomic, and commits the metadata, the value and
// the access record in one batch.
func (s *Service) write(ctx context.Context, w writeRequest) (*Secret, error) {
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ev := s.event(w.caller, w.op, w.ref)
	m, err := s.readMeta(ctx, w.ref)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return nil, s.refused(ctx, ev, err)
	}
	if !w.system {
		if err := s.authorize(ctx, w.caller, w.ref, m, AccessWrite); err != nil {
			return nil, s.refused(ctx, ev, err)
		}
	}
	next, err := s.nextVersion(w, m, ev.Time)
	if err != nil {
		return nil, s.refused(ctx, ev, err)
	}
	ev.Version = next.current
	var b kv.Batch
	// Versions past max_versions are destroyed, oldest first.
	for len(next.versions) > s.cfg.MaxVersions {
		b.Delete(valueKey(w.ref, next.versions[0].version))
		next.versions = next.versions[1:]
	}
	vk := valueKey(w.ref, next.current)
	ct, err := s.sealValue(vk, w.value.Expose())
	if err != nil {
		return nil, err
	}
	b.Set(vk, ct)
	if err := s.commitMeta(ctx, &b, next, withOutcome(ev, nil)); err != nil {
		return nil, err
	}
	vr := next.versions[len(next.versions)-1]
	return &Secret{
		Ref: w.ref, Version: next.current, Metadata: next.meta.clone(),
		CreatedAt: unixTime(vr.created), CreatedBy: vr.createdBy, ExpiresAt: unixTime(vr.expires),
	}, nil
}

// nextVersion applies w's preconditions to the current record m (nil: no
// secret) and returns the record with the new version appended.
func (s *Service) nextVersion(w writeRequest, m *metaRecord, now time.Time) (*metaRecord, error) {
	var current uint32
	if m != nil {
		current = m.current
	}
	switch {
	case w.create && m != nil:
		return nil, fmt.Errorf("%w: %s", ErrAlreadyExists, w.ref)
	case w.cas != nil && *w.cas != current:
		return nil, &CASMismatchError{Ref: w.ref, Expected: *w.cas, Current: current}
	case m == nil && !w.create && w.cas == nil:
		return nil, fmt.Errorf("%w: no secret %s (create it, or update with CAS 0)", ErrNotFound, w.ref)
	case m == nil && w.meta == nil:
		return nil, invalid("creating %s needs its metadata", w.ref)
	}
	ns := now.UnixNano()
	var next *metaRecord
	if m == nil {
		owner := namespaceOwner(w.ref.Path)
		if owner == "" {
			owner = w.caller
		}
		next = &metaRecord{ref: w.ref, owner: owner, meta: *w.meta, created: ns}
	} else {
		next = m.clone()
		if w.meta != nil {
			if w.meta.Type != m.meta.Type {
				return nil, invalid("the type of %s is %v and cannot change", w.ref, m.meta.Type)
			}
			next.meta = *w.meta
		}
	}
	next.current++
	next.updated = ns
	vr := versionRecord{version: next.current, created: ns, createdBy: w.caller}
	if w.ttl > 0 {
		vr.expires = ns + int64(w.ttl)
	}
	next.versions = append(next.versions, vr)
	return next, nil
}

// commitMeta adds the encrypted metadata and the access records to b and
// commits it, then refreshes the rotation schedule.
func (s *Service) commitMeta(ctx context.Context, b *kv.Batch, m *metaRecord, evs ...AccessEvent) error {
	mk := metaKey(m.ref)
	ct, err := s.sealValue(mk, encodeMeta(m))
	if err != nil {
		return err
	}
	b.Set(mk, ct)
	if err := s.audit(ctx, b, evs...); err != nil {
		return err
	}
	if err := s.store.Apply(ctx, b); err != nil {
		return err
	}
	s.schedule.update(m)
	return nil
}

// DeleteSecret deletes versions of a secret (seed DeleteSecret), KV v2
// style. Without Destroy it is a soft delete: the versions (by default the
// current one) stop being readable, with ErrSecretDeleted, until
// UndeleteSecret restores them. With Destroy their values are erased for
// good; with Destroy and no versions the whole secret is removed —
// metadata, every version and its rotation schedule — and its name can be
// created anew. Delegations over a removed secret fail with ErrNotFound.
// The access log is kept.
func (s *Service) DeleteSecret(ctx context.Context, caller string, req DeleteSecretRequest) (*DeleteResponse, error) {
	const op = "delete secret"
	if err := validateCall(caller, req.Ref); err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	evOp := OpDelete
	if req.Destroy {
		evOp = OpDestroy
	}
	ev := s.event(caller, evOp, req.Ref)
	m, err := s.readAuthorized(ctx, caller, req.Ref, AccessWrite)
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	var b kv.Batch
	if req.Destroy && len(req.Versions) == 0 {
		for _, v := range m.versions {
			b.Delete(valueKey(m.ref, v.version))
		}
		b.Delete(metaKey(m.ref))
		if err := s.audit(ctx, &b, withOutcome(ev, nil)); err != nil {
			return nil, opError(op, req.Ref.String(), err)
		}
		if err := s.store.Apply(ctx, &b); err != nil {
			return nil, opError(op, req.Ref.String(), err)
		}
		s.schedule.remove(m.ref)
		return &DeleteResponse{Purged: true}, nil
	}
	versions := req.Versions
	if len(versions) == 0 {
		versions = []uint32{m.current}
	}
	next, evs, err := s.markVersions(m, versions, ev, func(vr *versionRecord) bool {
		switch {
		case vr.destroyed:
			return false
		case req.Destroy:
			vr.destroyed = true
			b.Delete(valueKey(m.ref, vr.version))
		case vr.deleted != 0:
			return false
		default:
			vr.deleted, vr.deletedBy = ev.Time.UnixNano(), caller
		}
		return true
	})
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	if err := s.commitMeta(ctx, &b, next, evs...); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	resp := &DeleteResponse{}
	for _, e := range evs {
		resp.Versions = append(resp.Versions, e.Version)
	}
	return resp, nil
}

// UndeleteSecret restores soft-deleted versions. Destroyed versions
// cannot be restored (ErrSecretDestroyed); live ones are left as they
// are.
func (s *Service) UndeleteSecret(ctx context.Context, caller string, req UndeleteSecretRequest) ([]uint32, error) {
	const op = "undelete secret"
	if err := validateCall(caller, req.Ref); err != nil {
		return nil, opError(op, "", err)
	}
	if len(req.Versions) == 0 {
		return nil, opError(op, req.Ref.String(), invalid("no versions"))
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	s.writeMu.Lock()
	defer s.writeMu.Unlock()
	ev := s.event(caller, OpUndelete, req.Ref)
	m, err := s.readAuthorized(ctx, caller, req.Ref, AccessWrite)
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	var destroyed uint32
	next, evs, err := s.markVersions(m, req.Versions, ev, func(vr *versionRecord) bool {
		if vr.destroyed {
			destroyed = vr.version
		}
		if vr.deleted == 0 || vr.destroyed {
			return false
		}
		vr.deleted, vr.deletedBy = 0, ""
		return true
	})
	if err == nil && destroyed != 0 {
		err = fmt.Errorf("%w: %w: %s version %d", ErrNotFound, ErrSecretDestroyed, req.Ref, destroyed)
	}
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	var b kv.Batch
	if err := s.commitMeta(ctx, &b, next, evs...); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	out := make([]uint32, len(evs))
	for i, e := range evs {
		out[i] = e.Version
	}
	return out, nil
}

// markVersions applies change to each listed version of a copy of m and
// returns it with one event per version change reports as changed. Every
// version must exist (be kept); duplicates are refused.
func (s *Service) markVersions(m *metaRecord, versions []uint32, ev AccessEvent, change func(*versionRecord) bool) (*metaRecord, []AccessEvent, error) {
	if len(versions) > s.cfg.MaxVersions {
		return nil, nil, invalid("%d versions, at most %d are kept", len(versions), s.cfg.MaxVersions)
	}
	next := m.clone()
	sorted := slices.Clone(versions)
	slices.Sort(sorted)
	var evs []AccessEvent
	for i, v := range sorted {
		if i > 0 && v == sorted[i-1] {
			return nil, nil, invalid("version %d is listed twice", v)
		}
		j := next.find(v)
		if j < 0 {
			return nil, nil, fmt.Errorf("%w: %s has no version %d", ErrNotFound, m.ref, v)
		}
		if change(&next.versions[j]) {
			e := withOutcome(ev, nil)
			e.Version = v
			evs = append(evs, e)
		}
	}
	next.updated = ev.Time.UnixNano()
	if len(evs) == 0 {
		// Nothing changed; the access is still recorded.
		evs = []AccessEvent{withOutcome(ev, nil)}
	}
	return next, evs, nil
}

// ListSecrets lists the secrets under a path, in reference order, with
// their metadata and never a value. Secrets the caller may not see
// (AccessMetadata) are left out; the listing itself is recorded once, on
// the path.
func (s *Service) ListSecrets(ctx context.Context, caller string, req ListSecretsRequest) (*ListSecretsResponse, error) {
	const op = "list secrets"
	if err := validateID("caller", caller); err != nil {
		return nil, opError(op, "", err)
	}
	if err := validatePath(req.Path); err != nil {
		return nil, opError(op, "", err)
	}
	limit := req.Limit
	switch {
	case limit < 0 || limit > 1000:
		return nil, opError(op, quote(req.Path), invalid("limit %d outside 0..1000", limit))
	case limit == 0:
		limit = 100
	}
	var after []byte
	if req.After != (SecretRef{}) {
		if err := req.After.validate(); err != nil {
			return nil, opError(op, quote(req.Path), err)
		}
		after = metaKey(req.After)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, quote(req.Path), err)
	}
	defer s.life.RUnlock()
	ev := s.event(caller, OpList, SecretRef{Path: req.Path})
	resp := &ListSecretsResponse{}
	errFull := errors.New("page full")
	// Direct children ("<path>\x00<name>") sort before descendants
	// ("<path>/…"), so the two scans together are in key order.
	prefixes := [][]byte{append([]byte(prefixMeta+req.Path), 0)}
	if req.Recursive {
		prefixes = append(prefixes, []byte(prefixMeta+req.Path+"/"))
	}
	for _, p := range prefixes {
		err := s.store.Scan(ctx, p, func(key, val []byte) error {
			if after != nil && bytes.Compare(key, after) <= 0 {
				return nil
			}
			m, err := openRecord(s, key, val, decodeMeta)
			if err != nil {
				return err
			}
			if s.authorize(ctx, caller, m.ref, m, AccessMetadata) != nil {
				return nil
			}
			if len(resp.Secrets) == limit {
				resp.Next = resp.Secrets[limit-1].Ref
				return errFull
			}
			resp.Secrets = append(resp.Secrets, m.info())
			return nil
		})
		if errors.Is(err, errFull) {
			break
		}
		if err != nil {
			return nil, opError(op, quote(req.Path), s.refused(ctx, ev, err))
		}
	}
	if err := s.auditRead(ctx, withOutcome(ev, nil)); err != nil {
		return nil, opError(op, quote(req.Path), err)
	}
	return resp, nil
}
