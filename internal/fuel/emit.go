package fuel

import "math"

// Opcodes and type codes the instrumentation writes.
const (
	opUnreachable   = 0x00
	opIf            = 0x04
	opEnd           = 0x0B
	opCall          = 0x10
	opLocalGet      = 0x20
	opGlobalGet     = 0x23
	opGlobalSet     = 0x24
	opI64Const      = 0x42
	opI64LtS        = 0x53
	opI64Sub        = 0x7D
	opI64ShrU       = 0x88
	opI64ExtendI32U = 0xAD
	blockEmpty      = 0x40
	typeFunc        = 0x60
	valI32          = 0x7F
	valI64          = 0x7E
	exportGlobal    = 0x03
)

// appendCharge writes
//
//	global.get $fuel; i64.const cost; i64.sub; global.set $fuel
//	global.get $fuel; i64.const 0; i64.lt_s; if unreachable end
//
// Wasm has no global.tee, so the new value is read back; engines keep it in
// a register anyway. Trapping only once the value is negative lets a call
// spend exactly the fuel it was given, and leaves the global negative after
// exhaustion so the host can tell a fuel trap from the guest's own.
func appendCharge(b []byte, fuel uint64, cost int64) []byte {
	b = append(b, opGlobalGet)
	b = appendUleb(b, fuel)
	b = append(b, opI64Const)
	b = appendSleb(b, cost)
	return appendDebit(b, fuel)
}

func chargeLen(fuel uint64, cost int64) int {
	return 1 + ulebLen(fuel) + 1 + slebLen(cost) + debitLen(fuel)
}

// appendDebit writes the tail shared by the charge and the bulk helper:
// subtract the amount on the stack from the fuel read below it, store, and
// trap if the result went negative.
func appendDebit(b []byte, fuel uint64) []byte {
	b = append(b, opI64Sub, opGlobalSet)
	b = appendUleb(b, fuel)
	b = append(b, opGlobalGet)
	b = appendUleb(b, fuel)
	return append(b, opI64Const, 0, opI64LtS, opIf, blockEmpty, opUnreachable, opEnd)
}

func debitLen(fuel uint64) int { return 2 + ulebLen(fuel) + 1 + ulebLen(fuel) + 7 }

// appendHelperBody writes the bulk-charge function, of type (i32) -> (i32):
// it charges len/BulkBytesPerUnit and hands len back, so a call to it can
// sit right before a bulk instruction without disturbing the operand stack.
func appendHelperBody(b []byte, fuel uint64) []byte {
	b = append(b, 0) // no locals
	b = append(b, opGlobalGet)
	b = appendUleb(b, fuel)
	b = append(b, opLocalGet, 0, opI64ExtendI32U, opI64Const, bulkShift, opI64ShrU)
	b = appendDebit(b, fuel)
	return append(b, opLocalGet, 0, opEnd)
}

var helperType = []byte{typeFunc, 1, valI32, 1, valI32}

func (in *instrumenter) emit(initialFuel int64) ([]byte, error) {
	src := in.r.buf
	fuel := uint64(in.importedGlobals + in.definedGlobals)
	helper := uint64(in.importedFuncs + in.definedFuncs)
	var helperBody []byte
	if in.bulk {
		helperBody = appendHelperBody(nil, fuel)
	}

	numBodies := len(in.bodies)
	if in.bulk {
		numBodies++
	}
	codeSize, extra := ulebLen(uint64(numBodies)), 0
	for i := range in.bodies {
		b := &in.bodies[i]
		b.newSize = b.end - b.start
		for _, ins := range in.ins[b.ins0:b.ins1] {
			if ins.bulk {
				b.newSize += 1 + ulebLen(helper)
			} else {
				b.newSize += chargeLen(fuel, ins.cost)
			}
		}
		extra += b.newSize - (b.end - b.start)
		codeSize += ulebLen(uint64(b.newSize)) + b.newSize
	}
	if in.bulk {
		codeSize += ulebLen(uint64(len(helperBody))) + len(helperBody)
	}
	if codeSize > math.MaxUint32 {
		in.r.sec, in.r.pos = "code", len(src)
		return nil, in.r.fail(ErrUnsupported, "instrumented code section would exceed 4 GiB")
	}

	var entry []byte
	globalEntry := func() []byte {
		entry = append(entry[:0], valI64, 1, opI64Const)
		entry = appendSleb(entry, initialFuel)
		return append(entry, opEnd)
	}
	exportEntry := func() []byte {
		entry = appendUleb(entry[:0], uint64(len(GlobalName)))
		entry = append(entry, GlobalName...)
		entry = append(entry, exportGlobal)
		return appendUleb(entry, fuel)
	}

	// A missing section goes right after the last section that must precede
	// it, so that trailing custom sections (the name section must follow
	// every known section) stay last.
	newGlobalAfter, newExportAfter := in.placeAfter(secGlobal), in.placeAfter(secExport)
	out := make([]byte, 0, len(src)+extra+len(helperBody)+64)
	out = append(out, src[:8]...)
	appendNew := func(after int) {
		if after == newGlobalAfter {
			out = appendVecSection(out, secGlobal, 0, nil, globalEntry())
		}
		if after == newExportAfter {
			out = appendVecSection(out, secExport, 0, nil, exportEntry())
		}
	}
	appendNew(-1)
	for i, s := range in.sections {
		switch {
		case s.dropDebug:
		case s.id == secType && in.bulk:
			out = appendVecSection(out, secType, s.count, src[s.items:s.end], helperType)
		case s.id == secFunction && in.bulk:
			entry = appendUleb(entry[:0], uint64(in.numTypes))
			out = appendVecSection(out, secFunction, s.count, src[s.items:s.end], entry)
		case s.id == secGlobal:
			out = appendVecSection(out, secGlobal, s.count, src[s.items:s.end], globalEntry())
		case s.id == secExport:
			out = appendVecSection(out, secExport, s.count, src[s.items:s.end], exportEntry())
		case s.id == secCode:
			out = in.appendCode(out, codeSize, numBodies, fuel, helper, helperBody)
		default:
			out = append(out, src[s.start:s.end]...)
		}
		appendNew(i)
	}
	return out, nil
}

// placeAfter returns the index of the section a new section of the given id
// must follow: -1 (right after the header) if none precedes it, and -2 if
// the module already has one.
func (in *instrumenter) placeAfter(id byte) int {
	after := -1
	for i, s := range in.sections {
		switch {
		case s.id == id:
			return -2
		case s.id != secCustom && sectionRank[s.id] < sectionRank[id]:
			after = i
		}
	}
	return after
}

// appendVecSection writes a vector section made of the original items
// followed by one more.
func appendVecSection(out []byte, id byte, count int, items, extra []byte) []byte {
	n := uint64(count + 1)
	out = append(out, id)
	out = appendUleb(out, uint64(ulebLen(n)+len(items)+len(extra)))
	out = appendUleb(out, n)
	out = append(out, items...)
	return append(out, extra...)
}

func (in *instrumenter) appendCode(out []byte, size, numBodies int, fuel, helper uint64, helperBody []byte) []byte {
	src := in.r.buf
	out = append(out, secCode)
	out = appendUleb(out, uint64(size))
	out = appendUleb(out, uint64(numBodies))
	for _, b := range in.bodies {
		out = appendUleb(out, uint64(b.newSize))
		pos := b.start
		for _, ins := range in.ins[b.ins0:b.ins1] {
			out = append(out, src[pos:ins.at]...)
			pos = ins.at
			if ins.bulk {
				out = append(out, opCall)
				out = appendUleb(out, helper)
			} else {
				out = appendCharge(out, fuel, ins.cost)
			}
		}
		out = append(out, src[pos:b.end]...)
	}
	if helperBody != nil {
		out = appendUleb(out, uint64(len(helperBody)))
		out = append(out, helperBody...)
	}
	return out
}
