package hosts

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/consensus"
	"github.com/creto-systems/creto/services/nhi"
)

// TimestampSource gives out timestamps; *consensus.Node implements it, and
// the node gives the host function one that also reaches the leader from a
// follower.
type TimestampSource interface {
	GetTimestamp(ctx context.Context, caller string, req consensus.GetTimestampRequest) (consensus.TimestampResult, error)
}

// Consensus is creto:consensus/v1 (capability "consensus", SPEC.md §6.11):
// timestamps in the cluster's total order, for extensions that stamp what
// they count or decide (a quota window's events, an approval). When the
// cluster cannot give one it returns a local timestamp, flagged (seed
// §8.4): the request is asked with AllowLocal, so an extension never waits
// on a lost quorum. The extension calls as "extension:<name>".
type Consensus struct{ Timestamps TimestampSource }

var _ engine.HostModule = Consensus{}

// Capability implements engine.HostModule.
func (Consensus) Capability() string { return abi.CapabilityConsensus }

// Functions implements engine.HostModule.
func (h Consensus) Functions(ext string) []engine.HostFunction {
	who := nhi.ExtensionIDPrefix + ext
	i32 := api.ValueTypeI32
	return []engine.HostFunction{
		// timestamp(out_ptr, out_cap i32) -> i32
		{Name: "timestamp", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				if h.Timestamps == nil {
					stack[0] = code64(abi.EUnavailable)
					return
				}
				r, err := h.Timestamps.GetTimestamp(ctx, who, consensus.GetTimestampRequest{AllowLocal: true})
				switch {
				case err == nil:
				case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
					stack[0] = code64(abi.EDeadline)
					return
				default:
					stack[0] = code64(abi.EUnavailable)
					return
				}
				rec := abi.AppendTimestamp(make([]byte, 0, abi.MaxTimestampRecord), abi.Timestamp{
					Logical: r.Logical, Physical: r.Physical, Consensus: r.Consensus, NodeID: r.NodeID})
				stack[0] = uint64(engine.PutResult(m, uint32(stack[0]), uint32(stack[1]), rec))
			}},
	}
}
