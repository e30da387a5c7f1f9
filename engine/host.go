package engine

import (
	"context"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
)

// HostModule provides the host functions of one capability (SPEC.md §6)
// to extensions the operator granted it. The engine instantiates it once
// per extension, so functions can be bound to the extension's name (to
// namespace its state, for example).
type HostModule interface {
	// Capability is the grant name; the import module is
	// "creto:<capability>/v1".
	Capability() string
	// Functions returns the functions for the extension named ext.
	Functions(ext string) []HostFunction
}

// HostFunction is one host function: scalar parameters and results only.
type HostFunction struct {
	Name    string
	Params  []api.ValueType
	Results []api.ValueType
	Func    api.GoModuleFunc
}

// WithHostModules makes capabilities available to extensions.
func WithHostModules(mods ...HostModule) Option {
	return func(c *config) { c.hostModules = append(c.hostModules, mods...) }
}

// GuestBytes returns guest memory [ptr, ptr+n) or false when it is out of
// range. The slice aliases guest memory: copy what must outlive the call.
func GuestBytes(m api.Module, ptr, n uint32) ([]byte, bool) {
	return m.Memory().Read(ptr, n)
}

// PutResult writes data to guest memory at outPtr following the ABI's
// return convention: the full length is returned, and nothing is written
// when it exceeds outCap; EINVAL when the buffer is out of range.
func PutResult(m api.Module, outPtr, outCap uint32, data []byte) int64 {
	if len(data) > int(outCap) {
		return int64(len(data))
	}
	if !m.Memory().Write(outPtr, data) {
		return abi.EInvalid
	}
	return int64(len(data))
}

// errno encodes a negative ABI result for the stack.
func errno(code int64) uint64 { return uint64(code) }

var i32 = api.ValueTypeI32

// maxLogMessage caps what one log call may write.
const maxLogMessage = 1024

// maxLogLinesPerSecond is how many lines an extension may log per second;
// a guest logging in a loop must not flood the node's log.
const maxLogLinesPerSecond = 100

func (e *Engine) logFunctions(x *extension) []HostFunction {
	return []HostFunction{{
		Name: "write", Params: []api.ValueType{i32, i32, i32},
		Func: func(ctx context.Context, m api.Module, stack []uint64) {
			if !x.logLimit.allow(mono()) {
				return
			}
			msg, ok := GuestBytes(m, uint32(stack[1]), min(uint32(stack[2]), maxLogMessage))
			if ok {
				x.logger(int(int32(stack[0])), x.name, string(msg))
			}
		},
	}}
}

// lineLimit counts log lines per one-second window.
type lineLimit struct {
	window atomic.Int64
	lines  atomic.Int64
}

func (l *lineLimit) allow(now int64) bool {
	w := now / int64(time.Second)
	if l.window.Load() != w {
		l.window.Store(w)
		l.lines.Store(0)
	}
	return l.lines.Add(1) <= maxLogLinesPerSecond
}

// logGuest writes a guest's log line; guests are untrusted, so their level
// is clamped and their text is a value, never a format.
func (e *Engine) logGuest(level int, ext, msg string) {
	lvl := slog.LevelInfo
	switch {
	case level <= 0:
		lvl = slog.LevelDebug
	case level == 2:
		lvl = slog.LevelWarn
	case level >= 3:
		lvl = slog.LevelError
	}
	e.cfg.logger.Log(context.Background(), lvl, "extension log", "extension", ext, "message", msg)
}

// requestFunctions are creto:request/v1: the calling instance's current
// request, found through the module that calls.
func (x *extension) requestFunctions() []HostFunction {
	field := func(pick func(*instance) []byte) api.GoModuleFunc {
		return func(ctx context.Context, m api.Module, stack []uint64) {
			in, ok := x.byModule.Load(m)
			if !ok {
				stack[0] = errno(abi.EUnavailable)
				return
			}
			stack[0] = uint64(PutResult(m, uint32(stack[0]), uint32(stack[1]), orEmptyObject(pick(in.(*instance)))))
		}
	}
	return []HostFunction{
		{Name: "context", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: field(func(in *instance) []byte { return in.context })},
		{Name: "principal_attributes", Params: []api.ValueType{i32, i32}, Results: []api.ValueType{i32},
			Func: field(func(in *instance) []byte { return in.attributes })},
	}
}
