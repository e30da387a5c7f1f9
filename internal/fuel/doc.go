// Package fuel bounds the execution of untrusted WebAssembly modules by
// deterministic fuel metering, inserted into the bytecode when a module is
// loaded.
//
// Wazero can only stop a running guest through WithCloseOnContextDone,
// which starts a goroutine on every call (about a microsecond), makes loop
// back-edges exit to Go (tight loops run some forty times slower) and closes
// the module when it fires. Metering instead costs one store before a call
// and a handful of instructions per loop iteration, the instance survives
// exhaustion, and the fuel spent is the same on every machine, so it can be
// recorded in an audit trail. Blockchain runtimes (NEAR, Casper, Linera)
// meter untrusted Wasm the same way.
//
// # Mechanism
//
// Instrument adds one mutable i64 global, exported as GlobalName, and at the
// start of every function body and of every loop body inserts
//
//	global.get $fuel; i64.const COST; i64.sub; global.set $fuel
//	global.get $fuel; i64.const 0; i64.lt_s; if unreachable end
//
// The host stores a budget in the global before each call (see Meter); the
// guest traps with "unreachable" at the first charge that takes it below
// zero.
//
// COST is the number of instructions in the function body or loop body,
// counting the instructions of nested blocks and ifs (both arms), the end
// that closes it, but not the bodies of nested loops, which charge for
// themselves. Every region therefore costs at least 1.
//
// Bulk instructions whose work grows with a length operand (memory.fill,
// memory.copy, memory.init, table.fill, table.copy, table.init) are preceded
// by a call to an added helper function that charges length /
// BulkBytesPerUnit more and returns the length unchanged. Without it a loop
// of one memory.fill over a large memory would do gigabytes of work per unit
// of fuel.
//
// # Guarantee
//
// With fuel F, a call executes at most F instructions of the module's own
// code (plus, for bulk instructions, F*BulkBytesPerUnit bytes or elements),
// then traps. The argument: split execution into activations of regions (a
// function body from its entry, or a loop body from the start of one
// iteration). Within one activation control only moves forward: blocks and
// ifs branch to their end, a branch to an enclosing loop or block leaves the
// region, and a branch back to the start of a loop starts a new activation
// of that loop, which charges again. So each instruction of a region runs at
// most once per activation, and the activation has paid for all of them on
// entry. Every unbounded execution must iterate a loop or make calls, and
// both charge at least 1 per iteration or call. Recursion is additionally
// limited by wazero's stack; infinite tail recursion (return_call) never
// hits that limit, but pays at every entry like any call.
//
// The guest cannot refill its fuel: the global is added after every existing
// global, and Instrument rejects modules whose code, exports, start or
// global initializers name a global, function or type index past the
// original ones, which only the instrumentation could have filled (element
// segments are not parsed; one naming the helper's index would only let the
// guest burn fuel faster). It also rejects modules that import
// or export GlobalName, so instrumenting twice fails and no module can
// import another's fuel by that name. A host that links modules together
// should still not let untrusted modules import from instrumented ones.
//
// Not metered: time spent in host functions (bound them with the call's
// context), memory.grow and table.grow (their total over an instance's life
// is bounded by the memory and table maxima), and the engine's own work at
// instantiation (data and element segments).
//
// # Instantiation
//
// The host cannot set the global before an instance exists, so the global
// starts at Options.InitialFuel (DefaultInitialFuel for Instrument): the
// budget of the start function and of an exported _start, which wazero calls
// during instantiation unless ModuleConfig.WithStartFunctions says
// otherwise. A module that loops at start fails to instantiate with an
// "unreachable" trap.
//
// # Supported instructions
//
// Everything in the WebAssembly 2.0 core specification except SIMD: the MVP
// instruction set, sign extension (0xC0-0xC4), saturating truncation (0xFC
// 0-7), bulk memory and table operations (0xFC 8-17), reference types
// (ref.null, ref.is_null, ref.func, table.get, table.set, typed select),
// multi-value block types (empty, a value type or a type index), and the
// tail-call proposal (return_call, return_call_indirect). Extended constant
// expressions are accepted in initializers. SIMD (0xFD), threads and atomics
// (0xFE, shared memories), exception handling (legacy and exnref), typed
// function references, GC, multi-memory, memory64 and component binaries are
// rejected with ErrUnsupported.
//
// # Output
//
// Instrument rewrites the global and export sections (creating them if
// absent), the code section, and, when a bulk instruction is present, the
// type and function sections (one appended entry each). Every existing
// index keeps its meaning: the global, type and function it adds come after
// all existing ones. Every other section is copied byte for byte, in place,
// with one exception: custom sections named ".debug_*" are dropped, because
// DWARF addresses code by offset and every offset after the first charge
// moves; wazero would otherwise report wrong source lines. The name section
// and other custom sections are kept (offsets in them, as in source maps,
// describe the original code).
//
// Instrument reads its input with a bounds check on every byte, never trusts
// a count or size beyond the bytes that remain, and reports problems as
// *Error values matching ErrMalformed, ErrUnsupported or ErrReservedName,
// with the section, function index and offset. It does not replace the
// engine's validation: a module it accepts may still fail to compile, and
// then its output fails too.
package fuel
