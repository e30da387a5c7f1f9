package fuel

// field is one immediate operand of an instruction. Index fields that name
// an index space Instrument extends (globals, a function's locals) are
// checked against the original module, so that no instruction can reach
// what the instrumentation adds; functions and types are checked too, for
// errors that name the culprit.
type field uint8

const (
	fNone      field = iota
	fU32             // label, local, table, element or data index
	fFunc            // function index
	fType            // type index
	fGlobal          // global index
	fLocal           // local index
	fZero            // reserved memory index, always the byte 0x00
	fBlockType       // 0x40, a value type, or an s33 type index
	fI32
	fI64
	fF32
	fF64
	fMemArg
	fSelectT
	fRefType
)

// ctrl is what the walker does with an instruction besides skipping its
// immediates.
type ctrl uint8

const (
	cInvalid     ctrl = iota // the zero value, so that unlisted opcodes are rejected
	cPlain                   // no effect on structure or on the fuel global
	cBlock                   // opens a block
	cLoop                    // opens a loop: a new metered region
	cIf                      // opens an if, which may have an else
	cElse                    // switches an if to its else arm
	cEnd                     // closes the innermost block, or the body
	cBranch                  // br, br_if: leaves the function if it targets the body
	cBrTable                 // br_table: the same, for any of its targets
	cExit                    // return, unreachable: leaves the function
	cCall                    // runs other code, which reads and writes the global
	cTailCall                // leaves the function for other code
	cPrefixFC                // the 0xFC family, decoded by a second table
	cUnsupported             // a feature this package does not meter
)

type opInfo struct {
	ctrl ctrl
	imm  [2]field
	// bulk marks instructions whose work grows with a length operand on top
	// of the stack; they are priced by that length at run time.
	bulk bool
	// feature names the proposal an unsupported opcode belongs to.
	feature string
}

func with(c ctrl, imm ...field) opInfo {
	info := opInfo{ctrl: c}
	copy(info.imm[:], imm)
	return info
}

func unsupported(feature string) opInfo { return opInfo{ctrl: cUnsupported, feature: feature} }

// opRanges lists every single-byte opcode, following the opcode tables of
// the core specification 2.0 and of the tail-call proposal. Opcodes of
// proposals this package does not decode are listed so that the error can
// name the feature instead of calling the module malformed.
var opRanges = []struct {
	lo, hi byte
	info   opInfo
}{
	{0x00, 0x00, with(cExit)},  // unreachable
	{0x01, 0x01, with(cPlain)}, // nop
	{0x02, 0x02, with(cBlock, fBlockType)},
	{0x03, 0x03, with(cLoop, fBlockType)},
	{0x04, 0x04, with(cIf, fBlockType)},
	{0x05, 0x05, with(cElse)},
	{0x06, 0x0A, unsupported("exception handling")}, // try, catch, throw, rethrow, throw_ref
	{0x0B, 0x0B, with(cEnd)},
	{0x0C, 0x0D, with(cBranch)},                            // br, br_if: the label is read by the walker
	{0x0E, 0x0E, with(cBrTable)},                           // br_table: likewise
	{0x0F, 0x0F, with(cExit)},                              // return
	{0x10, 0x10, with(cCall, fFunc)},                       // call
	{0x11, 0x11, with(cCall, fType, fU32)},                 // call_indirect
	{0x12, 0x12, with(cTailCall, fFunc)},                   // return_call
	{0x13, 0x13, with(cTailCall, fType, fU32)},             // return_call_indirect
	{0x14, 0x15, unsupported("typed function references")}, // call_ref, return_call_ref
	{0x18, 0x19, unsupported("exception handling")},        // delegate, catch_all
	{0x1A, 0x1B, with(cPlain)},                             // drop, select
	{0x1C, 0x1C, with(cPlain, fSelectT)},                   // select t*
	{0x1F, 0x1F, unsupported("exception handling")},        // try_table
	{0x20, 0x22, with(cPlain, fLocal)},                     // local.get, local.set, local.tee
	{0x23, 0x24, with(cPlain, fGlobal)},                    // global.get, global.set
	{0x25, 0x26, with(cPlain, fU32)},                       // table.get, table.set
	{0x28, 0x3E, with(cPlain, fMemArg)},                    // loads and stores
	{0x3F, 0x40, with(cPlain, fZero)},                      // memory.size, memory.grow
	{0x41, 0x41, with(cPlain, fI32)},
	{0x42, 0x42, with(cPlain, fI64)},
	{0x43, 0x43, with(cPlain, fF32)},
	{0x44, 0x44, with(cPlain, fF64)},
	{0x45, 0xC4, with(cPlain)},           // numeric, conversions, sign extension
	{0xD0, 0xD0, with(cPlain, fRefType)}, // ref.null
	{0xD1, 0xD1, with(cPlain)},           // ref.is_null
	{0xD2, 0xD2, with(cPlain, fFunc)},    // ref.func
	{0xD3, 0xD6, unsupported("typed function references / GC")},
	{0xFB, 0xFB, unsupported("GC")},
	{0xFC, 0xFC, with(cPrefixFC)},
	{0xFD, 0xFD, unsupported("SIMD")},
	{0xFE, 0xFE, unsupported("threads (atomics)")},
}

// ops is opRanges indexed by opcode; unlisted opcodes stay cInvalid.
var ops = func() (t [256]opInfo) {
	for _, r := range opRanges {
		for op := int(r.lo); op <= int(r.hi); op++ {
			t[op] = r.info
		}
	}
	return t
}()

// fcOps describes the 0xFC family: saturating truncation (0-7) and bulk
// memory and table operations (8-17).
//
// memory.grow and table.grow are not priced by length: growth only ever
// adds up to the memory or table maximum over an instance's life, whereas
// fill, copy and init can repeat the same large span in a loop.
var fcOps = [...]opInfo{
	0: with(cPlain), 1: with(cPlain), 2: with(cPlain), 3: with(cPlain), // i32.trunc_sat_*
	4: with(cPlain), 5: with(cPlain), 6: with(cPlain), 7: with(cPlain), // i64.trunc_sat_*
	8:  bulk(fU32, fZero),  // memory.init
	9:  with(cPlain, fU32), // data.drop
	10: bulk(fZero, fZero), // memory.copy
	11: bulk(fZero),        // memory.fill
	12: bulk(fU32, fU32),   // table.init
	13: with(cPlain, fU32), // elem.drop
	14: bulk(fU32, fU32),   // table.copy
	15: with(cPlain, fU32), // table.grow
	16: with(cPlain, fU32), // table.size
	17: bulk(fU32),         // table.fill
}

func bulk(imm ...field) opInfo {
	info := with(cPlain, imm...)
	info.bulk = true
	return info
}
