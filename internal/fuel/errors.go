package fuel

import (
	"errors"
	"fmt"
	"strings"
)

// Sentinel errors. Every error Instrument returns is an *Error wrapping
// exactly one of ErrMalformed, ErrUnsupported, ErrReservedName and
// ErrLimit, so callers decide with errors.Is whether to report a broken
// upload, a toolchain setting to change, a module that is already
// instrumented or tries to reach the fuel global, or a pathological one.
var (
	// ErrMalformed: the bytes are not a WebAssembly binary module, or are
	// one that no validator would accept (bad LEB128, a size that lies, an
	// unknown opcode, an index out of range).
	ErrMalformed = errors.New("fuel: malformed module")
	// ErrUnsupported: the module is well formed but uses a feature whose
	// instructions this package does not meter (SIMD, threads, exception
	// handling, GC, multi-memory, memory64).
	ErrUnsupported = errors.New("fuel: unsupported feature")
	// ErrReservedName: the module already imports or exports GlobalName.
	ErrReservedName = errors.New("fuel: reserved name")
	// ErrLimit: the module is valid but exceeds a limit set to keep the
	// engine's memory use proportional to the module's size (see
	// MaxFunctionLocals).
	ErrLimit = errors.New("fuel: implementation limit exceeded")
	// ErrNotInstrumented: a host helper was given an instance without a
	// mutable i64 global exported as GlobalName.
	ErrNotInstrumented = errors.New("fuel: module is not instrumented")
)

// Error locates a rejection in the input so that whoever built the module
// can find the offending byte with a disassembler.
type Error struct {
	// Kind is the sentinel the error matches: ErrMalformed, ErrUnsupported,
	// ErrReservedName or ErrLimit.
	Kind error
	// Section names the section being read ("header", "import", "code"...).
	Section string
	// Func is the index of the function in the module's function index
	// space (imports first), or -1 outside a function body.
	Func int
	// Offset is the byte offset in the input where the problem was found.
	Offset int
	// Msg says what was wrong.
	Msg string
}

// Error reads like "fuel: unsupported feature: code section, func 3,
// offset 0x1a2: SIMD instruction 0xfd".
func (e *Error) Error() string {
	var b strings.Builder
	b.WriteString(e.Kind.Error())
	b.WriteString(": ")
	if e.Section != "" {
		b.WriteString(e.Section)
		b.WriteString(" section, ")
	}
	if e.Func >= 0 {
		fmt.Fprintf(&b, "func %d, ", e.Func)
	}
	fmt.Fprintf(&b, "offset %#x: %s", e.Offset, e.Msg)
	return b.String()
}

// Unwrap lets errors.Is match Kind.
func (e *Error) Unwrap() error { return e.Kind }
