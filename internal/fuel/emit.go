package fuel

import "math"

// Opcodes and type codes the instrumentation writes.
const (
	opUnreachable   = 0x00
	opIf            = 0x04
	opEnd           = 0x0B
	opLocalGet      = 0x20
	opLocalSet      = 0x21
	opLocalTee      = 0x22
	opGlobalGet     = 0x23
	opGlobalSet     = 0x24
	opI64Const      = 0x42
	opI64LtS        = 0x53
	opI64Sub        = 0x7D
	opI64ShrU       = 0x88
	opI64ExtendI32U = 0xAD
	blockEmpty      = 0x40
	valI32          = 0x7F
	valI64          = 0x7E
	exportGlobal    = 0x03
	minusOne        = 0x7F // -1 as a one-byte signed LEB128
)

// encoder writes insertions for one body.
type encoder struct {
	global  uint64 // the fuel global
	local   uint64 // the body's fuel local
	scratch uint64 // the body's i32 scratch local, for bulk lengths
}

// append writes one insertion. Charges are
//
//	global.get $fuel | local.get $f      ;; entry | loop
//	i64.const COST; i64.sub
//	local.tee $f; i64.const 0; i64.lt_s
//	if i64.const -1; global.set $fuel; unreachable end
//
// Trapping only once the value is negative lets a call spend exactly the
// fuel it was given. The trap path stores a constant rather than $f: with
// $f live into it, wazero's compiler slows nested loops by two thirds. A
// negative global is how the host tells a fuel trap from the guest's own.
func (e encoder) append(b []byte, ins insertion) []byte {
	switch ins.kind {
	case insEntry:
		b = append(b, opGlobalGet)
		b = appendUleb(b, e.global)
		b = append(b, opI64Const)
		b = appendSleb(b, ins.cost)
		b = append(b, opI64Sub)
	case insLoop:
		b = e.localGet(b, e.local)
		b = append(b, opI64Const)
		b = appendSleb(b, ins.cost)
		b = append(b, opI64Sub)
	case insBulk:
		// The length stays on the stack for the bulk instruction; a copy
		// goes through the scratch local into the charge.
		b = append(b, opLocalTee)
		b = appendUleb(b, e.scratch)
		b = e.localGet(b, e.local)
		b = e.localGet(b, e.scratch)
		b = append(b, opI64ExtendI32U, opI64Const, bulkShift, opI64ShrU, opI64Sub)
	case insStore:
		return e.store(b)
	case insReload:
		b = append(b, opGlobalGet)
		b = appendUleb(b, e.global)
		b = append(b, opLocalSet)
		return appendUleb(b, e.local)
	}
	b = append(b, opLocalTee)
	b = appendUleb(b, e.local)
	b = append(b, opI64Const, 0, opI64LtS, opIf, blockEmpty, opI64Const, minusOne, opGlobalSet)
	b = appendUleb(b, e.global)
	return append(b, opUnreachable, opEnd)
}

func (e encoder) localGet(b []byte, local uint64) []byte {
	b = append(b, opLocalGet)
	return appendUleb(b, local)
}

func (e encoder) store(b []byte) []byte {
	b = e.localGet(b, e.local)
	b = append(b, opGlobalSet)
	return appendUleb(b, e.global)
}

// extraLocals is the declaration groups appended to a body: the fuel local,
// and the scratch local if the body has bulk instructions.
func extraLocals(b *body) []byte {
	if b.bulk {
		return []byte{1, valI64, 1, valI32}
	}
	return []byte{1, valI64}
}

func (in *instrumenter) encoder(b *body) encoder {
	return encoder{
		global:  uint64(in.importedGlobals + in.definedGlobals),
		local:   uint64(b.fuelLocal),
		scratch: uint64(b.fuelLocal + 1),
	}
}

func (in *instrumenter) emit(initialFuel int64) ([]byte, error) {
	src := in.r.buf
	fuel := uint64(in.importedGlobals + in.definedGlobals)

	// Sizes first: the code section's size precedes its content. They are
	// measured by encoding into a scratch buffer, so they cannot disagree
	// with what is written.
	var scratch []byte
	codeSize, extra := ulebLen(uint64(len(in.bodies))), 0
	for i := range in.bodies {
		b := &in.bodies[i]
		e := in.encoder(b)
		added := len(extraLocals(b)) / 2
		b.newSize = ulebLen(uint64(b.groups+added)) + 2*added + b.end - b.locals
		for _, ins := range in.ins[b.ins0:b.ins1] {
			scratch = e.append(scratch[:0], ins)
			b.newSize += len(scratch)
		}
		extra += b.newSize - (b.end - b.locals)
		codeSize += ulebLen(uint64(b.newSize)) + b.newSize
	}
	if codeSize > math.MaxUint32 {
		in.r.sec, in.r.pos = "code", len(src)
		return nil, in.r.fail(ErrLimit, "instrumented code section would exceed 4 GiB")
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
	out := make([]byte, 0, len(src)+extra+64)
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
		case s.id == secGlobal:
			out = appendVecSection(out, secGlobal, s.count, src[s.items:s.end], globalEntry())
		case s.id == secExport:
			out = appendVecSection(out, secExport, s.count, src[s.items:s.end], exportEntry())
		case s.id == secCode:
			out = in.appendCode(out, codeSize)
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

func (in *instrumenter) appendCode(out []byte, size int) []byte {
	src := in.r.buf
	out = append(out, secCode)
	out = appendUleb(out, uint64(size))
	out = appendUleb(out, uint64(len(in.bodies)))
	for i := range in.bodies {
		b := &in.bodies[i]
		e := in.encoder(b)
		added := extraLocals(b)
		out = appendUleb(out, uint64(b.newSize))
		out = appendUleb(out, uint64(b.groups+len(added)/2))
		out = append(out, src[b.locals:b.code]...)
		out = append(out, added...)
		pos := b.code
		for _, ins := range in.ins[b.ins0:b.ins1] {
			out = append(out, src[pos:ins.at]...)
			pos = ins.at
			out = e.append(out, ins)
		}
		out = append(out, src[pos:b.end]...)
	}
	return out
}
