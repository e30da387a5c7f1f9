package vault

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// Delegations (seed §5.2) let a delegator hand secrets it controls to
// another agent, and let a runtime fetch secrets for a sandbox. Use limits
// (single_use, max_uses) are enforced atomically: a use is counted under
// the delegation's lock and made durable (fsync'd, together with its
// access record) before any value is returned, so racing callers, and a
// process killed mid-flight, can never get more uses than granted.

// DelegationStatus is a delegation's state (seed DelegationStatus).
type DelegationStatus uint8

// Delegation states. A revoked delegation stays REVOKED; otherwise a spent
// one is EXHAUSTED, then one past its expiry EXPIRED.
const (
	DelegationStatusUnspecified DelegationStatus = iota
	DelegationActive
	DelegationExpired
	DelegationRevoked
	DelegationExhausted
)

var statusNames = [...]string{"DELEGATION_STATUS_UNSPECIFIED", "ACTIVE", "EXPIRED", "REVOKED", "EXHAUSTED"}

// String returns the seed's enum name.
func (st DelegationStatus) String() string {
	if int(st) < len(statusNames) {
		return statusNames[st]
	}
	return fmt.Sprintf("DelegationStatus(%d)", uint8(st))
}

// DelegationRestrictions limit what a delegation allows (seed
// DelegationRestrictions).
type DelegationRestrictions struct {
	// BoundSandbox, when set, is the only sandbox the secrets may be
	// fetched for. Delegated secrets are always bound to the sandbox that
	// fetched them.
	BoundSandbox string
	// SingleUse allows one fetch; it is max_uses 1.
	SingleUse bool
	// MemoryOnly tells the runtime never to write the values to disk.
	// With require_memory_only (the default) every delegation is
	// memory-only whatever this says.
	MemoryOnly bool
	// MaxUses caps the fetches; 0 means no cap within the TTL.
	MaxUses int32
}

// CreateDelegationRequest grants Delegatee access to Secrets (seed
// CreateDelegationRequest; the delegator is the caller).
type CreateDelegationRequest struct {
	Delegatee string
	Secrets   []SecretRef
	// TTL is the delegation's lifetime: 0 means
	// default_delegation_ttl_seconds, and more than
	// max_delegation_ttl_seconds is refused.
	TTL          time.Duration
	Restrictions DelegationRestrictions
}

// Delegation is a delegation record (seed Delegation).
type Delegation struct {
	// ID is 32 hex digits.
	ID           string
	Delegator    string
	Delegatee    string
	Secrets      []SecretRef
	CreatedAt    time.Time
	ExpiresAt    time.Time
	Restrictions DelegationRestrictions
	Status       DelegationStatus
	// Uses counts the fetches made so far.
	Uses      int32
	RevokedAt time.Time
}

// GetDelegatedSecretsRequest asks for secrets to inject into a sandbox
// (seed GetDelegatedSecretsRequest; the requester is the caller).
type GetDelegatedSecretsRequest struct {
	SandboxID string
	Refs      []SecretRef
	// TTL is how long the runtime may hold the values: 0 means the default
	// delegation TTL, more than the maximum is refused, and it is cut to
	// the delegation's and the secrets' own expiry.
	TTL time.Duration
	// DelegationID names the delegation to use. Empty: the requester's own
	// secrets are fetched directly if it may read them all, and otherwise
	// a delegation to the requester covering every reference is chosen.
	DelegationID string
}

// DelegatedSecretsResponse carries the values (seed
// DelegatedSecretsResponse). Destroy the values once injected.
type DelegatedSecretsResponse struct {
	Secrets []DelegatedSecret
	// DelegationID names the delegation the fetch used or, for a direct
	// fetch, the sandbox-bound record it created; revoke it when the
	// sandbox ends.
	DelegationID string
	ExpiresAt    time.Time
}

// Destroy wipes every value.
func (r *DelegatedSecretsResponse) Destroy() {
	for i := range r.Secrets {
		r.Secrets[i].Value.Destroy()
	}
}

// DelegatedSecret is one value for a sandbox (seed DelegatedSecret).
type DelegatedSecret struct {
	Ref       SecretRef
	Value     SecretValue
	Version   uint32
	ExpiresAt time.Time
	// Restrictions are the delegation's, with BoundSandbox set to the
	// sandbox the value was fetched for.
	Restrictions DelegationRestrictions
}

type delegationID [16]byte

// String returns the id as 32 hex digits.
func (id delegationID) String() string { return hex.EncodeToString(id[:]) }

func parseDelegationID(s string) (delegationID, error) {
	var id delegationID
	if len(s) != 2*len(id) {
		return id, invalid("delegation id %s is not %d hex digits", quote(s), 2*len(id))
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, invalid("delegation id %s is not %d hex digits", quote(s), 2*len(id))
	}
	return id, nil
}

func delegationKey(id delegationID) []byte { return append([]byte(prefixDelegations), id[:]...) }

// status derives the state at unix nanosecond now.
func (r *delegationRecord) status(now int64) DelegationStatus {
	switch {
	case r.revoked != 0:
		return DelegationRevoked
	case r.restrictions.MaxUses > 0 && r.uses >= uint32(r.restrictions.MaxUses):
		return DelegationExhausted
	case now >= r.expires:
		return DelegationExpired
	}
	return DelegationActive
}

var statusErrors = map[DelegationStatus]error{
	DelegationExpired:   ErrDelegationExpired,
	DelegationRevoked:   ErrDelegationRevoked,
	DelegationExhausted: ErrDelegationExhausted,
}

func (r *delegationRecord) public(now int64) *Delegation {
	return &Delegation{
		ID: r.id.String(), Delegator: r.delegator, Delegatee: r.delegatee,
		Secrets: slices.Clone(r.refs), CreatedAt: unixTime(r.created), ExpiresAt: unixTime(r.expires),
		Restrictions: r.restrictions, Status: r.status(now), Uses: int32(r.uses), RevokedAt: unixTime(r.revoked),
	}
}

func (r *delegationRecord) covers(refs []SecretRef) bool {
	for _, ref := range refs {
		if !slices.Contains(r.refs, ref) {
			return false
		}
	}
	return true
}

// delegation is one delegation in memory. mu serialises its uses and its
// revocation; rec is replaced, never modified, once published.
type delegation struct {
	mu   sync.Mutex
	rec  *delegationRecord
	gone bool // pruned: the record is deleted
}

func (d *delegation) snapshot() *delegationRecord {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.rec
}

// delegations indexes the delegations by id and by delegatee.
type delegations struct {
	mu          sync.RWMutex
	byID        map[delegationID]*delegation
	byDelegatee map[string][]*delegation
}

func (ds *delegations) reset() {
	ds.mu.Lock()
	ds.byID, ds.byDelegatee = map[delegationID]*delegation{}, map[string][]*delegation{}
	ds.mu.Unlock()
}

func (ds *delegations) add(r *delegationRecord) *delegation {
	d := &delegation{rec: r}
	ds.mu.Lock()
	ds.byID[r.id] = d
	ds.byDelegatee[r.delegatee] = append(ds.byDelegatee[r.delegatee], d)
	ds.mu.Unlock()
	return d
}

func (ds *delegations) get(id delegationID) *delegation {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	return ds.byID[id]
}

func (ds *delegations) to(agent string) []*delegation {
	ds.mu.RLock()
	defer ds.mu.RUnlock()
	return slices.Clone(ds.byDelegatee[agent])
}

func (ds *delegations) remove(d *delegation, r *delegationRecord) {
	ds.mu.Lock()
	defer ds.mu.Unlock()
	delete(ds.byID, r.id)
	list := slices.DeleteFunc(ds.byDelegatee[r.delegatee], func(x *delegation) bool { return x == d })
	if len(list) == 0 {
		delete(ds.byDelegatee, r.delegatee)
	} else {
		ds.byDelegatee[r.delegatee] = list
	}
}

// ttl resolves a requested delegation TTL against the configuration.
func (s *Service) ttl(ttl time.Duration) (time.Duration, error) {
	switch {
	case ttl < 0:
		return 0, invalid("negative TTL")
	case ttl == 0:
		return s.cfg.defaultTTL, nil
	case ttl > s.cfg.maxTTL:
		return 0, invalid("TTL %v exceeds max_delegation_ttl_seconds (%v)", ttl, s.cfg.maxTTL)
	}
	return ttl, nil
}

func (s *Service) newDelegationID() (delegationID, error) {
	var id delegationID
	b, err := s.p.RandomBytes(len(id))
	if err != nil {
		return id, err
	}
	copy(id[:], b)
	return id, nil
}

// CreateDelegation lets req.Delegatee fetch req.Secrets with
// GetDelegatedSecrets within the TTL and restrictions (seed
// CreateDelegation). The delegator needs AccessDelegate on every secret
// (owners have it) and keeps needing it: a fetch re-checks it. Delegated
// access cannot be delegated further.
func (s *Service) CreateDelegation(ctx context.Context, delegator string, req CreateDelegationRequest) (*Delegation, error) {
	const op = "create delegation"
	if err := s.validateRefs(delegator, req.Secrets); err != nil {
		return nil, opError(op, "", err)
	}
	if err := validateID("delegatee", req.Delegatee); err != nil {
		return nil, opError(op, "", err)
	}
	ttl, err := s.ttl(req.TTL)
	if err != nil {
		return nil, opError(op, "", err)
	}
	rs := req.Restrictions
	switch {
	case rs.MaxUses < 0:
		return nil, opError(op, "", invalid("negative max_uses"))
	case rs.SingleUse && rs.MaxUses > 1:
		return nil, opError(op, "", invalid("single_use with max_uses %d", rs.MaxUses))
	case rs.SingleUse:
		rs.MaxUses = 1
	}
	if rs.BoundSandbox != "" {
		if err := validateID("bound sandbox", rs.BoundSandbox); err != nil {
			return nil, opError(op, "", err)
		}
	}
	rs.MemoryOnly = rs.MemoryOnly || s.cfg.memoryOnly
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, "", err)
	}
	defer s.life.RUnlock()
	id, err := s.newDelegationID()
	if err != nil {
		return nil, opError(op, "", err)
	}
	now := s.clock.now()
	evs := make([]AccessEvent, len(req.Secrets))
	for i, ref := range req.Secrets {
		evs[i] = s.event(delegator, OpCreateDelegation, ref)
		evs[i].DelegationID = id.String()
		if _, err := s.readAuthorized(ctx, delegator, ref, AccessDelegate); err != nil {
			return nil, opError(op, ref.String(), s.refused(ctx, evs[i], err))
		}
		evs[i] = withOutcome(evs[i], nil)
	}
	rec := &delegationRecord{
		id: id, delegator: delegator, delegatee: req.Delegatee, refs: slices.Clone(req.Secrets),
		created: now.UnixNano(), expires: now.Add(ttl).UnixNano(), restrictions: rs,
	}
	if err := s.commitDelegation(ctx, rec, evs); err != nil {
		return nil, opError(op, "", err)
	}
	s.dlg.add(rec)
	return rec.public(now.UnixNano()), nil
}

// commitDelegation writes a delegation record with its access records in
// one fsync'd batch.
func (s *Service) commitDelegation(ctx context.Context, rec *delegationRecord, evs []AccessEvent) error {
	var b kv.Batch
	key := delegationKey(rec.id)
	ct, err := s.sealValue(key, encodeDelegation(rec))
	if err != nil {
		return err
	}
	b.Set(key, ct)
	if err := s.audit(ctx, &b, evs...); err != nil {
		return err
	}
	return s.store.Apply(ctx, &b)
}

// RevokeDelegation revokes a delegation (seed RevokeDelegation): later
// fetches fail with ErrDelegationRevoked. Only its delegator may revoke
// it; revoking twice is a no-op. Values already fetched are not recalled —
// the runtime that holds them drops them when told the sandbox ended.
func (s *Service) RevokeDelegation(ctx context.Context, caller, delegationID string) error {
	const op = "revoke delegation"
	if err := validateID("caller", caller); err != nil {
		return opError(op, "", err)
	}
	id, err := parseDelegationID(delegationID)
	if err != nil {
		return opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return opError(op, quote(delegationID), err)
	}
	defer s.life.RUnlock()
	d := s.dlg.get(id)
	if d == nil {
		return opError(op, quote(delegationID), ErrDelegationNotFound)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.rec
	evs := make([]AccessEvent, len(rec.refs))
	for i, ref := range rec.refs {
		evs[i] = s.event(caller, OpRevokeDelegation, ref)
		evs[i].DelegationID = delegationID
	}
	switch {
	case d.gone:
		return opError(op, quote(delegationID), ErrDelegationNotFound)
	case rec.delegator != caller:
		err := &AccessDeniedError{Agent: caller, Ref: rec.refs[0], Access: AccessDelegate, Reason: "only the delegator may revoke a delegation"}
		return opError(op, quote(delegationID), s.refused(ctx, evs[0], err))
	case rec.revoked != 0:
		return nil
	}
	next := *rec
	next.revoked = evs[0].Time.UnixNano()
	for i := range evs {
		evs[i] = withOutcome(evs[i], nil)
	}
	if err := s.commitDelegation(ctx, &next, evs); err != nil {
		return opError(op, quote(delegationID), err)
	}
	d.rec = &next
	return nil
}

// GetDelegation returns a delegation's record and status to its delegator
// or delegatee. It is a lookup: it never counts as a use.
func (s *Service) GetDelegation(ctx context.Context, caller, delegationID string) (*Delegation, error) {
	const op = "get delegation"
	if err := validateID("caller", caller); err != nil {
		return nil, opError(op, "", err)
	}
	id, err := parseDelegationID(delegationID)
	if err != nil {
		return nil, opError(op, "", err)
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, quote(delegationID), err)
	}
	defer s.life.RUnlock()
	d := s.dlg.get(id)
	if d == nil {
		return nil, opError(op, quote(delegationID), ErrDelegationNotFound)
	}
	rec := d.snapshot()
	if caller != rec.delegator && caller != rec.delegatee {
		return nil, opError(op, quote(delegationID), &AccessDeniedError{Agent: caller, Ref: rec.refs[0], Access: AccessMetadata, Reason: "neither delegator nor delegatee"})
	}
	return rec.public(s.clock.now().UnixNano()), nil
}

// GetDelegatedSecrets returns secrets for injection into a sandbox (seed
// GetDelegatedSecrets, §5.4). A requester that may read every reference
// itself gets them directly, and the vault records a sandbox-bound,
// memory-only delegation for the audit trail and for cleanup. Otherwise
// the fetch uses a delegation to the requester covering every reference
// (req.DelegationID, or the usable one expiring first); it counts one use,
// durably, before any value is returned. Values come back bound to the
// sandbox with the delegation's restrictions and an expiry no later than
// the delegation's. Destroy them once injected.
func (s *Service) GetDelegatedSecrets(ctx context.Context, requester string, req GetDelegatedSecretsRequest) (*DelegatedSecretsResponse, error) {
	const op = "get delegated secrets"
	if err := s.validateRefs(requester, req.Refs); err != nil {
		return nil, opError(op, "", err)
	}
	if err := validateID("sandbox id", req.SandboxID); err != nil {
		return nil, opError(op, "", err)
	}
	ttl, err := s.ttl(req.TTL)
	if err != nil {
		return nil, opError(op, "", err)
	}
	var id delegationID
	if req.DelegationID != "" {
		if id, err = parseDelegationID(req.DelegationID); err != nil {
			return nil, opError(op, "", err)
		}
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, "", err)
	}
	defer s.life.RUnlock()
	f := &fetch{s: s, requester: requester, req: req, now: s.clock.now()}
	f.ttlEnd = f.now.Add(ttl).UnixNano()
	f.expires = f.ttlEnd
	var resp *DelegatedSecretsResponse
	if req.DelegationID == "" && f.direct(ctx) {
		resp, err = f.fetchDirect(ctx)
	} else {
		resp, err = f.fetchDelegated(ctx, id)
	}
	if err != nil {
		return nil, opError(op, "", err)
	}
	return resp, nil
}

// fetch is one GetDelegatedSecrets call.
type fetch struct {
	s         *Service
	requester string
	req       GetDelegatedSecretsRequest
	now       time.Time
	ttlEnd    int64 // unix ns: now + TTL
	expires   int64 // ttlEnd cut to this attempt's delegation and versions
	metas     []*metaRecord
}

// events returns one event per reference for the delegation.
func (f *fetch) events(id string) []AccessEvent {
	evs := make([]AccessEvent, len(f.req.Refs))
	for i, ref := range f.req.Refs {
		evs[i] = f.s.event(f.requester, OpDelegatedGet, ref)
		evs[i].DelegationID, evs[i].SandboxID = id, f.req.SandboxID
	}
	return evs
}

// refused records err on every reference and returns it.
func (f *fetch) refused(ctx context.Context, id string, err error) error {
	evs := f.events(id)
	for i := range evs {
		evs[i] = withOutcome(evs[i], err)
	}
	if aerr := f.s.audit(ctx, nil, evs...); aerr != nil {
		return fmt.Errorf("%w; and %w", err, aerr)
	}
	return err
}

// direct reports whether the requester may read every reference itself.
// It is a probe, so its denials are not recorded: the fetch goes on to
// look for a delegation. A missing secret counts as readable when the
// requester may read it once it exists, so the fetch fails with
// ErrNotFound rather than a misleading delegation error.
func (f *fetch) direct(ctx context.Context) bool {
	f.metas = make([]*metaRecord, len(f.req.Refs))
	for i, ref := range f.req.Refs {
		m, err := f.s.readMeta(ctx, ref)
		if err != nil && !errors.Is(err, ErrNotFound) {
			return false
		}
		if f.s.authorize(ctx, f.requester, ref, m, AccessRead) != nil {
			return false
		}
		f.metas[i] = m
	}
	return true
}

// read decrypts the current version of every reference, cutting the
// expiry to theirs. It re-reads metadata the probe did not keep.
func (f *fetch) read(ctx context.Context, rs DelegationRestrictions) ([]DelegatedSecret, error) {
	out := make([]DelegatedSecret, 0, len(f.req.Refs))
	fail := func(err error) ([]DelegatedSecret, error) {
		for _, d := range out {
			d.Value.Destroy()
		}
		return nil, err
	}
	for i, ref := range f.req.Refs {
		m := f.metas[i]
		if m == nil {
			var err error
			if m, err = f.s.readMeta(ctx, ref); err != nil {
				return fail(err)
			}
		}
		sec, err := f.s.readVersion(ctx, m, 0, f.now)
		if err != nil {
			return fail(err)
		}
		if e := sec.ExpiresAt; !e.IsZero() && e.UnixNano() < f.expires {
			f.expires = e.UnixNano()
		}
		out = append(out, DelegatedSecret{Ref: ref, Value: sec.Value, Version: sec.Version, Restrictions: rs})
	}
	return out, nil
}

// respond stamps the final expiry on every value.
func (f *fetch) respond(id delegationID, secrets []DelegatedSecret) *DelegatedSecretsResponse {
	exp := unixTime(f.expires)
	for i := range secrets {
		secrets[i].ExpiresAt = exp
		secrets[i].Restrictions.BoundSandbox = f.req.SandboxID
	}
	return &DelegatedSecretsResponse{Secrets: secrets, DelegationID: id.String(), ExpiresAt: exp}
}

func successes(evs []AccessEvent, secrets []DelegatedSecret) []AccessEvent {
	for i := range evs {
		evs[i] = withOutcome(evs[i], nil)
		evs[i].Version = secrets[i].Version
	}
	return evs
}

// fetchDirect serves a requester's own secrets and records a sandbox-bound
// delegation to itself.
func (f *fetch) fetchDirect(ctx context.Context) (*DelegatedSecretsResponse, error) {
	rs := DelegationRestrictions{BoundSandbox: f.req.SandboxID, MemoryOnly: true}
	secrets, err := f.read(ctx, rs)
	if err != nil {
		return nil, f.refused(ctx, "", err)
	}
	id, err := f.s.newDelegationID()
	if err != nil {
		return nil, err
	}
	rec := &delegationRecord{
		id: id, delegator: f.requester, delegatee: f.requester, refs: slices.Clone(f.req.Refs),
		created: f.now.UnixNano(), expires: f.expires, restrictions: rs, uses: 1,
	}
	if err := f.s.commitDelegation(ctx, rec, successes(f.events(id.String()), secrets)); err != nil {
		for _, d := range secrets {
			d.Value.Destroy()
		}
		return nil, err
	}
	f.s.dlg.add(rec)
	return f.respond(id, secrets), nil
}

// fetchDelegated serves the request through a delegation, counting a use.
func (f *fetch) fetchDelegated(ctx context.Context, id delegationID) (*DelegatedSecretsResponse, error) {
	// Each pass either succeeds, fails, or finds that its delegation was
	// spent (or revoked) by a racing call; delegations never become
	// usable again, so the loop ends.
	for {
		d, err := f.choose(id)
		if err != nil {
			var rid string
			if d != nil {
				rid = d.snapshot().id.String()
			}
			return nil, f.refused(ctx, rid, err)
		}
		rec := d.snapshot()
		resp, retry, err := f.use(ctx, d, rec)
		if !retry {
			return resp, err
		}
	}
}

// use reads the values, then takes one use of d under its lock. retry
// reports that d stopped being usable in between.
func (f *fetch) use(ctx context.Context, d *delegation, seen *delegationRecord) (resp *DelegatedSecretsResponse, retry bool, err error) {
	rid := seen.id.String()
	f.metas = make([]*metaRecord, len(f.req.Refs))
	// The delegator must still be allowed to delegate every secret: a
	// delegation never outlives its delegator's own access.
	for i, ref := range f.req.Refs {
		m, err := f.s.readMeta(ctx, ref)
		if err == nil {
			err = f.s.authorize(ctx, seen.delegator, ref, m, AccessDelegate)
		}
		if err != nil {
			return nil, false, f.refused(ctx, rid, err)
		}
		f.metas[i] = m
	}
	f.expires = min(f.ttlEnd, seen.expires)
	// Values are read before the use is taken, so a secret that cannot be
	// read costs no use.
	secrets, err := f.read(ctx, seen.restrictions)
	if err != nil {
		return nil, false, f.refused(ctx, rid, err)
	}
	destroy := func() {
		for _, s := range secrets {
			s.Value.Destroy()
		}
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rec := d.rec
	if d.gone {
		destroy()
		return nil, false, f.refused(ctx, rid, ErrDelegationNotFound)
	}
	if st := rec.status(f.now.UnixNano()); st != DelegationActive {
		destroy()
		if f.req.DelegationID == "" {
			return nil, true, nil
		}
		return nil, false, f.refused(ctx, rid, statusErrors[st])
	}
	next := *rec
	next.uses++
	if err := f.s.commitDelegation(ctx, &next, successes(f.events(rid), secrets)); err != nil {
		destroy()
		return nil, false, err
	}
	d.rec = &next
	return f.respond(rec.id, secrets), false, nil
}

// choose finds the delegation to use: the one named, or the usable
// delegation to the requester covering every reference that expires
// first. When none is usable, the error explains the most recent
// covering delegation (expired, exhausted, revoked, wrong sandbox), or
// that none covers the request; the delegation it explains is returned
// with it.
func (f *fetch) choose(id delegationID) (*delegation, error) {
	now := f.now.UnixNano()
	deny := func(reason string) error {
		return &AccessDeniedError{Agent: f.requester, Ref: f.req.Refs[0], Access: AccessRead, Reason: reason}
	}
	check := func(r *delegationRecord) error {
		switch {
		case r.delegatee != f.requester:
			return deny("not the delegatee of the delegation")
		case !r.covers(f.req.Refs):
			return deny("a reference is not covered by the delegation")
		case r.restrictions.BoundSandbox != "" && r.restrictions.BoundSandbox != f.req.SandboxID:
			return deny("the delegation is bound to another sandbox")
		}
		return statusErrors[r.status(now)]
	}
	if id != (delegationID{}) {
		d := f.s.dlg.get(id)
		if d == nil {
			return nil, ErrDelegationNotFound
		}
		return d, check(d.snapshot())
	}
	var best, latest *delegation
	var bestExp, latestCreated int64
	var latestErr error
	for _, d := range f.s.dlg.to(f.requester) {
		r := d.snapshot()
		if !r.covers(f.req.Refs) {
			continue
		}
		err := check(r)
		if err == nil && (best == nil || r.expires < bestExp) {
			best, bestExp = d, r.expires
		}
		if err != nil && (latest == nil || r.created > latestCreated) {
			latest, latestCreated, latestErr = d, r.created, err
		}
	}
	switch {
	case best != nil:
		return best, nil
	case latest != nil:
		return latest, latestErr
	}
	return nil, deny("no delegation to the requester covers the references")
}

// pruneDelegations deletes delegation records that expired more than
// delegation_retention ago, in one commit.
func (s *Service) pruneDelegations(ctx context.Context, now time.Time) error {
	cutoff := now.Add(-s.cfg.DelegationRetention).UnixNano()
	s.dlg.mu.RLock()
	var old []*delegation
	for _, d := range s.dlg.byID {
		old = append(old, d)
	}
	s.dlg.mu.RUnlock()
	var b kv.Batch
	var pruned []*delegation
	for _, d := range old {
		d.mu.Lock()
		if !d.gone && d.rec.expires <= cutoff {
			// Marked first, so a revocation racing the commit cannot write
			// the record back.
			d.gone = true
			b.Delete(delegationKey(d.rec.id))
			pruned = append(pruned, d)
		}
		d.mu.Unlock()
	}
	if err := s.store.Apply(ctx, &b); err != nil {
		for _, d := range pruned {
			d.mu.Lock()
			d.gone = false
			d.mu.Unlock()
		}
		return err
	}
	for _, d := range pruned {
		s.dlg.remove(d, d.snapshot())
	}
	return nil
}
