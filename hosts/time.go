package hosts

import (
	"context"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
)

// Clock is creto:time/v1: the node's wall clock, for extensions that
// decide by time of day or compute quota windows.
type Clock struct {
	// Now returns the current time; nil means time.Now. Tests set it.
	Now func() time.Time
}

var _ engine.HostModule = Clock{}

// Capability implements engine.HostModule.
func (Clock) Capability() string { return abi.CapabilityTime }

// Functions implements engine.HostModule.
func (c Clock) Functions(string) []engine.HostFunction {
	now := c.Now
	if now == nil {
		now = time.Now
	}
	return []engine.HostFunction{{
		Name: "now", Results: []api.ValueType{api.ValueTypeI64},
		Func: func(ctx context.Context, m api.Module, stack []uint64) {
			stack[0] = uint64(now().UnixNano())
		},
	}}
}
