package hosts

import (
	"context"
	"encoding/json"
	"strings"
	"time"

	"github.com/tetratelabs/wazero/api"
	"golang.org/x/time/rate"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/audit/feed"
)

// AuditEmitter takes audit events without blocking; *audit.Logger
// implements it.
type AuditEmitter interface {
	Emit(ctx context.Context, e audit.Event) error
}

// Limits of creto:audit/v1 (SPEC.md §6.9). The strings' own limits are
// the audit record's (audit.MaxIDLen for what, audit.MaxResourceLen,
// audit.MaxWhyLen).
const (
	// MaxAuditContext caps the context argument, a JSON object.
	MaxAuditContext = 8 << 10
	// MaxAuditContextEntries caps its entries.
	MaxAuditContextEntries = 16
	// DefaultAuditEmitsPerSecond is each extension's rate when
	// Audit.PerSecond is zero.
	DefaultAuditEmitsPerSecond = 100
)

// Audit is creto:audit/v1 (capability "audit", SPEC.md §6.9): an extension
// reports an event — what, on which resource, why, how it ended, and a few
// facts — and the host writes the record: Who is the principal of the
// request being evaluated (engine.EvaluatingFrom), with its delegation
// chain and trace, Source is "ext:<name>", the time is the host's
// (feed.Extension). An extension cannot log in anyone else's name. Emits
// are ordinary events of the node's audit Logger: they never block the
// check and are dropped, and counted, before a decision record would be.
// Each extension may emit PerSecond events a second; past that, calls
// fail until the next second, so a looping guest cannot flood the log.
type Audit struct {
	Events AuditEmitter
	// PerSecond caps each extension's emits per second (with a burst of
	// as many); zero means DefaultAuditEmitsPerSecond.
	PerSecond int
	// Now returns the current time; nil means time.Now.
	Now func() time.Time
}

var _ engine.HostModule = Audit{}

// Capability implements engine.HostModule.
func (Audit) Capability() string { return abi.CapabilityAudit }

// Functions implements engine.HostModule.
func (h Audit) Functions(ext string) []engine.HostFunction {
	now := h.Now
	if now == nil {
		now = time.Now
	}
	per := h.PerSecond
	if per <= 0 {
		per = DefaultAuditEmitsPerSecond
	}
	limit := rate.NewLimiter(rate.Limit(per), per)
	i32 := api.ValueTypeI32
	return []engine.HostFunction{
		// emit(what_ptr, what_len, resource_ptr, resource_len, why_ptr,
		// why_len, outcome, ctx_ptr, ctx_len i32) -> i32
		{Name: "emit", Params: []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				if h.Events == nil {
					stack[0] = code64(abi.EUnavailable)
					return
				}
				t := now()
				if !limit.AllowN(t, 1) {
					stack[0] = code64(abi.EUnavailable)
					return
				}
				rep, code := reported(m, stack)
				if code < 0 {
					stack[0] = code64(code)
					return
				}
				r := feed.Extension(ctx, ext, rep)
				r.Timestamp = t
				if err := r.Validate(); err != nil {
					stack[0] = code64(abi.EInvalid)
					return
				}
				// The Logger refuses only after it is closed: the node is
				// stopping.
				if err := h.Events.Emit(ctx, audit.Event{Class: audit.Ordinary, Record: r}); err != nil {
					stack[0] = code64(abi.EUnavailable)
					return
				}
				stack[0] = 0
			}},
	}
}

// reported reads emit's arguments out of guest memory, copying them. The
// record's own rules (what is required, no control characters in
// identifiers) are checked on the whole record afterwards.
func reported(m api.Module, stack []uint64) (feed.Reported, int64) {
	var rep feed.Reported
	str := func(i int, max int) (string, bool) {
		if uint32(stack[i+1]) > uint32(max) {
			return "", false
		}
		b, ok := engine.GuestBytes(m, uint32(stack[i]), uint32(stack[i+1]))
		return string(b), ok
	}
	var ok [3]bool
	rep.What, ok[0] = str(0, audit.MaxIDLen)
	rep.Resource, ok[1] = str(2, audit.MaxResourceLen)
	rep.Why, ok[2] = str(4, audit.MaxWhyLen)
	if ok != [3]bool{true, true, true} || uint32(stack[6]) > uint32(audit.Timeout) {
		return rep, abi.EInvalid
	}
	rep.Outcome = audit.Outcome(uint32(stack[6]))
	raw, ok2 := str(7, MaxAuditContext)
	if !ok2 {
		return rep, abi.EInvalid
	}
	if raw != "" {
		dec := json.NewDecoder(strings.NewReader(raw))
		if err := dec.Decode(&rep.Context); err != nil || dec.More() || len(rep.Context) > MaxAuditContextEntries {
			return rep, abi.EInvalid
		}
	}
	return rep, 0
}
