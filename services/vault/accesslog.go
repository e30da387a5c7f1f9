package vault

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

// Operation is what an access did.
type Operation uint8

// Operations, one per service call that touches a secret.
const (
	OpGet Operation = iota + 1
	OpCreate
	OpUpdate
	OpDelete
	OpDestroy
	OpUndelete
	OpMetadata
	OpList
	OpRotate
	OpRotationSchedule
	OpCreateDelegation
	OpRevokeDelegation
	OpDelegatedGet
	OpReadAccessLog
	// OpMAC is a use of a secret as a MAC key (MAC): the value never
	// leaves the vault.
	OpMAC
)

var opNames = [...]string{"", "get", "create", "update", "delete", "destroy", "undelete", "metadata", "list",
	"rotate", "rotation_schedule", "create_delegation", "revoke_delegation", "delegated_get", "read_access_log", "mac"}

// String returns the operation's snake_case name.
func (o Operation) String() string {
	if o.valid() {
		return opNames[o]
	}
	return fmt.Sprintf("operation(%d)", uint8(o))
}

func (o Operation) valid() bool { return o >= OpGet && o <= OpMAC }

// Outcome is how an access ended.
type Outcome uint8

// Outcomes.
const (
	// OutcomeAllowed: the access was authorized and carried out.
	OutcomeAllowed Outcome = iota + 1
	// OutcomeDenied: the caller was not authorized (or no delegation
	// covered the request).
	OutcomeDenied
	// OutcomeFailed: authorized, but it failed: not found, expired, a
	// check-and-set mismatch, a spent delegation, a corrupt record…
	OutcomeFailed
)

var outcomeNames = [...]string{"", "allowed", "denied", "failed"}

// String returns "allowed", "denied" or "failed".
func (o Outcome) String() string {
	if o.valid() {
		return outcomeNames[o]
	}
	return fmt.Sprintf("outcome(%d)", uint8(o))
}

func (o Outcome) valid() bool { return o >= OutcomeAllowed && o <= OutcomeFailed }

// AccessEvent records one access to one secret: who, what, which, when
// and how it ended — never a value. A call touching several secrets
// records one event per secret.
type AccessEvent struct {
	Time      time.Time
	Agent     string
	Operation Operation
	// Ref is the secret; for OpList, Name is empty and Path is the listed
	// path.
	Ref SecretRef
	// Version is the version read or written, when there is one.
	Version      uint32
	DelegationID string
	SandboxID    string
	Outcome      Outcome
	// Reason is a stable code for a denied or failed access
	// ("access_denied", "not_found", "delegation_exhausted", …; see
	// ErrorCode); empty when allowed.
	Reason string
}

// AccessRecorder receives every access the vault records. It is called
// synchronously, before the vault returns a value or commits a change, and
// an error makes the vault refuse the access with ErrAuditFailed: like
// HashiCorp Vault, this vault does not serve what it cannot record. The
// audit service implements it with its Merkle log; the default is the
// vault's own durable log in the node's store.
type AccessRecorder interface {
	RecordAccess(ctx context.Context, ev AccessEvent) error
}

// AccessLogReader is implemented by recorders that can answer
// GetAccessLog; with a recorder that cannot, GetAccessLog fails with
// ErrUnavailable.
type AccessLogReader interface {
	ReadAccessLog(ctx context.Context, req GetAccessLogRequest) (*AccessLogResponse, error)
}

// errorCodes maps errors to AccessEvent.Reason codes; the first match
// wins, so the more specific sentinels come first.
var errorCodes = []struct {
	err  error
	code string
}{
	{ErrAccessDenied, "access_denied"},
	{ErrSecretDeleted, "deleted"},
	{ErrSecretDestroyed, "destroyed"},
	{ErrNotFound, "not_found"},
	{ErrAlreadyExists, "already_exists"},
	{ErrCASMismatch, "cas_mismatch"},
	{ErrSecretExpired, "expired"},
	{ErrDelegationNotFound, "delegation_not_found"},
	{ErrDelegationExpired, "delegation_expired"},
	{ErrDelegationExhausted, "delegation_exhausted"},
	{ErrDelegationRevoked, "delegation_revoked"},
	{ErrCorrupt, "corrupt"},
	{ErrNoGenerator, "no_generator"},
	{ErrInvalidArgument, "invalid_argument"},
	{ErrAuditFailed, "audit_failed"},
	{context.Canceled, "canceled"},
	{context.DeadlineExceeded, "timeout"},
}

// ErrorCode returns the stable code the access log uses for err
// ("not_found", "delegation_expired", …), "internal" for an error that
// matches no sentinel, and "" for nil.
func ErrorCode(err error) string {
	if err == nil {
		return ""
	}
	for _, c := range errorCodes {
		if errors.Is(err, c.err) {
			return c.code
		}
	}
	return "internal"
}

// event starts an access event stamped now.
func (s *Service) event(agent string, op Operation, ref SecretRef) AccessEvent {
	return AccessEvent{Time: s.clock.now().UTC(), Agent: agent, Operation: op, Ref: ref}
}

// withOutcome sets the event's outcome from err.
func withOutcome(ev AccessEvent, err error) AccessEvent {
	switch {
	case err == nil:
		ev.Outcome = OutcomeAllowed
	case errors.Is(err, ErrAccessDenied):
		ev.Outcome, ev.Reason = OutcomeDenied, ErrorCode(err)
	default:
		ev.Outcome, ev.Reason = OutcomeFailed, ErrorCode(err)
	}
	return ev
}

// audit records events before the access takes effect. b is the batch of
// the change the access makes, or nil for a read: the vault's own log
// adds the events to b, so they commit atomically with the change (and a
// change never commits unrecorded); for a read it commits them, fsync'd,
// before the caller returns the value. An external recorder gets them now.
// Any failure is ErrAuditFailed.
func (s *Service) audit(ctx context.Context, b *kv.Batch, evs ...AccessEvent) error {
	if r := s.cfg.Recorder; r != nil {
		for _, ev := range evs {
			if err := r.RecordAccess(ctx, ev); err != nil {
				return fmt.Errorf("%w: %w", ErrAuditFailed, err)
			}
		}
		return nil
	}
	own := b == nil
	if own {
		b = &kv.Batch{}
	}
	for i := range evs {
		key := s.logKey(&evs[i])
		ct, err := s.sealValue(key, encodeEvent(&evs[i]))
		if err != nil {
			return fmt.Errorf("%w: %w", ErrAuditFailed, err)
		}
		b.Set(key, ct)
	}
	if own {
		if err := s.store.Apply(ctx, b); err != nil {
			return fmt.Errorf("%w: %w", ErrAuditFailed, err)
		}
	}
	return nil
}

// auditRead records a read. An allowed read is skipped when
// audit_all_access is off; denials and failures never are.
func (s *Service) auditRead(ctx context.Context, evs ...AccessEvent) error {
	if !s.cfg.auditAll {
		n := 0
		for _, ev := range evs {
			if ev.Outcome != OutcomeAllowed {
				evs[n] = ev
				n++
			}
		}
		evs = evs[:n]
	}
	if len(evs) == 0 {
		return nil
	}
	return s.audit(ctx, nil, evs...)
}

// refused records a denied or failed access and returns err, joined with
// the audit failure if the record could not be written: the access is
// refused either way.
func (s *Service) refused(ctx context.Context, ev AccessEvent, err error) error {
	if aerr := s.audit(ctx, nil, withOutcome(ev, err)); aerr != nil {
		return fmt.Errorf("%w; and %w", err, aerr)
	}
	return err
}

// logPrefix is the key prefix of one secret's events.
func logPrefix(ref SecretRef) []byte {
	k := make([]byte, 0, len(prefixLog)+len(ref.Path)+len(ref.Name)+2)
	k = append(k, prefixLog...)
	k = append(append(k, ref.Path...), 0)
	return append(append(k, ref.Name...), 0)
}

// logSuffixLen: u32 day | u64 ns | u32 boot | u32 seq.
const logSuffixLen = 4 + 8 + 4 + 4

const nsPerDay = int64(24 * time.Hour)

// logKey places an event under its secret and day, in time order.
func (s *Service) logKey(ev *AccessEvent) []byte {
	ns := ev.Time.UnixNano()
	k := logPrefix(ev.Ref)
	k = binary.BigEndian.AppendUint32(k, uint32(ns/nsPerDay))
	k = binary.BigEndian.AppendUint64(k, uint64(ns))
	k = binary.BigEndian.AppendUint32(k, s.bootID)
	return binary.BigEndian.AppendUint32(k, s.logSeq.Add(1))
}

// GetAccessLogRequest asks for a secret's access events.
type GetAccessLogRequest struct {
	// Ref is the secret. With an empty Name it is the path, whose events
	// are the listings of that path (OpList).
	Ref SecretRef
	// Since and Until bound the events' times, inclusive. A zero Until is
	// now; a zero Since is 24 hours before Until. The span may be at most
	// 366 days.
	Since, Until time.Time
	// Limit caps the events returned; 0 means 100, at most 1000.
	Limit int
	// PageToken continues a previous response's NextPageToken.
	PageToken string
}

// AccessLogResponse is one page of events, oldest first.
type AccessLogResponse struct {
	Events []AccessEvent
	// NextPageToken is set when more events match.
	NextPageToken string
}

const maxLogSpan = 366 * 24 * time.Hour

// GetAccessLog returns the access events of one secret (seed
// GetAccessLog). The caller needs AccessAudit: the owner has it. Reading
// the log is itself recorded.
func (s *Service) GetAccessLog(ctx context.Context, caller string, req GetAccessLogRequest) (*AccessLogResponse, error) {
	const op = "get access log"
	if err := validateID("caller", caller); err != nil {
		return nil, opError(op, "", err)
	}
	pathOnly := req.Ref.Name == ""
	if pathOnly {
		if err := validatePath(req.Ref.Path); err != nil {
			return nil, opError(op, "", err)
		}
	} else if err := req.Ref.validate(); err != nil {
		return nil, opError(op, "", err)
	}
	if req.Until.IsZero() {
		req.Until = s.clock.now()
	}
	if req.Since.IsZero() {
		req.Since = req.Until.Add(-24 * time.Hour)
	}
	switch {
	case req.Limit < 0 || req.Limit > 1000:
		return nil, opError(op, req.Ref.String(), invalid("limit %d outside 0..1000", req.Limit))
	case req.Since.After(req.Until) || req.Until.Sub(req.Since) > maxLogSpan:
		return nil, opError(op, req.Ref.String(), invalid("time range must be ordered and at most %v", maxLogSpan))
	case req.Limit == 0:
		req.Limit = 100
	}
	if err := s.enter(ctx); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	defer s.life.RUnlock()
	ev := s.event(caller, OpReadAccessLog, req.Ref)
	var m *metaRecord
	var err error
	if !pathOnly {
		m, err = s.readMeta(ctx, req.Ref)
	}
	if err == nil || errors.Is(err, ErrNotFound) {
		// A path's events belong to the owner of its namespace.
		err = s.authorize(ctx, caller, req.Ref, m, AccessAudit)
	}
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	var resp *AccessLogResponse
	if r := s.cfg.Recorder; r != nil {
		reader, ok := r.(AccessLogReader)
		if !ok {
			return nil, opError(op, req.Ref.String(), fmt.Errorf("%w: the access recorder cannot be queried", ErrUnavailable))
		}
		resp, err = reader.ReadAccessLog(ctx, req)
	} else {
		resp, err = s.readLocalLog(ctx, req)
	}
	if err != nil {
		return nil, opError(op, req.Ref.String(), s.refused(ctx, ev, err))
	}
	if err := s.auditRead(ctx, withOutcome(ev, nil)); err != nil {
		return nil, opError(op, req.Ref.String(), err)
	}
	return resp, nil
}

// readLocalLog scans one day prefix at a time, so a query costs the
// events of the days it spans, not the secret's whole history.
func (s *Service) readLocalLog(ctx context.Context, req GetAccessLogRequest) (*AccessLogResponse, error) {
	since, until := req.Since.UnixNano(), req.Until.UnixNano()
	var after []byte
	if req.PageToken != "" {
		t, err := hex.DecodeString(req.PageToken)
		if err != nil || len(t) != logSuffixLen {
			return nil, invalid("malformed page token")
		}
		after = t
		if ns := int64(binary.BigEndian.Uint64(t[4:])); ns > since {
			since = ns
		}
	}
	prefix := logPrefix(req.Ref)
	resp := &AccessLogResponse{}
	errFull := errors.New("page full")
	for day := since / nsPerDay; day <= until/nsPerDay; day++ {
		p := binary.BigEndian.AppendUint32(bytes.Clone(prefix), uint32(day))
		err := s.store.Scan(ctx, p, func(key, val []byte) error {
			suffix := key[len(prefix):]
			if len(suffix) != logSuffixLen {
				return &corruptError{key: key, cause: fmt.Errorf("key suffix of %d bytes, want %d", len(suffix), logSuffixLen)}
			}
			ns := int64(binary.BigEndian.Uint64(suffix[4:]))
			if ns < since || ns > until || (after != nil && bytes.Compare(suffix, after) <= 0) {
				return nil
			}
			if len(resp.Events) == req.Limit {
				resp.NextPageToken = hex.EncodeToString(after)
				return errFull
			}
			ev, err := openRecord(s, key, val, decodeEvent)
			if err != nil {
				return err
			}
			resp.Events = append(resp.Events, *ev)
			after = bytes.Clone(suffix)
			return nil
		})
		if errors.Is(err, errFull) {
			break
		}
		if err != nil {
			return nil, err
		}
	}
	return resp, nil
}
