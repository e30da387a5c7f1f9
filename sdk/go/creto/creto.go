//go:build wasip1

// Package creto is the Go guest SDK of Creto's extension ABI v1
// (abi/SPEC.md). An extension calls Handle in its init and builds with
//
//	GOOS=wasip1 GOARCH=wasm go build -buildmode=c-shared -o ext.wasm .
//
// then gets its manifest with `creto ext annotate`. The SDK exports the
// ABI's functions itself; the request is read in place from a static
// arena and the decision written back into it, so an evaluation allocates
// nothing the SDK could avoid.
//
// Go modules are large (about 2 MB) and start slowly (milliseconds); give
// them generous limits in the manifest (memory_pages ≥ 256, fuel ≥
// 10,000,000). TinyGo builds the same source smaller.
package creto

import (
	"time"
	"unsafe"

	"github.com/creto-systems/creto/abi"
)

// arena is the I/O arena: a package-level array, so it never moves and is
// never collected.
var arena [64 << 10]byte

var (
	evaluate func(Request) Result
	initFunc func(config []byte) error
)

// Handle sets the function that decides each request.
func Handle(fn func(Request) Result) { evaluate = fn }

// OnInit sets the function that receives the operator's configuration
// once per instance; an error refuses it (and the registration).
func OnInit(fn func(config []byte) error) { initFunc = fn }

// Request is the request being evaluated, read in place: its byte slices
// are valid only until the handler returns.
type Request struct{ abi.RequestView }

// Context returns the request context (JSON), fetching it from the host
// when it was too large for the arena.
func (r Request) Context() []byte {
	if r.Flags()&abi.FlagContextOmitted == 0 {
		return r.RequestView.Context()
	}
	return pull(hostContext)
}

// Result is an extension's answer.
type Result struct {
	status   uint32
	decision abi.Decision
	message  string
}

// Continue lets the request go on to the next extension.
func Continue() Result { return Result{status: abi.StatusContinue} }

// Deny refuses the request; id names the rule, reason says why.
func Deny(id, reason string) Result {
	return decided(abi.Decision{Kind: abi.KindDeny, ID: id, Text: reason})
}

// RequireOversight makes the request wait for human approval.
func RequireOversight(id, requirement string, timeout time.Duration, approvers ...string) Result {
	return decided(abi.Decision{Kind: abi.KindRequiresOversight, ID: id, Text: requirement, A: int64(timeout), Approvers: approvers})
}

// QuotaExceeded reports an exhausted quota.
func QuotaExceeded(id string, limit, used int64, resetAt time.Time) Result {
	var reset int64
	if !resetAt.IsZero() {
		reset = resetAt.UnixNano()
	}
	return decided(abi.Decision{Kind: abi.KindQuotaExceeded, ID: id, A: limit, B: used, C: reset})
}

// RateLimited asks the caller to retry later.
func RateLimited(retryAfter time.Duration, remaining int) Result {
	return decided(abi.Decision{Kind: abi.KindRateLimited, A: int64(retryAfter), B: int64(remaining)})
}

// Fail reports that the extension could not decide; the engine applies the
// extension's on_error.
func Fail(message string) Result { return Result{status: abi.StatusError, message: message} }

func decided(d abi.Decision) Result { return Result{status: abi.StatusDecision, decision: d} }

//go:wasmexport creto_abi_1
func marker() {}

//go:wasmexport creto_io
func io() uint64 {
	return uint64(uintptr(unsafe.Pointer(&arena[0])))<<32 | uint64(len(arena))
}

//go:wasmexport creto_init
func initialize(n uint32) uint64 {
	if initFunc == nil {
		return abi.Result(abi.StatusContinue, 0)
	}
	if err := initFunc(append([]byte(nil), arena[:n]...)); err != nil {
		return writeMessage(err.Error())
	}
	return abi.Result(abi.StatusContinue, 0)
}

//go:wasmexport creto_evaluate
func evaluateExport(n uint32) uint64 {
	if evaluate == nil {
		return writeMessage("the extension never called creto.Handle")
	}
	v, err := abi.ParseRequest(arena[:n])
	if err != nil {
		return writeMessage(err.Error())
	}
	r := evaluate(Request{v})
	switch r.status {
	case abi.StatusDecision:
		out := abi.AppendDecision(arena[:0], &r.decision)
		if len(out) > len(arena) {
			return writeMessage("decision too large")
		}
		return abi.Result(abi.StatusDecision, len(out))
	case abi.StatusError:
		return writeMessage(r.message)
	}
	return abi.Result(abi.StatusContinue, 0)
}

func writeMessage(msg string) uint64 {
	n := copy(arena[:], msg)
	return abi.Result(abi.StatusError, n)
}
