package hosts

import (
	"context"
	"errors"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/nhi"
)

// AgentDirectory is the part of the NHI service creto:nhi/v1 reads;
// *nhi.Service implements it.
type AgentDirectory interface {
	// Get returns an agent whatever its status, or an error matching
	// nhi.ErrNotFound.
	Get(ctx context.Context, id string) (nhi.AgentIdentity, error)
}

// NHI is creto:nhi/v1 (capability "nhi", SPEC.md §6.6): what the node's
// identity registry says about an agent — normally the request's
// principal, whose id the guest reads from the request — so that an
// extension decides on the registry's verified record rather than on
// attributes a caller asserted. It is read-only and carries nothing
// secret: status, owner, type and attributes, never a key, a token or a
// delegation.
type NHI struct {
	Agents AgentDirectory
	// Now returns the current time, which decides whether an active agent
	// has expired; nil means time.Now.
	Now func() time.Time
}

var _ engine.HostModule = NHI{}

// Capability implements engine.HostModule.
func (NHI) Capability() string { return abi.CapabilityNHI }

// Agent statuses as status() returns them (SPEC.md §6.6).
const (
	nhiStatusActive    = 1
	nhiStatusSuspended = 2
	nhiStatusRevoked   = 3
	nhiStatusExpired   = 4
)

// Functions implements engine.HostModule.
func (h NHI) Functions(string) []engine.HostFunction {
	now := h.Now
	if now == nil {
		now = time.Now
	}
	i32 := api.ValueTypeI32
	// agent reads the (id_ptr, id_len) arguments and looks the agent up;
	// a negative code says why it could not.
	agent := func(ctx context.Context, m api.Module, ptr, n uint64) (nhi.AgentIdentity, int64) {
		if uint32(n) > nhi.MaxIDLength {
			return nhi.AgentIdentity{}, abi.EInvalid
		}
		id, ok := engine.GuestBytes(m, uint32(ptr), uint32(n))
		if !ok {
			return nhi.AgentIdentity{}, abi.EInvalid
		}
		if h.Agents == nil {
			return nhi.AgentIdentity{}, abi.EUnavailable
		}
		a, err := h.Agents.Get(ctx, string(id))
		switch {
		case err == nil:
			return a, 0
		case errors.Is(err, nhi.ErrNotFound):
			return a, abi.ENotFound
		case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
			return a, abi.EDeadline
		}
		return a, abi.EUnavailable
	}
	// text answers with a string about the agent by the return-buffer
	// convention: the arguments are id_ptr, id_len, then whatever pick
	// reads, then out_ptr and out_cap at stack[out] and stack[out+1].
	text := func(out int, pick func(a *nhi.AgentIdentity, m api.Module, stack []uint64) (string, int64)) api.GoModuleFunc {
		return func(ctx context.Context, m api.Module, stack []uint64) {
			a, code := agent(ctx, m, stack[0], stack[1])
			if code < 0 {
				stack[0] = uint64(code)
				return
			}
			v, code := pick(&a, m, stack)
			if code < 0 {
				stack[0] = uint64(code)
				return
			}
			stack[0] = uint64(engine.PutResult(m, uint32(stack[out]), uint32(stack[out+1]), []byte(v)))
		}
	}
	return []engine.HostFunction{
		{Name: "is_registered", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				_, code := agent(ctx, m, stack[0], stack[1])
				switch code {
				case 0:
					stack[0] = 1
				case abi.ENotFound:
					stack[0] = 0
				default:
					stack[0] = uint64(code)
				}
			}},
		{Name: "is_revoked", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				a, code := agent(ctx, m, stack[0], stack[1])
				switch {
				case code < 0:
					stack[0] = uint64(code)
				case a.Status == nhi.StatusRevoked:
					stack[0] = 1
				default:
					stack[0] = 0
				}
			}},
		{Name: "status", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				a, code := agent(ctx, m, stack[0], stack[1])
				if code < 0 {
					stack[0] = uint64(code)
					return
				}
				stack[0] = uint64(statusCode(&a, now()))
			}},
		{Name: "owner", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: text(2, func(a *nhi.AgentIdentity, _ api.Module, _ []uint64) (string, int64) { return a.OwnerID, 0 })},
		{Name: "agent_type", Params: []api.ValueType{i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: text(2, func(a *nhi.AgentIdentity, _ api.Module, _ []uint64) (string, int64) { return string(a.Type), 0 })},
		{Name: "attribute", Params: []api.ValueType{i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: text(4, func(a *nhi.AgentIdentity, m api.Module, stack []uint64) (string, int64) {
				if uint32(stack[3]) > nhi.MaxAttributeKeyLength {
					return "", abi.EInvalid
				}
				key, ok := engine.GuestBytes(m, uint32(stack[2]), uint32(stack[3]))
				if !ok {
					return "", abi.EInvalid
				}
				v, found := a.Attributes[string(key)]
				if !found {
					return "", abi.ENotFound
				}
				return v, 0
			})},
	}
}

// statusCode is an agent's status as the guest sees it: an active agent
// past its expiry is expired, as NHI's Cedar entity says.
func statusCode(a *nhi.AgentIdentity, now time.Time) int64 {
	switch a.Status {
	case nhi.StatusRevoked:
		return nhiStatusRevoked
	case nhi.StatusSuspended:
		return nhiStatusSuspended
	case nhi.StatusActive:
		if !a.ExpiresAt.IsZero() && !now.Before(a.ExpiresAt) {
			return nhiStatusExpired
		}
		return nhiStatusActive
	}
	// A status this build does not know vouches for nothing.
	return abi.EUnavailable
}
