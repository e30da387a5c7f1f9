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
// Instrument adds one mutable i64 global, exported as GlobalName, which the
// host sets before each call (see Meter). It inserts a charge at the start
// of every function body and of every loop body:
//
//	global.get $fuel | local.get $f      ;; function entry | loop head
//	i64.const COST; i64.sub
//	local.tee $f; i64.const 0; i64.lt_s
//	if i64.const -1; global.set $fuel; unreachable end
//
// so the guest traps with "unreachable" at the first charge that would take
// the fuel below zero, leaving the global at -1.
//
// While a function runs its fuel lives in $f, a local added to it, because
// a charge to a global is a store and a load carried from one loop
// iteration to the next, which slowed tight loops by up to half in
// measurements, where a charge to a local costs a few percent. The local is
// stored to the global before every call, return, tail call, branch out of
// the body, unreachable and the body's final end, and reloaded after every
// call, so callees, host functions (which may lower the fuel to price their
// own work) and the host after the call all see the fuel that is left.
//
// COST is the number of instructions in the function body or loop body,
// counting the instructions of nested blocks and ifs (both arms) and the
// end that closes it, but not the bodies of nested loops, which charge for
// themselves. Every region therefore costs at least 1. The inserted code
// itself is not counted: fuel measures the module's own instructions, the
// same on every engine.
//
// Bulk instructions whose work grows with a length operand (memory.fill,
// memory.copy, memory.init, table.fill, table.copy, table.init) charge
// length / BulkBytesPerUnit more just before they run, the length being
// copied off the stack through a second added local. Without that a loop of
// one memory.fill over a large memory would do gigabytes of work per unit
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
// A trap other than exhaustion (a bad memory access, a division by zero)
// leaves the global at its value at the last call boundary; the host sets
// it before the next call anyway.
//
// The guest cannot refill its fuel: the global is added after every existing
// global, and Instrument rejects modules whose code, exports or initializers
// name a global index past the original ones, which only the
// instrumentation could have filled. The added locals come after every
// existing one, so no original instruction can name them. Instrument also
// rejects modules that import or export GlobalName, so instrumenting twice
// fails and no module can import another's fuel by that name. A host that
// links modules together should still not let untrusted modules import from
// instrumented ones.
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
// Instrument rewrites the code section (charges, one or two locals per
// body) and the global and export sections (one entry each, creating the
// sections if absent, in their place in the section order). Every existing
// index keeps its meaning. Every other section is copied byte for byte, in
// place, with one exception: custom sections named ".debug_*" are dropped,
// because DWARF addresses code by offset and every offset after the first
// charge moves; wazero would otherwise report wrong source lines. The name
// section and other custom sections are kept (offsets in them, as in source
// maps, describe the original code).
//
// Instrument reads its input with a bounds check on every byte, never trusts
// a count or size beyond the bytes that remain, and reports problems as
// *Error values matching ErrMalformed, ErrUnsupported, ErrReservedName or
// ErrLimit, with the section, function index and offset. It does not
// replace the engine's validation: a module it accepts may still fail to
// compile, and then its output fails too. It does bound what wazero v1.12
// sizes allocations by while decoding, before it validates anything: vector
// counts, declared locals (see MaxFunctionLocals) and the counts of the name
// section's maps. Unchecked, each lets a module of a few dozen bytes make
// the engine allocate gigabytes. Instantiation is another matter: table
// and memory minimums are the host's to limit.
package fuel
