package engine

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"
	"github.com/tetratelabs/wazero/imports/wasi_snapshot_preview1"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/internal/fuel"
)

// coreFeatures is what guests may use: Wasm 2.0 without SIMD, which the
// fuel instrumenter does not meter.
const coreFeatures = api.CoreFeaturesV2 &^ api.CoreFeatureSIMD

// minArena is the smallest I/O arena a guest may declare.
const minArena = 4096

// extension is one registered module: its own wazero runtime (so its
// memory limit, host-module bindings and closing are its own), its
// compiled code, a bounded pool of instances and its pre-filter.
type extension struct {
	name, version, hash string
	priority            int
	capabilities        []string
	imports             []string
	onError             string
	fuel                int64
	config              []byte
	registered          time.Time

	prefilter prefilter
	breaker   breaker
	logger    logFunc
	logLimit  lineLimit

	rt       wazero.Runtime
	compiled wazero.CompiledModule
	pool     chan *instance
	made     atomic.Int32
	maxInst  int32
	retired  atomic.Bool
	closeMu  sync.Once

	// hosted is set when the extension was granted a host module of the
	// embedder's; only its calls carry the request in their context
	// (EvaluatingFrom), which the engine's own modules do not need.
	hosted bool

	// byModule finds the instance behind a calling module, for host
	// functions that need the request being evaluated.
	byModule sync.Map // api.Module → *instance

	calls, skipped, decisions, failures atomic.Uint64
}

// instance is one instantiated module with everything a call needs
// looked up once.
type instance struct {
	mod      api.Module
	mem      api.Memory
	evaluate api.Function
	fuel     api.MutableGlobal
	arena    uint32
	arenaCap uint32
	stack    [1]uint64
	// The JSON fields of the request being evaluated, for
	// creto:request/v1. Slices, not the *Request: keeping a pointer would
	// move every checked request to the heap.
	context, attributes []byte
	// call is the context guest calls run with (EvaluatingFrom).
	call callContext
}

type logFunc func(level int, ext, msg string)

// loadExtension turns module bytes into a ready extension, or a typed
// error naming the problem. It runs off the hot path.
func (e *Engine) loadExtension(ctx context.Context, module []byte, cfg ExtensionConfig) (*extension, error) {
	invalid := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrExtensionInvalid, fmt.Sprintf(format, args...))
	}
	if len(module) > MaxModuleSize {
		return nil, invalid("the module is %d bytes, the limit is %d", len(module), MaxModuleSize)
	}
	m, err := abi.ReadManifest(module)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrExtensionInvalid, err)
	}
	for _, c := range m.Capabilities {
		if !slices.Contains(cfg.Grants, c) {
			return nil, fmt.Errorf("%w: %s requests capability %q, which the operator did not grant", ErrImportNotGranted, m.Name, c)
		}
	}
	switch cfg.OnError {
	case "", "skip":
	case "deny":
		m.OnError = "deny"
	default:
		return nil, invalid("on_error %q (want deny or skip)", cfg.OnError)
	}
	metered, err := fuel.InstrumentWith(module, fuel.Options{InitialFuel: m.Limits.StartupFuel})
	if err != nil {
		return nil, invalid("%v", err)
	}
	sum := sha256.Sum256(module)
	x := &extension{
		name: m.Name, version: m.Version, hash: hex.EncodeToString(sum[:]), priority: *m.Priority,
		capabilities: m.Capabilities, onError: m.OnError, fuel: m.Limits.Fuel, config: cfg.Config,
		registered: time.Now(), logger: e.logGuest,
		maxInst: int32(max(2, 2*runtime.GOMAXPROCS(0))),
	}
	x.prefilter.init(m.Prefilter)
	x.pool = make(chan *instance, x.maxInst)
	rc := wazero.NewRuntimeConfigCompiler().
		WithCoreFeatures(coreFeatures).
		WithMemoryLimitPages(m.Limits.MemoryPages).
		WithCompilationCache(e.wasmCache)
	x.rt = wazero.NewRuntimeWithConfig(ctx, rc)
	ok := false
	defer func() {
		if !ok {
			x.rt.Close(ctx)
		}
	}()
	if x.compiled, err = x.rt.CompileModule(ctx, metered); err != nil {
		return nil, invalid("%v", err)
	}
	if err := x.checkExports(); err != nil {
		return nil, err
	}
	if err := e.bindImports(ctx, x, &m); err != nil {
		return nil, err
	}
	// The first instance proves the module starts, declares a usable arena
	// and accepts its configuration.
	in, err := x.instantiate(ctx)
	if err != nil {
		return nil, err
	}
	x.pool <- in
	ok = true
	return x, nil
}

func (x *extension) checkExports() error {
	exports := x.compiled.ExportedFunctions()
	if _, ok := exports[abi.ExportMarker]; !ok {
		return fmt.Errorf("%w: the module does not export %s", ErrABIVersion, abi.ExportMarker)
	}
	want := map[string][2]int{abi.ExportIO: {0, 1}, abi.ExportEvaluate: {1, 1}}
	if _, ok := exports[abi.ExportInit]; ok {
		want[abi.ExportInit] = [2]int{1, 1}
	}
	for name, shape := range want {
		f, ok := exports[name]
		if !ok {
			return fmt.Errorf("%w: the module does not export %s", ErrExtensionInvalid, name)
		}
		if len(f.ParamTypes()) != shape[0] || len(f.ResultTypes()) != shape[1] || f.ResultTypes()[0] != api.ValueTypeI64 {
			return fmt.Errorf("%w: %s has the wrong signature (SPEC.md §3)", ErrExtensionInvalid, name)
		}
	}
	if _, ok := x.compiled.ExportedMemories()[abi.ExportMemory]; !ok {
		return fmt.Errorf("%w: the module does not export its memory", ErrExtensionInvalid)
	}
	return nil
}

// bindImports instantiates, in the extension's runtime, the host modules
// it may use, and refuses any import they do not provide.
func (e *Engine) bindImports(ctx context.Context, x *extension, m *abi.Manifest) error {
	mods := map[string][]HostFunction{
		abi.ModuleLog:     e.logFunctions(x),
		abi.ModuleRequest: x.requestFunctions(),
	}
	if m.Has(abi.CapabilityPrefilter) {
		mods[abi.ModulePrefilter] = x.prefilter.functions()
	}
	for _, h := range e.cfg.hostModules {
		if m.Has(h.Capability()) {
			mods[abi.HostModuleName(h.Capability())] = h.Functions(x.name)
			x.hosted = true
		}
	}
	wasi := false
	for _, f := range x.compiled.ImportedFunctions() {
		module, name, _ := f.Import()
		x.imports = append(x.imports, module+"."+name)
		if module == wasi_snapshot_preview1.ModuleName {
			wasi = true
			continue
		}
		fns, ok := mods[module]
		switch {
		case !ok && isCapabilityModule(module, e.cfg.hostModules):
			return fmt.Errorf("%w: %s imports %s.%s but its manifest does not request that capability", ErrImportNotGranted, x.name, module, name)
		case !ok:
			return fmt.Errorf("%w: %s imports %s.%s", ErrUnknownImport, x.name, module, name)
		case !slices.ContainsFunc(fns, func(h HostFunction) bool { return h.Name == name }):
			return fmt.Errorf("%w: %s imports %s.%s, which %s does not define", ErrUnknownImport, x.name, module, name, module)
		}
	}
	for module, fns := range mods {
		b := x.rt.NewHostModuleBuilder(module)
		for _, f := range fns {
			b.NewFunctionBuilder().WithGoModuleFunction(f.Func, f.Params, f.Results).Export(f.Name)
		}
		if _, err := b.Instantiate(ctx); err != nil {
			return fmt.Errorf("%w: host module %s: %v", ErrExtensionInvalid, module, err)
		}
	}
	if wasi {
		// Go and TinyGo runtimes need WASI to start. wazero's gives them no
		// files, environment or arguments, a fake clock and discarded output
		// unless the module config grants more, which it never does here.
		if _, err := wasi_snapshot_preview1.Instantiate(ctx, x.rt); err != nil {
			return fmt.Errorf("%w: %v", ErrExtensionInvalid, err)
		}
	}
	return nil
}

func isCapabilityModule(module string, hosts []HostModule) bool {
	if module == abi.ModulePrefilter {
		return true
	}
	for _, h := range hosts {
		if abi.HostModuleName(h.Capability()) == module {
			return true
		}
	}
	return false
}

// instantiate makes a new instance, runs its start-up (bounded by fuel),
// reads its arena and hands it its configuration.
func (x *extension) instantiate(ctx context.Context) (*instance, error) {
	fail := func(class FailureClass, format string, args ...any) error {
		return fmt.Errorf("%w: %w", ErrExtensionInvalid, &ExtensionError{Extension: x.name, Class: class, Detail: fmt.Sprintf(format, args...)})
	}
	mod, err := x.rt.InstantiateModule(ctx, x.compiled, wazero.NewModuleConfig().
		WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		return nil, fail(FailTrap, "start-up: %v", err)
	}
	in := &instance{mod: mod, mem: mod.Memory(), evaluate: mod.ExportedFunction(abi.ExportEvaluate)}
	g, ok := mod.ExportedGlobal(fuel.GlobalName).(api.MutableGlobal)
	if !ok || in.mem == nil {
		mod.Close(ctx)
		return nil, fail(FailABI, "the instrumented module lost its fuel global or memory")
	}
	in.fuel = g
	res, err := mod.ExportedFunction(abi.ExportIO).Call(ctx)
	if err != nil {
		mod.Close(ctx)
		return nil, fail(x.classify(in, err), "%s: %v", abi.ExportIO, err)
	}
	in.arena, in.arenaCap = uint32(res[0]>>32), uint32(res[0])
	if in.arenaCap < minArena || uint64(in.arena)+uint64(in.arenaCap) > uint64(in.mem.Size()) {
		mod.Close(ctx)
		return nil, fail(FailABI, "%s declared an arena of %d bytes at %d in a %d-byte memory (at least %d bytes needed)",
			abi.ExportIO, in.arenaCap, in.arena, in.mem.Size(), minArena)
	}
	if init := mod.ExportedFunction(abi.ExportInit); init != nil {
		if len(x.config) > int(in.arenaCap) {
			mod.Close(ctx)
			return nil, fail(FailABI, "the configuration (%d bytes) does not fit the arena", len(x.config))
		}
		in.mem.Write(in.arena, x.config)
		res, err := init.Call(ctx, uint64(len(x.config)))
		if err != nil {
			mod.Close(ctx)
			return nil, fail(x.classify(in, err), "%s: %v", abi.ExportInit, err)
		}
		if status, n := abi.SplitResult(res[0]); status != abi.StatusContinue {
			msg, _ := in.response(n)
			mod.Close(ctx)
			return nil, fail(FailGuest, "%s refused the configuration: %s", abi.ExportInit, msg)
		}
	}
	x.made.Add(1)
	x.byModule.Store(mod, in)
	return in, nil
}

// response returns the guest's arena[0:n], bounds-checked.
func (in *instance) response(n int) ([]byte, bool) {
	if n < 0 || n > int(in.arenaCap) {
		return nil, false
	}
	return in.mem.Read(in.arena, uint32(n))
}

// classify names why a call failed: an exhausted fuel counter is a fuel
// failure; anything else that stopped the guest is a trap.
func (x *extension) classify(in *instance, err error) FailureClass {
	if int64(in.fuel.Get()) < 0 {
		return FailFuel
	}
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return FailUnavailable
	}
	return FailTrap
}

// acquire takes an idle instance or makes one, up to the pool's bound;
// past it, it waits for one to come back until ctx ends.
func (x *extension) acquire(ctx context.Context) (*instance, error) {
	select {
	case in := <-x.pool:
		return in, nil
	default:
	}
	if x.made.Load() < x.maxInst {
		return x.instantiate(ctx)
	}
	select {
	case in := <-x.pool:
		return in, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// release returns a healthy instance to the pool; a failed one (its state
// is suspect after a trap) or one of a retired extension is closed.
func (x *extension) release(in *instance, healthy bool) {
	if healthy && !x.retired.Load() {
		select {
		case x.pool <- in:
			return
		default:
		}
	}
	x.discard(in)
	if x.retired.Load() {
		x.drain()
	}
}

// discard closes an instance for good.
func (x *extension) discard(in *instance) {
	x.byModule.Delete(in.mod)
	in.mod.Close(context.Background())
	x.made.Add(-1)
}

// evaluate runs the guest on one request. decided is false when the guest
// lets the request continue.
func (x *extension) evaluate(ctx context.Context, req *Request, outcome Kind, now int64) (d Decision, decided bool, err error) {
	x.calls.Add(1)
	if x.breaker.open(now) {
		x.failures.Add(1)
		return Decision{}, false, &ExtensionError{Extension: x.name, Class: FailUnavailable, Detail: "disabled after repeated failures"}
	}
	in, err := x.acquire(ctx)
	if err != nil {
		x.failures.Add(1)
		x.breaker.fail(now)
		return Decision{}, false, &ExtensionError{Extension: x.name, Class: FailUnavailable, Detail: err.Error()}
	}
	failed := func(class FailureClass, detail string) (Decision, bool, error) {
		x.release(in, false)
		x.failures.Add(1)
		x.breaker.fail(now)
		return Decision{}, false, &ExtensionError{Extension: x.name, Class: class, Detail: detail}
	}
	n, ok := in.writeRequest(req, outcome)
	if !ok {
		return failed(FailABI, "the request does not fit the guest's arena")
	}
	in.fuel.Set(uint64(x.fuel))
	in.stack[0] = uint64(n)
	in.context, in.attributes = req.Context, req.Principal.Attributes
	if x.hosted {
		in.call.begin(ctx, x.name, req)
		err = in.evaluate.CallWithStack(&in.call, in.stack[:])
		in.call.end()
	} else {
		err = in.evaluate.CallWithStack(ctx, in.stack[:])
	}
	in.context, in.attributes = nil, nil
	if err != nil {
		return failed(x.classify(in, err), err.Error())
	}
	status, length := abi.SplitResult(in.stack[0])
	switch status {
	case abi.StatusContinue:
		x.release(in, true)
		x.skipped.Add(1)
		return Decision{}, false, nil
	case abi.StatusDecision:
		b, ok := in.response(length)
		if !ok {
			return failed(FailABI, fmt.Sprintf("a %d-byte decision does not fit the arena", length))
		}
		g, err := abi.DecodeDecision(b)
		if err != nil {
			return failed(FailABI, err.Error())
		}
		x.release(in, true)
		x.decisions.Add(1)
		return decisionFrom(x.name, &g), true, nil
	case abi.StatusError:
		msg, _ := in.response(min(length, 1024))
		return failed(FailGuest, string(msg))
	default:
		return failed(FailABI, fmt.Sprintf("unknown status %d", status))
	}
}

// writeRequest encodes the request straight into the guest's arena,
// leaving out the context and attributes (which the guest can then pull
// through creto:request/v1) when everything does not fit.
func (in *instance) writeRequest(req *Request, outcome Kind) (int, bool) {
	var links [16]abi.Ref
	r := abi.Request{
		Principal:  abi.Ref{Type: req.Principal.Type, ID: req.Principal.ID},
		Action:     abi.Ref(req.actionRef()),
		Resource:   abi.Ref(req.Resource),
		Context:    orEmptyObject(req.Context),
		Attributes: orEmptyObject(req.Principal.Attributes),
		TraceID:    req.TraceID,
		Outcome:    uint32(outcome),
		Delegation: links[:0],
	}
	for _, d := range req.Delegation {
		r.Delegation = append(r.Delegation, abi.Ref(d))
	}
	if abi.RequestSize(&r) > int(in.arenaCap) {
		r.Context, r.Flags = nil, r.Flags|abi.FlagContextOmitted
	}
	if abi.RequestSize(&r) > int(in.arenaCap) {
		r.Attributes, r.Flags = nil, r.Flags|abi.FlagAttributesOmitted
	}
	n := abi.RequestSize(&r)
	buf, ok := in.mem.Read(in.arena, in.arenaCap)
	if !ok || n > len(buf) {
		return 0, false
	}
	abi.AppendRequest(buf[:0], &r)
	return n, true
}

var emptyObject = []byte("{}")

func orEmptyObject(b []byte) []byte {
	if len(b) == 0 {
		return emptyObject
	}
	return b
}

// retire stops the extension taking new instances; idle ones close now,
// busy ones as their calls end.
func (x *extension) retire() {
	x.retired.Store(true)
	x.drain()
}

func (x *extension) drain() {
	for {
		select {
		case in := <-x.pool:
			x.discard(in)
		default:
			if x.made.Load() <= 0 {
				x.close()
			}
			return
		}
	}
}

func (x *extension) close() {
	x.closeMu.Do(func() { x.rt.Close(context.Background()) })
}

func (x *extension) info() ExtensionInfo {
	return ExtensionInfo{
		Name: x.name, Version: x.version, Priority: x.priority, Capabilities: x.capabilities,
		OnError: x.onError, SHA256: x.hash, Imports: x.imports, RegisteredAt: x.registered,
		Stats: ExtensionStats{Calls: x.calls.Load(), Skipped: x.skipped.Load(), Decisions: x.decisions.Load(), Failures: x.failures.Load()},
	}
}
