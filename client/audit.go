package client

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"time"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
)

// AuditClient writes and reads a node's verifiable audit log (seed §9):
// Log and LogBatch append synchronously; Emit hands an event to the
// client's asynchronous logger (seed §9.3), which never blocks its caller,
// buffers while the log is unavailable and replays in order once it is
// back, and keeps critical events in a durable local spool so that none
// is ever dropped. Audit degrades fully (seed §13.3): the platform runs on
// while the log is down. Reads (Query, GetProof, Verify, GetCheckpoint)
// are retried; Log and LogBatch never are, since the log has no way to
// recognise a record sent twice — the logger has (see Emit).
type AuditClient struct {
	svc    *service
	rpc    auditv1.AuditServiceClient
	logger *auditLogger
	ownedConn
}

// Outcome is how an audited action ended (seed Outcome).
type Outcome uint8

// Outcomes.
const (
	OutcomeUnspecified Outcome = iota
	OutcomeSuccess
	OutcomeFailure
	OutcomeDenied
	OutcomeTimeout
)

// AuditRecord is one record of the log (seed AuditRecord).
type AuditRecord struct {
	// Who is the acting agent; empty means the caller.
	Who string
	// DelegationChain lists whom Who acts for, origin first.
	DelegationChain []string
	// What is the action ("send_email") or event; required.
	What string
	// Resource is what it was on, in Cedar form (Doc::"q3").
	Resource string
	// Why is the reason: a denial's, an error, a justification.
	Why     string
	Outcome Outcome
	// Timestamp is when it happened; zero means now (when Log is called,
	// or Emit).
	Timestamp time.Time
	// Signature is Who's optional signature over the record's signing
	// payload (docs/audit.md); the log refuses one that does not verify.
	Signature *HybridSignature
	// Source names the emitting component; empty means "api". The node's
	// own ("authz", "nhi", "vault", "node", "ext:…") are refused.
	Source, PolicyID, TraceID string
	// Context holds a few more facts, never secrets. The logger adds
	// "creto_event_id" to an unsigned event's.
	Context map[string]string

	// Index and LoggedAt are the log's: set in what Query returns, unset
	// in what is logged.
	Index    uint64
	LoggedAt time.Time
}

// LogResult says where Log put a record.
type LogResult struct {
	Index    uint64
	LoggedAt time.Time
}

// BatchResult says where LogBatch put its records: FirstIndex up to
// FirstIndex + Count - 1, in order.
type BatchResult struct {
	FirstIndex uint64
	Count      int
	LoggedAt   time.Time
}

// AuditQuery filters the log; unset filters match everything.
type AuditQuery struct {
	// Who: an agent that leaves it empty reads its own records, an
	// operator everyone's.
	Who, What, Resource, Source string
	// Outcomes admits any of these.
	Outcomes []Outcome
	// Since and Until bound the records' timestamps (Until exclusive);
	// zero is unbounded.
	Since, Until time.Time
	// PageSize is at most 1000; 0 means 100.
	PageSize  int
	PageToken string
}

// AuditPage is one page of records, in log order. A page may be shorter
// than asked while more follow: continue until NextPageToken is empty.
type AuditPage struct {
	Records       []AuditRecord
	NextPageToken string
}

// ProofKind says which proof.
type ProofKind uint8

// Proof kinds.
const (
	ProofKindUnspecified ProofKind = iota
	// InclusionProof proves a record is in a tree.
	InclusionProof
	// ConsistencyProof proves a tree extends an older one.
	ConsistencyProof
)

// ProofRequest asks for an inclusion proof of the record at Index, or a
// consistency proof from OldSize to TreeSize.
type ProofRequest struct {
	Kind  ProofKind
	Index uint64
	// WithLeaf returns the record's leaf encoding with an inclusion proof.
	WithLeaf bool
	OldSize  uint64
	// TreeSize is a signed checkpoint's size; 0 means the latest.
	TreeSize uint64
}

// MerkleProof is an RFC 6962 proof and the signed checkpoint it leads to
// (seed MerkleProof).
type MerkleProof struct {
	Kind                     ProofKind
	Index, OldSize, TreeSize uint64
	// Hashes are the proof's 32-byte hashes.
	Hashes [][]byte
	// Leaf is the record's leaf encoding, when asked for.
	Leaf []byte
	// Checkpoint is the C2SP signed note of TreeSize.
	Checkpoint []byte
}

// VerifyProofRequest asks the log to check a proof. For an inclusion
// proof the record is Leaf if set, else Record, else Proof.Leaf; for a
// consistency proof OldCheckpoint is the signed checkpoint of
// Proof.OldSize. Checkpoint, if set, replaces Proof.Checkpoint.
type VerifyProofRequest struct {
	Record                    *AuditRecord
	Leaf                      []byte
	Proof                     MerkleProof
	Checkpoint, OldCheckpoint []byte
}

// Checkpoint is a signed checkpoint's content.
type Checkpoint struct {
	Origin   string
	Size     uint64
	RootHash []byte
}

// SignedCheckpoint is the log's latest checkpoint and its signed note.
type SignedCheckpoint struct {
	// Note is the C2SP signed note: standard tools verify its Ed25519
	// line with the log's verifier key.
	Note string
	Checkpoint
}

// ProofVerdict is the answer to a verification. A proof that does not
// verify is an answer, not an error.
type ProofVerdict struct {
	Valid bool
	// Reason says why not, when not Valid.
	Reason string
	// Checkpoint is the one the proof verified against.
	Checkpoint Checkpoint
	// FailedEntry is the first entry found wrong, when the failure is
	// tied to one.
	FailedEntry *uint64
}

// NewAuditClient builds a client of the [audit] section alone, with its
// logger running.
func NewAuditClient(cfg AuditConfig, opts ...Option) (*AuditClient, error) {
	return standalone(cfg, opts, newAudit)
}

func newAudit(d *dialer, top Transport, cfg AuditConfig) (*AuditClient, error) {
	def := DefaultConfig().Audit
	p, err := cfg.ServiceConfig.resolve("audit", top, def.ServiceConfig)
	if err != nil {
		return nil, err
	}
	setDefault(&cfg.BufferSize, def.BufferSize)
	setDefault(&cfg.BatchSize, def.BatchSize)
	switch {
	case cfg.BufferSize < 1 || cfg.BufferSize > 10_000_000:
		return nil, fmt.Errorf("%w: audit.buffer_size %d: want 1 to 10000000", ErrConfig, cfg.BufferSize)
	case cfg.BatchSize < 1 || cfg.BatchSize > 1000:
		return nil, fmt.Errorf("%w: audit.batch_size %d: want 1 to 1000 (the node's max_batch)", ErrConfig, cfg.BatchSize)
	}
	cn, err := d.dial("audit", p)
	if err != nil {
		return nil, err
	}
	c := &AuditClient{
		svc: newService("audit", auditv1.AuditService_ServiceDesc.ServiceName, cn, p, d.opts.log),
		rpc: auditv1.NewAuditServiceClient(cn),
	}
	if c.logger, err = newAuditLogger(c, cfg); err != nil {
		return nil, err
	}
	return c, nil
}

// Log appends one record and returns once it is on the node's stable
// storage (seed log). Not retried: see the type.
func (c *AuditClient) Log(ctx context.Context, r AuditRecord) (LogResult, error) {
	if err := checkLoggable("Log", r); err != nil {
		return LogResult{}, err
	}
	resp, err := call(ctx, c.svc, "Log", false, func(ctx context.Context) (*auditv1.LogResponse, error) {
		return c.rpc.Log(ctx, &auditv1.LogRequest{Record: auditRecordProto(r)})
	})
	if err != nil {
		return LogResult{}, err
	}
	return LogResult{Index: resp.GetIndex(), LoggedAt: timeFrom(resp.GetLoggedAt())}, nil
}

// LogBatch appends records atomically, at consecutive indexes: all of
// them or, when any is refused, none (seed log_batch). Not retried.
func (c *AuditClient) LogBatch(ctx context.Context, rs []AuditRecord) (BatchResult, error) {
	in := &auditv1.LogBatchRequest{Records: make([]*auditv1.AuditRecord, len(rs))}
	for i, r := range rs {
		if err := checkLoggable("LogBatch", r); err != nil {
			return BatchResult{}, err
		}
		in.Records[i] = auditRecordProto(r)
	}
	resp, err := c.logBatch(ctx, in)
	if err != nil {
		return BatchResult{}, err
	}
	return BatchResult{FirstIndex: resp.GetFirstIndex(), Count: int(resp.GetCount()), LoggedAt: timeFrom(resp.GetLoggedAt())}, nil
}

func (c *AuditClient) logBatch(ctx context.Context, in *auditv1.LogBatchRequest) (*auditv1.LogBatchResponse, error) {
	return call(ctx, c.svc, "LogBatch", false, func(ctx context.Context) (*auditv1.LogBatchResponse, error) {
		return c.rpc.LogBatch(ctx, in)
	})
}

// checkLoggable refuses what the log would refuse anyway and the client
// can tell alone, before anything is sent.
func checkLoggable(method string, r AuditRecord) error {
	switch {
	case r.What == "":
		return localError("audit", method, ErrInvalidRequest, "a record needs What")
	case r.Outcome < OutcomeSuccess || r.Outcome > OutcomeTimeout:
		return localError("audit", method, ErrInvalidRequest, "outcome %d: want success, failure, denied or timeout", r.Outcome)
	case r.Index != 0 || !r.LoggedAt.IsZero():
		return localError("audit", method, ErrInvalidRequest, "index and logged_at are the log's to set")
	}
	return nil
}

// Query returns a page of the records matching every filter, in log order
// (seed query).
func (c *AuditClient) Query(ctx context.Context, q AuditQuery) (AuditPage, error) {
	if q.PageSize < 0 || q.PageSize > 1000 {
		return AuditPage{}, localError("audit", "Query", ErrInvalidRequest, "page size %d: want 0 to 1000", q.PageSize)
	}
	in := &auditv1.QueryRequest{Who: q.Who, What: q.What, Resource: q.Resource, Source: q.Source,
		Since: timeProto(q.Since), Until: timeProto(q.Until), PageSize: int32(q.PageSize), PageToken: q.PageToken}
	for _, o := range q.Outcomes {
		in.Outcomes = append(in.Outcomes, auditv1.Outcome(o))
	}
	resp, err := c.query(ctx, in)
	if err != nil {
		return AuditPage{}, err
	}
	out := AuditPage{Records: make([]AuditRecord, len(resp.GetRecords())), NextPageToken: resp.GetNextPageToken()}
	for i, r := range resp.GetRecords() {
		out.Records[i] = auditRecordFrom(r)
	}
	return out, nil
}

func (c *AuditClient) query(ctx context.Context, in *auditv1.QueryRequest) (*auditv1.QueryResponse, error) {
	return call(ctx, c.svc, "Query", true, func(ctx context.Context) (*auditv1.QueryResponse, error) {
		return c.rpc.Query(ctx, in)
	})
}

// GetProof returns an inclusion or consistency proof with the signed
// checkpoint it leads to (seed get_proof).
func (c *AuditClient) GetProof(ctx context.Context, req ProofRequest) (MerkleProof, error) {
	resp, err := call(ctx, c.svc, "GetProof", true, func(ctx context.Context) (*auditv1.GetProofResponse, error) {
		return c.rpc.GetProof(ctx, &auditv1.GetProofRequest{Kind: auditv1.ProofKind(req.Kind), Index: req.Index, WithLeaf: req.WithLeaf,
			OldSize: req.OldSize, TreeSize: req.TreeSize})
	})
	if err != nil {
		return MerkleProof{}, err
	}
	p := resp.GetProof()
	return MerkleProof{Kind: ProofKind(p.GetKind()), Index: p.GetIndex(), OldSize: p.GetOldSize(), TreeSize: p.GetTreeSize(),
		Hashes: p.GetHashes(), Leaf: p.GetLeaf(), Checkpoint: p.GetCheckpoint()}, nil
}

// Verify asks the log to check a proof against a checkpoint it signed
// (seed verify).
func (c *AuditClient) Verify(ctx context.Context, req VerifyProofRequest) (ProofVerdict, error) {
	p := req.Proof
	in := &auditv1.VerifyRequest{Leaf: req.Leaf, Checkpoint: req.Checkpoint, OldCheckpoint: req.OldCheckpoint,
		Proof: &auditv1.MerkleProof{Kind: auditv1.ProofKind(p.Kind), Index: p.Index, OldSize: p.OldSize, TreeSize: p.TreeSize,
			Hashes: p.Hashes, Leaf: p.Leaf, Checkpoint: p.Checkpoint}}
	if req.Record != nil {
		in.Record = auditRecordProto(*req.Record)
		in.Record.Index, in.Record.LoggedAt = req.Record.Index, timeProto(req.Record.LoggedAt)
	}
	resp, err := call(ctx, c.svc, "Verify", true, func(ctx context.Context) (*auditv1.VerifyResponse, error) {
		return c.rpc.Verify(ctx, in)
	})
	if err != nil {
		return ProofVerdict{}, err
	}
	return ProofVerdict{Valid: resp.GetValid(), Reason: resp.GetReason(), Checkpoint: checkpointFrom(resp.GetCheckpoint()),
		FailedEntry: clonePtr(resp.FailedEntry)}, nil
}

// GetCheckpoint returns the log's latest signed checkpoint; an empty log
// has none (ErrNotFound).
func (c *AuditClient) GetCheckpoint(ctx context.Context) (SignedCheckpoint, error) {
	resp, err := call(ctx, c.svc, "GetCheckpoint", true, func(ctx context.Context) (*auditv1.GetCheckpointResponse, error) {
		return c.rpc.GetCheckpoint(ctx, &auditv1.GetCheckpointRequest{})
	})
	if err != nil {
		return SignedCheckpoint{}, err
	}
	return SignedCheckpoint{Note: resp.GetSignedNote(), Checkpoint: checkpointFrom(resp.GetCheckpoint())}, nil
}

// Health reports the audit service's health (seed health), and the
// logger's: a service that serves while the logger cannot deliver to it
// (a caller the node refuses, say) is degraded.
func (c *AuditClient) Health(ctx context.Context) Health {
	h := c.svc.health(ctx)
	if st := c.LoggerStats(); h.Status == Healthy && st.Unavailable {
		h.Status, h.Reason = Degraded, fmt.Sprintf("the logger cannot deliver: %d events waiting", st.Waiting)
	}
	return h
}

// Stats returns the client's counters; LoggerStats the logger's.
func (c *AuditClient) Stats() Stats { return c.svc.Stats() }

// Close stops the logger — it delivers what it can within timeout_ms
// (Flush first to wait longer), keeps critical events in its spool, and
// drops and counts the ordinary events left — and releases the client's
// connection.
func (c *AuditClient) Close() error { return errors.Join(c.stopLogger(), c.closeConn()) }

// stopLogger stops the logger, giving it timeout_ms to deliver what waits.
func (c *AuditClient) stopLogger() error {
	ctx, cancel := context.WithTimeout(context.Background(), c.svc.pol.timeout)
	defer cancel()
	return c.logger.close(ctx)
}

func auditRecordProto(r AuditRecord) *auditv1.AuditRecord {
	out := &auditv1.AuditRecord{Who: agentRef(r.Who), What: r.What, Resource: r.Resource, Why: r.Why,
		Outcome: auditv1.Outcome(r.Outcome), Timestamp: timeProto(r.Timestamp), Source: r.Source, PolicyId: r.PolicyID,
		TraceId: r.TraceID, Context: maps.Clone(r.Context)}
	for _, id := range r.DelegationChain {
		out.DelegationChain = append(out.DelegationChain, &nhiv1.AgentIdentity{Id: id})
	}
	if s := r.Signature; s != nil {
		out.Signature = &nhiv1.HybridSignature{Ed25519Signature: s.Ed25519, MlDsaSignature: s.MLDSA65, AlgorithmId: s.AlgorithmID}
	}
	return out
}

func auditRecordFrom(r *auditv1.AuditRecord) AuditRecord {
	out := AuditRecord{Who: r.GetWho().GetId(), What: r.GetWhat(), Resource: r.GetResource(), Why: r.GetWhy(),
		Outcome: Outcome(r.GetOutcome()), Timestamp: timeFrom(r.GetTimestamp()), Source: r.GetSource(), PolicyID: r.GetPolicyId(),
		TraceID: r.GetTraceId(), Context: maps.Clone(r.GetContext()), Index: r.GetIndex(), LoggedAt: timeFrom(r.GetLoggedAt())}
	for _, l := range r.GetDelegationChain() {
		out.DelegationChain = append(out.DelegationChain, l.GetId())
	}
	if r.GetSignature() != nil {
		s := signatureFrom(r.GetSignature())
		out.Signature = &s
	}
	return out
}

func checkpointFrom(c *auditv1.Checkpoint) Checkpoint {
	return Checkpoint{Origin: c.GetOrigin(), Size: c.GetSize(), RootHash: c.GetRootHash()}
}
