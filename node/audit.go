package node

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"google.golang.org/grpc"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/internal/caller"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/vault"
)

// AuditConfig is the [audit] section: the log's settings (audit.Config),
// its asynchronous Logger's ([audit.logger]) and which authorization
// decisions become records.
type AuditConfig struct {
	audit.Config
	// Logger is the [audit.logger] section. Its spool_path defaults to
	// <data_dir>/audit.spool.
	Logger audit.LoggerConfig `toml:"logger"`
	// Decisions says which authorization decisions are audited: "denied"
	// (the default) every decision that is not a plain allow, with the
	// requests refused as invalid and the extension failures; "all" every
	// decision; "none" none, nor the extension failures.
	Decisions string `toml:"decisions"`
}

// Decision audit modes.
const (
	DecisionsDenied = "denied"
	DecisionsAll    = "all"
	DecisionsNone   = "none"
)

// withDefaults fills the [audit] section's node-level defaults and refuses
// settings that cannot work together; the services check their own.
func (c AuditConfig) withDefaults(dataDir string) (AuditConfig, error) {
	setDefault(&c.Decisions, DecisionsDenied)
	setDefault(&c.Logger.SpoolPath, filepath.Join(dataDir, "audit.spool"))
	switch c.Decisions {
	case DecisionsDenied, DecisionsAll, DecisionsNone:
	default:
		return c, fmt.Errorf("config: audit.decisions %q: want %s, %s or %s", c.Decisions, DecisionsDenied, DecisionsAll, DecisionsNone)
	}
	log := c.Config
	if log.MaxBatch == 0 {
		log.MaxBatch = audit.DefaultConfig().MaxBatch
	}
	if c.Logger.BatchSize > log.MaxBatch {
		return c, fmt.Errorf("config: audit.logger.batch_size %d is over audit.max_batch %d", c.Logger.BatchSize, log.MaxBatch)
	}
	return c, nil
}

// openAudit opens the audit log on the node's store, sealed with the node
// key, and its Logger, before any service that reports to it.
func (n *Node) openAudit(ctx context.Context, sealer audit.Sealer) error {
	cfg := n.cfg.Audit
	lc := cfg.Config
	if lc.Authorizer == nil {
		lc.Authorizer = auditGrants{n}
	}
	if lc.Signatures == nil {
		lc.Signatures = nhiSignatures{n}
	}
	if lc.Logger == nil {
		lc.Logger = n.log
	}
	var err error
	if n.audit, err = audit.Open(ctx, n.store, sealer, lc); err != nil {
		return fmt.Errorf("config: audit: %w", err)
	}
	n.closers = append(n.closers, n.audit.Close)
	logger := cfg.Logger
	if logger.Logger == nil {
		logger.Logger = n.log
	}
	if n.auditLogger, err = audit.NewLogger(n.audit, logger); err != nil {
		return fmt.Errorf("config: audit.logger: %w", err)
	}
	return nil
}

// closeAuditLogger delivers what the Logger holds, up to the shutdown
// timeout, spooling the critical events it cannot.
func (n *Node) closeAuditLogger() error {
	ctx, cancel := context.WithTimeout(context.Background(), n.cfg.Server.ShutdownTimeout)
	defer cancel()
	return n.auditLogger.Close(ctx)
}

// nhiEvents audits every identity change as a critical event, attributed
// to the authenticated caller of the request that made it (the node
// itself, feed.NodeIdentity, for changes made in-process), and tells the
// handler the embedding program configured, if any.
func (n *Node) nhiEvents() nhi.EventHandler {
	audited := feed.NHI(n.auditLogger)
	configured := n.cfg.NHI.Events
	return nhi.EventHandlerFunc(func(ctx context.Context, e nhi.Event) {
		if id, ok := caller.From(ctx); ok {
			ctx = audit.WithCaller(ctx, audit.CallerID(id))
		}
		audited.HandleEvent(ctx, e)
		if configured != nil {
			configured.HandleEvent(ctx, e)
		}
	})
}

// decisionObserver is the engine's audit observer for the configured
// decisions; nil for none, so that checks pay nothing.
func (n *Node) decisionObserver() engine.Observer {
	switch n.cfg.Audit.Decisions {
	case DecisionsAll:
		return feed.Engine(n.auditLogger)
	case DecisionsDenied:
		return feed.NotAllowed(feed.Engine(n.auditLogger))
	}
	return nil
}

// auditDenial records a call the meta-policies refused, as a critical
// event: never dropped.
func (n *Node) auditDenial(ctx context.Context, d Denial) {
	if err := n.auditLogger.Emit(ctx, audit.Event{Class: audit.Critical, Record: feed.CallDenied(d.Caller, d.Method, d.Reason)}); err != nil {
		n.log.ErrorContext(ctx, "audit: a refused call could not be recorded", "caller", d.Caller.String(), "method", d.Method, "err", err)
	}
}

// auditGrants is the node's audit.Authorizer, consulted when a caller
// logs or reads records of an identity other than itself. Operators are
// the node's auditors: they log for anyone and read everything. An agent
// reads another agent's records while it holds a live NHI delegation from
// that agent granting "audit:read"; it never logs for another.
type auditGrants struct{ n *Node }

// permissionAuditRead is the NHI permission that opens one agent's
// records to another.
const permissionAuditRead = "audit:read"

// Authorize implements audit.Authorizer.
func (g auditGrants) Authorize(ctx context.Context, callerID, who string, access audit.Access) error {
	if id, ok := caller.From(ctx); ok && id.Kind == caller.Operator {
		return nil
	}
	if access != audit.AccessRead {
		return audit.ErrAccessDenied
	}
	if ctx.Value(vaultLogReader{}) != nil {
		return nil
	}
	if who == "" {
		return fmt.Errorf("%w: reading every identity's records is for operators", audit.ErrAccessDenied)
	}
	_, err := g.n.nhi.FindGrant(ctx, callerID, who, permissionAuditRead)
	if errors.Is(err, nhi.ErrNotFound) {
		return fmt.Errorf("%w: no live delegation from the agent grants %s", audit.ErrAccessDenied, permissionAuditRead)
	}
	return err
}

// nhiSignatures verifies a record's signature under its Who's NHI keys.
// The log opens before NHI (so that no identity change goes unaudited),
// and records reach it only once the node serves, when NHI is open.
type nhiSignatures struct{ n *Node }

// Verify implements audit.SignatureVerifier.
func (s nhiSignatures) Verify(ctx context.Context, who string, msg, sig []byte) error {
	if s.n.nhi == nil {
		return fmt.Errorf("%w: the identity service is not open", audit.ErrUnavailable)
	}
	return s.n.nhi.Verify(ctx, who, msg, sig)
}

// vaultLogReader marks the context of the vault's access-log reads: the
// vault has checked the reader's access to the secret (AccessAudit), and
// the log then serves that secret's records whoever made them.
type vaultLogReader struct{}

// vaultRecorder records the vault's accesses in the audit log: each one
// appended synchronously, durable before the vault acts (the vault
// refuses what fails to append), and GetAccessLog answered from the log.
type vaultRecorder struct{ log *audit.Service }

// RecordAccess implements vault.AccessRecorder. An operator acting as the
// agent is named in Context["operator"].
func (v vaultRecorder) RecordAccess(ctx context.Context, ev vault.AccessEvent) error {
	r := feed.Vault(ev)
	if id, ok := caller.From(ctx); ok && id.Kind == caller.Operator {
		r.Context["operator"] = audit.CallerID(id)
	}
	_, err := v.log.Append(ctx, []audit.Record{r})
	return err
}

// ReadAccessLog implements vault.AccessLogReader: one secret's records
// from the vault, through the log's index by resource. The vault's page
// token is the log's cursor, and its inclusive until the log's exclusive
// one plus a nanosecond.
func (v vaultRecorder) ReadAccessLog(ctx context.Context, req vault.GetAccessLogRequest) (*vault.AccessLogResponse, error) {
	resp, err := v.log.Query(context.WithValue(ctx, vaultLogReader{}, true), "vault", audit.QueryRequest{
		Resource: feed.VaultResource(req.Ref), Source: feed.SourceVault,
		Since: req.Since, Until: req.Until.Add(time.Nanosecond), Limit: req.Limit, Cursor: req.PageToken,
	})
	switch {
	case errors.Is(err, audit.ErrInvalidArgument) || errors.Is(err, audit.ErrTooLarge):
		return nil, fmt.Errorf("%w: %w", vault.ErrInvalidArgument, err)
	case err != nil:
		return nil, fmt.Errorf("%w: %w", vault.ErrAuditFailed, err)
	}
	out := &vault.AccessLogResponse{NextPageToken: resp.NextCursor}
	for i := range resp.Records {
		if ev, ok := feed.VaultAccess(&resp.Records[i]); ok {
			out.Events = append(out.Events, ev)
		}
	}
	return out, nil
}

func auditServiceDesc() grpc.ServiceDesc { return auditv1.AuditService_ServiceDesc }

// auditServiceName is the audit service's name in health and metrics.
var auditServiceName = auditv1.AuditService_ServiceDesc.ServiceName

// auditHealthInterval is how often the audit service's health follows
// its Logger.
const auditHealthInterval = time.Second

// watchAuditHealth reports the audit service NOT_SERVING while its Logger
// cannot deliver to the log (seed §13.1: audit unavailable, detected by
// the health probe), SERVING again once it can, until stop is closed.
func (n *Node) watchAuditHealth(stop <-chan struct{}) {
	t := time.NewTicker(auditHealthInterval)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		s := healthpb.HealthCheckResponse_SERVING
		if n.auditLogger.Stats().Unavailable {
			s = healthpb.HealthCheckResponse_NOT_SERVING
		}
		n.health.SetServingStatus(auditServiceName, s)
	}
}

// auditMetrics exports the Logger's and the log's counters (seed §13.1:
// drop the oldest, count, expose a metric).
func (n *Node) auditMetrics() []prometheus.Collector {
	events, log := n.auditLogger.Stats, n.audit.Stats
	return []prometheus.Collector{
		stat(events, "audit_events_emitted_total", "Audit events emitted to the node's Logger.", false,
			func(s audit.LoggerStats) float64 { return float64(s.Emitted) }),
		stat(events, "audit_events_delivered_total", "Audit events the Logger delivered to the log.", false,
			func(s audit.LoggerStats) float64 { return float64(s.Delivered) }),
		stat(events, "audit_events_dropped_total", "Ordinary audit events dropped, oldest first, because the Logger's buffer was full.", false,
			func(s audit.LoggerStats) float64 { return float64(s.Dropped) }),
		stat(events, "audit_events_spooled_total", "Critical audit events written to the durable spool.", false,
			func(s audit.LoggerStats) float64 { return float64(s.Spooled) }),
		stat(events, "audit_events_invalid_total", "Audit events that were not valid records and were never logged.", false,
			func(s audit.LoggerStats) float64 { return float64(s.Invalid) }),
		stat(events, "audit_spool_write_failures_total", "Failed writes to the audit spool.", false,
			func(s audit.LoggerStats) float64 { return float64(s.SpoolWriteFailures) }),
		stat(events, "audit_events_buffered", "Audit events waiting in the Logger's memory.", true,
			func(s audit.LoggerStats) float64 { return float64(s.Buffered) }),
		stat(events, "audit_spool_pending", "Critical audit events in the spool, waiting for the log.", true,
			func(s audit.LoggerStats) float64 { return float64(s.SpoolPending) }),
		stat(events, "audit_log_unavailable", "1 while the Logger cannot deliver to the log.", true,
			func(s audit.LoggerStats) float64 { return boolFloat(s.Unavailable) }),
		stat(log, "audit_log_records_total", "Records appended to the audit log since the node started.", false,
			func(s audit.Stats) float64 { return float64(s.Records) }),
		stat(log, "audit_log_commits_total", "Durable commits of the audit log since the node started.", false,
			func(s audit.Stats) float64 { return float64(s.Commits) }),
		stat(log, "audit_log_checkpoints_total", "Checkpoints the audit log signed since the node started.", false,
			func(s audit.Stats) float64 { return float64(s.Checkpoints) }),
		stat(log, "audit_log_size", "Records in the audit log.", true,
			func(s audit.Stats) float64 { return float64(s.Size) }),
	}
}

// stat is a metric read from a fresh stats snapshot at each scrape.
func stat[S any](stats func() S, name, help string, gauge bool, v func(S) float64) prometheus.Collector {
	f := func() float64 { return v(stats()) }
	if gauge {
		return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, f)
	}
	return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, f)
}

func boolFloat(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
