package fuel

import "bytes"

// GlobalName is the export name of the fuel global: a mutable i64 that the
// host sets before each call and that the guest's code decrements.
const GlobalName = "creto_fuel"

// DefaultInitialFuel is the value the fuel global holds when Instrument's
// output is instantiated. It is the budget of the start function (and of
// an exported _start, which wazero calls during instantiation by default),
// since the host cannot set the global before the instance exists. A unit
// is one instruction, 0.06 to 0.5 ns on the test kernels, so this is 6 to
// 50 ms of guest code: enough for any sane initializer, little enough that
// a looping one fails instantiation instead of wedging it.
const DefaultInitialFuel int64 = 100_000_000

// BulkBytesPerUnit is how many bytes (or table elements) a bulk memory or
// table operation may touch per unit of fuel. One unit buys about as much
// time in memory.fill or memory.copy as one ordinary instruction.
const BulkBytesPerUnit = 1 << bulkShift

const bulkShift = 4

// MaxFunctionLocals is the most locals one function may declare: the limit
// of web engines and wasmtime, so no module that runs elsewhere is refused.
// A module may also declare at most one local per byte of its own size (or
// MaxFunctionLocals, if that is more) in total. Wazero expands every
// declared local when it decodes a module: without these bounds a 29-byte
// module declaring 2^26 locals makes wazero v1.12 allocate 2 GB.
const MaxFunctionLocals = 50_000

// Options tunes InstrumentWith.
type Options struct {
	// InitialFuel is the value the fuel global holds when an instance is
	// created (see DefaultInitialFuel). Zero makes a start function trap at
	// its first charge; negative values are treated as zero.
	InitialFuel int64
}

// Instrument returns a copy of the module with fuel metering inserted and
// the fuel global exported as GlobalName, starting at DefaultInitialFuel.
// The input is not modified. Errors are *Error values matching
// ErrMalformed, ErrUnsupported, ErrReservedName or ErrLimit.
func Instrument(module []byte) ([]byte, error) {
	return InstrumentWith(module, Options{InitialFuel: DefaultInitialFuel})
}

// InstrumentWith is Instrument with explicit options.
func InstrumentWith(module []byte, opts Options) ([]byte, error) {
	in := instrumenter{r: reader{buf: module, limit: len(module), fn: -1}}
	if err := in.parse(); err != nil {
		return nil, err
	}
	return in.emit(max(opts.InitialFuel, 0))
}

// Section ids, and their required order (custom sections may appear
// anywhere). The tag section belongs to exception handling, which is
// rejected, but it still has a place in the order.
const (
	secCustom    = 0
	secType      = 1
	secImport    = 2
	secFunction  = 3
	secTable     = 4
	secMemory    = 5
	secGlobal    = 6
	secExport    = 7
	secStart     = 8
	secElement   = 9
	secCode      = 10
	secData      = 11
	secDataCount = 12
	secTag       = 13
)

var sectionRank = [...]int{
	secType: 1, secImport: 2, secFunction: 3, secTable: 4, secMemory: 5, secTag: 6,
	secGlobal: 7, secExport: 8, secStart: 9, secElement: 10, secDataCount: 11, secCode: 12, secData: 13,
}

var sectionName = [...]string{
	secCustom: "custom", secType: "type", secImport: "import", secFunction: "function",
	secTable: "table", secMemory: "memory", secGlobal: "global", secExport: "export",
	secStart: "start", secElement: "element", secCode: "code", secData: "data",
	secDataCount: "data count", secTag: "tag",
}

type section struct {
	id        byte
	start     int // offset of the id byte
	end       int
	items     int  // for vector sections: offset of the first item
	count     int  // for vector sections: number of items
	dropDebug bool // a DWARF section whose code offsets the rewrite invalidates
}

// body is one function body of the code section.
type body struct {
	locals, code, end int // offsets of the local declarations, the code, the end
	groups            int // local declaration groups
	fuelLocal         int // index of the local that holds the fuel while the body runs
	bulk              bool
	ins0, ins1        int // its insertions, in order of offset
	newSize           int
}

// insKind is what an insertion writes.
type insKind uint8

const (
	insEntry  insKind = iota // load the fuel global into the local, charge
	insLoop                  // charge the local
	insBulk                  // charge the local by the length on top of the stack
	insStore                 // store the local into the global, before leaving
	insReload                // load the global into the local, after a call
)

// insertion is code to add before the byte at offset at.
type insertion struct {
	at   int
	cost int64 // for insEntry and insLoop
	kind insKind
}

// frame is an open block while walking a body.
type frame struct {
	parent int // insertion (metered region) to resume after the end
	kind   ctrl
}

type instrumenter struct {
	r        reader
	sections []section
	bodies   []body
	ins      []insertion
	frames   []frame

	typeParams      []int // parameter count per type
	funcTypes       []int // type index per defined function
	importedFuncs   int
	importedGlobals int
	definedFuncs    int
	definedGlobals  int

	// Bounds for index immediates: an index at or past them would name
	// something only the instrumentation defines.
	funcLimit, typeLimit, globalLimit, localLimit int

	locals  int // declared by all bodies so far
	hasCode bool
}

func (in *instrumenter) parse() error {
	r := &in.r
	r.sec = "header"
	if len(r.buf) < 8 {
		r.pos = len(r.buf)
		return r.fail(ErrMalformed, "%d bytes is shorter than the 8-byte header", len(r.buf))
	}
	if !bytes.Equal(r.buf[:4], []byte("\x00asm")) {
		return r.fail(ErrMalformed, "missing \\0asm magic")
	}
	switch v := r.buf[4:8]; {
	case bytes.Equal(v, []byte{1, 0, 0, 0}):
	case v[2] == 1 && v[3] == 0:
		r.pos = 4
		return r.fail(ErrUnsupported, "component model binary (layer 1)")
	default:
		r.pos = 4
		return r.fail(ErrMalformed, "binary version % x, want 01 00 00 00", v)
	}
	r.pos = 8
	lastRank := 0
	for r.pos < len(r.buf) {
		r.sec, r.limit = "", len(r.buf)
		s := section{start: r.pos}
		var err error
		if s.id, err = r.byte(); err != nil {
			return err
		}
		if int(s.id) >= len(sectionRank) || (s.id != secCustom && sectionRank[s.id] == 0) {
			r.pos--
			return r.fail(ErrMalformed, "unknown section id %d", s.id)
		}
		r.sec = sectionName[s.id]
		size, err := r.u32()
		if err != nil {
			return err
		}
		if int64(size) > int64(r.remaining()) {
			return r.fail(ErrMalformed, "section size %d exceeds the %d bytes left", size, r.remaining())
		}
		s.end = r.pos + int(size)
		r.limit = s.end
		if s.id == secCustom {
			name, err := r.name()
			if err != nil {
				return err
			}
			s.dropDebug = bytes.HasPrefix(name, []byte(".debug_"))
			if string(name) == "name" {
				r.sec = "name"
				if err := in.nameSection(); err != nil {
					return err
				}
			}
			r.pos = s.end
			in.sections = append(in.sections, s)
			continue
		}
		if sectionRank[s.id] <= lastRank {
			r.pos = s.start
			return r.fail(ErrMalformed, "section out of order or repeated")
		}
		lastRank = sectionRank[s.id]
		if err := in.parseSection(&s); err != nil {
			return err
		}
		if r.pos != s.end {
			return r.fail(ErrMalformed, "section size mismatch: %d bytes left unread", s.end-r.pos)
		}
		in.sections = append(in.sections, s)
	}
	if in.definedFuncs > 0 && !in.hasCode {
		r.sec = "function"
		return r.fail(ErrMalformed, "%d functions declared but no code section", in.definedFuncs)
	}
	return nil
}

func (in *instrumenter) parseSection(s *section) error {
	r := &in.r
	switch s.id {
	case secStart:
		return in.checkIndex(in.funcLimit, "function")
	case secDataCount:
		_, err := r.u32()
		return err
	case secTag:
		return r.fail(ErrUnsupported, "exception handling (tag section)")
	}
	n, err := r.count(1)
	if err != nil {
		return err
	}
	s.count, s.items = n, r.pos
	var item func(i int) error
	switch s.id {
	case secType:
		in.typeLimit = n
		in.typeParams = make([]int, 0, n) // n is bounded by the section's size
		item = in.funcType
	case secImport:
		item = in.importEntry
	case secFunction:
		in.definedFuncs = n
		in.funcLimit = in.importedFuncs + n
		in.funcTypes = make([]int, 0, n)
		item = func(int) error {
			t, err := in.index(in.typeLimit, "type")
			in.funcTypes = append(in.funcTypes, t)
			return err
		}
	case secTable:
		item = in.tableType
	case secMemory:
		item = func(int) error { return r.limits() }
	case secGlobal:
		in.definedGlobals = n
		item = in.global
	case secExport:
		item = in.exportEntry
	case secElement:
		item = in.elementSegment
	case secData:
		item = in.dataSegment
	case secCode:
		if n != in.definedFuncs {
			return r.fail(ErrMalformed, "%d bodies for %d declared functions", n, in.definedFuncs)
		}
		in.hasCode = true
		in.bodies = make([]body, 0, n) // n is bounded by the section's size
		item = in.codeEntry
	}
	for i := range n {
		if err := item(i); err != nil {
			return err
		}
	}
	if s.id == secGlobal {
		in.globalLimit = in.importedGlobals + n
	}
	return nil
}

// index reads an index and checks it against limit.
func (in *instrumenter) index(limit int, what string) (int, error) {
	at := in.r.pos
	v, err := in.r.u32()
	if err != nil {
		return 0, err
	}
	if int64(v) >= int64(limit) {
		in.r.pos = at
		return 0, in.r.fail(ErrMalformed, "%s index %d out of range (%d defined)", what, v, limit)
	}
	return int(v), nil
}

// checkIndex is index for callers that only need the check.
func (in *instrumenter) checkIndex(limit int, what string) error {
	_, err := in.index(limit, what)
	return err
}

func (in *instrumenter) funcType(int) error {
	r := &in.r
	form, err := r.byte()
	if err != nil {
		return err
	}
	switch {
	case form == 0x60:
	case form >= 0x4E && form <= 0x50, form == 0x5E, form == 0x5F:
		r.pos--
		return r.fail(ErrUnsupported, "GC type form 0x%02x", form)
	default:
		r.pos--
		return r.fail(ErrMalformed, "invalid type form 0x%02x", form)
	}
	for i := range 2 { // parameters, then results
		n, err := r.count(1)
		if err != nil {
			return err
		}
		if i == 0 {
			in.typeParams = append(in.typeParams, n)
		}
		for range n {
			if err := r.valType(); err != nil {
				return err
			}
		}
	}
	return nil
}

func (in *instrumenter) importEntry(int) error {
	r := &in.r
	if _, err := r.name(); err != nil {
		return err
	}
	at := r.pos
	field, err := r.name()
	if err != nil {
		return err
	}
	if string(field) == GlobalName {
		r.pos = at
		return r.fail(ErrReservedName, "an import is named %q", GlobalName)
	}
	kind, err := r.byte()
	if err != nil {
		return err
	}
	switch kind {
	case 0x00:
		in.importedFuncs++
		in.funcLimit = in.importedFuncs
		return in.checkIndex(in.typeLimit, "type")
	case 0x01:
		return in.tableType(0)
	case 0x02:
		return r.limits()
	case 0x03:
		in.importedGlobals++
		in.globalLimit = in.importedGlobals
		return in.globalType()
	case 0x04:
		r.pos--
		return r.fail(ErrUnsupported, "exception handling (tag import)")
	}
	r.pos--
	return r.fail(ErrMalformed, "invalid import kind 0x%02x", kind)
}

func (in *instrumenter) tableType(int) error {
	r := &in.r
	b, err := r.byte()
	if err != nil {
		return err
	}
	if b != 0x70 && b != 0x6F {
		r.pos--
		if b == 0x40 || (b >= 0x60 && b < 0x80) {
			return r.fail(ErrUnsupported, "table type 0x%02x (typed function references)", b)
		}
		return r.fail(ErrMalformed, "invalid table element type 0x%02x", b)
	}
	return r.limits()
}

func (in *instrumenter) globalType() error {
	r := &in.r
	if err := r.valType(); err != nil {
		return err
	}
	mut, err := r.byte()
	if err != nil {
		return err
	}
	if mut > 1 {
		r.pos--
		return r.fail(ErrMalformed, "invalid global mutability 0x%02x", mut)
	}
	return nil
}

func (in *instrumenter) global(i int) error {
	if err := in.globalType(); err != nil {
		return err
	}
	// With extended constant expressions an initializer may read any
	// earlier global.
	in.globalLimit = in.importedGlobals + i
	return in.constExpr()
}

// constExpr walks an initializer up to its end. Only plain instructions are
// allowed; validation of their types is left to the engine.
func (in *instrumenter) constExpr() error {
	r := &in.r
	for {
		at := r.pos
		op, err := r.byte()
		if err != nil {
			return err
		}
		info := &ops[op]
		switch info.ctrl {
		case cEnd:
			return nil
		case cPlain:
			if err := in.immediates(info); err != nil {
				return err
			}
		case cUnsupported:
			r.pos = at
			return r.fail(ErrUnsupported, "%s instruction 0x%02x", info.feature, op)
		default:
			r.pos = at
			return r.fail(ErrMalformed, "opcode 0x%02x is not allowed in a constant expression", op)
		}
	}
}

func (in *instrumenter) exportEntry(int) error {
	r := &in.r
	at := r.pos
	name, err := r.name()
	if err != nil {
		return err
	}
	if string(name) == GlobalName {
		r.pos = at
		return r.fail(ErrReservedName, "an export is named %q (already instrumented?)", GlobalName)
	}
	kind, err := r.byte()
	if err != nil {
		return err
	}
	switch kind {
	case 0x00:
		return in.checkIndex(in.funcLimit, "function")
	case 0x01, 0x02:
		_, err := r.u32()
		return err
	case 0x03:
		return in.checkIndex(in.globalLimit, "global")
	case 0x04:
		r.pos--
		return r.fail(ErrUnsupported, "exception handling (tag export)")
	}
	r.pos--
	return r.fail(ErrMalformed, "invalid export kind 0x%02x", kind)
}

// elementSegment reads one of the eight segment encodings: bit 0 of the
// flags marks a passive or declarative segment, bit 1 an explicit table
// index (active) or a declarative one (passive), bit 2 elements given as
// expressions rather than function indices. Nothing in a segment is
// rewritten; it is read to bound its counts and check its indices.
func (in *instrumenter) elementSegment(int) error {
	r := &in.r
	at := r.pos
	flags, err := r.u32()
	if err != nil {
		return err
	}
	if flags > 7 {
		r.pos = at
		return r.fail(ErrMalformed, "invalid element segment flags %d", flags)
	}
	if flags&1 == 0 {
		if flags&2 != 0 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		if err := in.constExpr(); err != nil {
			return err
		}
	}
	if flags&3 != 0 {
		b, err := r.byte()
		if err != nil {
			return err
		}
		switch {
		case flags&4 == 0 && b != 0x00:
			r.pos--
			return r.fail(ErrMalformed, "invalid element kind 0x%02x", b)
		case flags&4 != 0 && b != 0x70 && b != 0x6F:
			r.pos--
			return r.fail(ErrUnsupported, "element type 0x%02x (typed function references)", b)
		}
	}
	n, err := r.count(1)
	if err != nil {
		return err
	}
	for range n {
		if flags&4 == 0 {
			err = in.checkIndex(in.funcLimit, "function")
		} else {
			err = in.constExpr()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (in *instrumenter) dataSegment(int) error {
	r := &in.r
	at := r.pos
	flags, err := r.u32()
	if err != nil {
		return err
	}
	switch flags {
	case 0:
		err = in.constExpr()
	case 1:
	case 2:
		if _, err = r.u32(); err == nil {
			err = in.constExpr()
		}
	default:
		r.pos = at
		return r.fail(ErrMalformed, "invalid data segment flags %d", flags)
	}
	if err != nil {
		return err
	}
	n, err := r.count(1)
	if err != nil {
		return err
	}
	return r.skip(n)
}

func (in *instrumenter) codeEntry(i int) error {
	r := &in.r
	size, err := r.u32()
	if err != nil {
		return err
	}
	if int64(size) > int64(r.remaining()) {
		return r.fail(ErrMalformed, "function body size %d exceeds the %d bytes left", size, r.remaining())
	}
	in.bodies = append(in.bodies, body{end: r.pos + int(size), ins0: len(in.ins)})
	b := &in.bodies[len(in.bodies)-1]
	sectionEnd := r.limit
	r.limit, r.fn = b.end, in.importedFuncs+i
	if err := in.walkBody(b, in.typeParams[in.funcTypes[i]]); err != nil {
		return err
	}
	r.limit, r.fn = sectionEnd, -1
	b.ins1 = len(in.ins)
	return nil
}

// walkBody decodes one function body and records what to insert where.
//
// A region is the function body or one loop body; its cost is the number of
// instructions it contains outside nested loops, counting the end that
// closes it, so every region costs at least 1.
//
// While the body runs, the fuel lives in a local added to it: a charge on
// a local is register work, whereas one on the global is a store and a
// load carried from one iteration to the next, which costs tight loops
// half their speed. The global is read on entry and after every call, and
// written before every call and every way out of the body, including a trap
// for exhaustion, so the callee, the host and the next call always see the
// fuel that is left.
func (in *instrumenter) walkBody(b *body, params int) error {
	r := &in.r
	groups, err := r.count(2)
	if err != nil {
		return err
	}
	b.groups = groups
	b.locals = r.pos
	locals := 0
	for range groups {
		at := r.pos
		n, err := r.u32()
		if err != nil {
			return err
		}
		if locals += int(n); locals > MaxFunctionLocals {
			r.pos = at
			return r.fail(ErrLimit, "more than %d locals in one function", MaxFunctionLocals)
		}
		if in.locals += int(n); in.locals > max(MaxFunctionLocals, len(r.buf)) {
			r.pos = at
			return r.fail(ErrLimit, "more than %d locals in a %d-byte module", max(MaxFunctionLocals, len(r.buf)), len(r.buf))
		}
		if err := r.valType(); err != nil {
			return err
		}
	}
	b.code, b.fuelLocal = r.pos, params+locals
	in.localLimit = b.fuelLocal
	in.insert(r.pos, insEntry)
	cur := len(in.ins) - 1
	in.frames = append(in.frames[:0], frame{parent: -1, kind: cBlock})
	for len(in.frames) > 0 {
		at := r.pos
		op, err := r.byte()
		if err != nil {
			return err
		}
		in.ins[cur].cost++
		info := &ops[op]
		switch info.ctrl {
		case cPlain:
			err = in.immediates(info)
		case cBlock, cIf:
			err = in.immediates(info)
			in.frames = append(in.frames, frame{parent: cur, kind: info.ctrl})
		case cLoop:
			err = in.immediates(info)
			in.frames = append(in.frames, frame{parent: cur, kind: cLoop})
			in.insert(r.pos, insLoop)
			cur = len(in.ins) - 1
		case cElse:
			top := &in.frames[len(in.frames)-1]
			if top.kind != cIf {
				r.pos = at
				return r.fail(ErrMalformed, "else without a matching if")
			}
			top.kind = cElse
		case cEnd:
			if len(in.frames) == 1 {
				in.insert(at, insStore)
			}
			cur = in.frames[len(in.frames)-1].parent
			in.frames = in.frames[:len(in.frames)-1]
		case cBranch:
			err = in.branch(at, 1)
		case cBrTable:
			var n int
			if n, err = r.count(1); err == nil {
				err = in.branch(at, n+1)
			}
		case cExit, cTailCall:
			in.insert(at, insStore)
			err = in.immediates(info)
		case cCall:
			in.insert(at, insStore)
			if err = in.immediates(info); err == nil {
				in.insert(r.pos, insReload)
			}
		case cPrefixFC:
			err = in.prefixFC(at, b)
		case cUnsupported:
			r.pos = at
			return r.fail(ErrUnsupported, "%s instruction 0x%02x", info.feature, op)
		default:
			r.pos = at
			return r.fail(ErrMalformed, "unknown opcode 0x%02x", op)
		}
		if err != nil {
			return err
		}
	}
	if r.pos != r.limit {
		return r.fail(ErrMalformed, "%d bytes after the end of the body", r.limit-r.pos)
	}
	return nil
}

func (in *instrumenter) insert(at int, kind insKind) {
	in.ins = append(in.ins, insertion{at: at, kind: kind})
}

// branch reads n labels of the branch at offset at. A label that names the
// body itself makes the branch a return, so the fuel is stored before it,
// whether or not it is taken.
func (in *instrumenter) branch(at, n int) error {
	stored := false
	for range n {
		label, err := in.r.u32()
		if err != nil {
			return err
		}
		if int64(label) >= int64(len(in.frames)) {
			return in.r.fail(ErrMalformed, "branch to label %d at depth %d", label, len(in.frames))
		}
		if int(label) == len(in.frames)-1 && !stored {
			in.insert(at, insStore)
			stored = true
		}
	}
	return nil
}

func (in *instrumenter) prefixFC(at int, b *body) error {
	r := &in.r
	sub, err := r.u32()
	if err != nil {
		return err
	}
	if sub >= uint32(len(fcOps)) {
		r.pos = at
		return r.fail(ErrMalformed, "unknown instruction 0xFC %d", sub)
	}
	info := &fcOps[sub]
	if info.bulk {
		in.insert(at, insBulk)
		b.bulk = true
	}
	return in.immediates(info)
}

// immediates skips an instruction's immediates, checking what the rewrite
// depends on: index spaces it extends and encodings it must not misread.
func (in *instrumenter) immediates(info *opInfo) error {
	r := &in.r
	for _, f := range info.imm {
		var err error
		switch f {
		case fNone:
			return nil
		case fU32:
			_, err = r.u32()
		case fFunc:
			err = in.checkIndex(in.funcLimit, "function")
		case fType:
			err = in.checkIndex(in.typeLimit, "type")
		case fGlobal:
			err = in.checkIndex(in.globalLimit, "global")
		case fLocal:
			err = in.checkIndex(in.localLimit, "local")
		case fZero:
			var b byte
			if b, err = r.byte(); err == nil && b != 0 {
				r.pos--
				return r.fail(ErrUnsupported, "memory index byte 0x%02x: only memory 0 exists without multi-memory", b)
			}
		case fBlockType:
			err = in.blockType()
		case fI32:
			_, err = r.signed(32)
		case fI64:
			_, err = r.signed(64)
		case fF32:
			err = r.skip(4)
		case fF64:
			err = r.skip(8)
		case fMemArg:
			var align uint32
			if align, err = r.u32(); err == nil {
				if align&0x40 != 0 {
					return r.fail(ErrUnsupported, "memory argument with a memory index (multi-memory)")
				}
				_, err = r.u32()
			}
		case fSelectT:
			var n uint32
			if n, err = r.u32(); err == nil {
				if n != 1 {
					return r.fail(ErrMalformed, "typed select with %d types, want 1", n)
				}
				err = r.valType()
			}
		case fRefType:
			var b byte
			if b, err = r.byte(); err == nil && b != 0x70 && b != 0x6F {
				r.pos--
				return r.fail(ErrUnsupported, "ref.null of heap type 0x%02x (typed function references)", b)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// blockType reads the s33 block type. Decoding it as a number, as engines
// do, accepts the same over-long encodings they accept.
func (in *instrumenter) blockType() error {
	r := &in.r
	at := r.pos
	v, err := r.signed(33)
	if err != nil {
		return err
	}
	switch {
	case v >= 0:
		if v >= int64(in.typeLimit) {
			r.pos = at
			return r.fail(ErrMalformed, "block type index %d out of range (%d types)", v, in.typeLimit)
		}
	case v == -0x40, v >= -5, v == -0x10, v == -0x11: // empty, i32 i64 f32 f64 v128, funcref, externref
	case v >= -0x40:
		r.pos = at
		return r.fail(ErrUnsupported, "block type 0x%02x (typed references, GC or exception handling)", byte(v)&0x7F)
	default:
		r.pos = at
		return r.fail(ErrMalformed, "invalid block type %d", v)
	}
	return nil
}

// nameSection checks the counts in the function and local name maps. Custom
// sections are normally opaque, but wazero decodes this one and sizes its
// tables by those counts before reading a single entry: a lying count in a
// 60-byte module costs it gigabytes. Wazero rejects a malformed name
// section anyway, so checking it here refuses nothing it would run.
func (in *instrumenter) nameSection() error {
	r := &in.r
	sectionEnd := r.limit
	defer func() { r.limit = sectionEnd }()
	for r.pos < sectionEnd {
		r.limit = sectionEnd
		id, err := r.byte()
		if err != nil {
			return err
		}
		size, err := r.u32()
		if err != nil {
			return err
		}
		if int64(size) > int64(r.remaining()) {
			return r.fail(ErrMalformed, "subsection %d size %d exceeds the %d bytes left", id, size, r.remaining())
		}
		r.limit = r.pos + int(size)
		switch id {
		case 1: // function names
			err = in.nameMap()
		case 2: // local names, per function
			var n int
			if n, err = r.count(2); err == nil {
				for i := 0; i < n && err == nil; i++ {
					if _, err = r.u32(); err == nil {
						err = in.nameMap()
					}
				}
			}
		default:
			r.pos = r.limit
		}
		if err != nil {
			return err
		}
		if r.pos != r.limit {
			return r.fail(ErrMalformed, "subsection %d size mismatch: %d bytes left unread", id, r.limit-r.pos)
		}
	}
	return nil
}

func (in *instrumenter) nameMap() error {
	r := &in.r
	n, err := r.count(2)
	for i := 0; i < n && err == nil; i++ {
		if _, err = r.u32(); err == nil {
			_, err = r.name()
		}
	}
	return err
}
