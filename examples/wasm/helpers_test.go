package wasm_test

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/tetratelabs/wazero"
	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/hosts"
	"github.com/creto-systems/creto/internal/guestbuild"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
	"github.com/creto-systems/creto/services/storage"
)

var bg = context.Background()

// skipEnv lets a machine without the Wasm toolchains run the other tests.
const skipEnv = "CRETO_SKIP_WASM"

// load reads a module `make wasm` built, failing (not skipping) when it is
// missing so that a forgotten build cannot pass for a green suite.
func load(t *testing.T, lang, name string) []byte {
	t.Helper()
	if lang == "go" {
		// Go guests are built by the Go toolchain the tests run with.
		b, err := guestbuild.Go(filepath.Join("go", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	path := filepath.Join(lang, "build", name+".wasm")
	b, err := os.ReadFile(path)
	if err != nil {
		if os.Getenv(skipEnv) == "1" {
			t.Skipf("%v (%s=1)", err, skipEnv)
		}
		t.Fatalf("%v: run make wasm (or set %s=1 to skip the Wasm suite)", err, skipEnv)
	}
	return b
}

// clock is the engine's creto:time/v1 and the time state windows use.
type clock struct{ ns atomic.Int64 }

func (c *clock) now() time.Time { return time.Unix(0, c.ns.Load()).UTC() }

func (c *clock) set(t time.Time) { c.ns.Store(t.UnixNano()) }

// guestLogs records what extensions write through creto:log/v1.
type guestLogs struct {
	mu       sync.Mutex
	messages []string
}

func (l *guestLogs) Enabled(context.Context, slog.Level) bool { return true }

func (l *guestLogs) Handle(_ context.Context, r slog.Record) error {
	if r.Message != "extension log" {
		return nil
	}
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "message" {
			l.mu.Lock()
			l.messages = append(l.messages, a.Value.String())
			l.mu.Unlock()
		}
		return true
	})
	return nil
}

func (l *guestLogs) WithAttrs([]slog.Attr) slog.Handler { return l }

func (l *guestLogs) WithGroup(string) slog.Handler { return l }

func (l *guestLogs) contains(msg string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Contains(l.messages, msg)
}

// host is an engine whose Cedar policy permits everything, so that what
// the extension decides is all that varies, with the time and state host
// modules wired to a controllable clock and, for extensions that ask for
// nhi or storage, those modules over real services.
type host struct {
	*engine.Engine
	clock *clock
	logs  *guestLogs
	// ids and objects are the services behind nhi and storage, nil unless
	// asked for.
	ids     *nhi.Service
	objects *storage.Service
	// platform holds the vault, audit log and consensus node behind
	// those modules, opened likewise (platform_test.go).
	platform
}

// noon is when checks happen unless a case sets the clock.
var noon = time.Date(2025, 11, 26, 12, 0, 0, 0, time.UTC)

func newHost(t *testing.T, capabilities ...string) *host {
	t.Helper()
	h := &host{clock: &clock{}, logs: &guestLogs{}}
	h.clock.set(noon)
	mods := []engine.HostModule{
		hosts.Clock{Now: h.clock.now},
		hosts.State{Store: hosts.NewMemoryState(), Now: h.clock.now},
	}
	if slices.Contains(capabilities, abi.CapabilityNHI) || slices.Contains(capabilities, abi.CapabilityStorage) {
		h.openServices(t)
		mods = append(mods, hosts.NHI{Agents: h.ids, Now: h.clock.now}, hosts.Storage{Objects: h.objects})
	}
	mods = append(mods, h.openPlatform(t, capabilities)...)
	h.Engine = engine.New(engine.WithLogger(slog.New(h.logs)), engine.WithHostModules(mods...))
	t.Cleanup(func() { h.Close() })
	if _, err := h.ApplyPolicies(bg, engine.Change{Op: engine.OpCreate, ID: "all", Text: `permit(principal, action, resource);`}); err != nil {
		t.Fatal(err)
	}
	return h
}

// openServices opens NHI and object storage on one store, as a node does.
func (h *host) openServices(t *testing.T) {
	t.Helper()
	dir := t.TempDir()
	store, err := kv.Open(filepath.Join(dir, "kv"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	sealer, err := nhi.CreateFileSealer(filepath.Join(dir, "node.key"))
	if err != nil {
		t.Fatal(err)
	}
	defer sealer.Close()
	if h.ids, err = nhi.New(bg, store, sealer, nhi.Config{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.ids.Close() })
	if h.objects, err = storage.Open(bg, dir, store, h.ids, sealer, storage.Config{SweepInterval: -1}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.objects.Close() })
}

// register grants the module exactly the capabilities its manifest asks for.
func (h *host) register(module []byte, config string) (engine.ExtensionInfo, error) {
	m, err := abi.ReadManifest(module)
	if err != nil {
		return engine.ExtensionInfo{}, err
	}
	return h.RegisterExtension(bg, module, engine.ExtensionConfig{Config: []byte(config), Grants: m.Capabilities})
}

func (h *host) stats(name string) engine.ExtensionStats {
	for _, x := range h.ListExtensions() {
		if x.Name == name {
			return x.Stats
		}
	}
	return engine.ExtensionStats{}
}

// request builds a check: principal and resource as "Type:id".
func request(principal, action, resource, contextJSON string, delegation ...string) engine.Request {
	ref := func(s string) engine.EntityRef {
		typ, id, _ := strings.Cut(s, ":")
		return engine.EntityRef{Type: typ, ID: id}
	}
	p := ref(principal)
	r := engine.Request{
		Principal: engine.Principal{Type: p.Type, ID: p.ID},
		Action:    engine.EntityRef{ID: action},
		Resource:  ref(resource),
		Context:   json.RawMessage(contextJSON),
	}
	for _, d := range delegation {
		r.Delegation = append(r.Delegation, ref(d))
	}
	return r
}

// outcome is the part of a decision an extension controls.
type outcome struct {
	Kind      engine.Kind
	PolicyID  string
	Reason    string
	Oversight engine.Oversight
	Quota     engine.Quota
	RateLimit engine.RateLimit
}

func outcomeOf(d engine.Decision) outcome {
	return outcome{d.Kind, d.PolicyID, d.Reason, d.Oversight, d.Quota, d.RateLimit}
}

// String shows the fields that matter for the kind, so that two outcomes
// compare by their text and a failure reads as what the guest said.
func (o outcome) String() string {
	s := fmt.Sprintf("%v %q", o.Kind, o.PolicyID)
	switch o.Kind {
	case engine.Deny:
		s += fmt.Sprintf(" reason %q", o.Reason)
	case engine.RequiresOversight:
		s += fmt.Sprintf(" %q by %q within %v", o.Oversight.Requirement, o.Oversight.Approvers, o.Oversight.Timeout)
	case engine.QuotaExceeded:
		s += fmt.Sprintf(" quota %q %d/%d until %v", o.Quota.ID, o.Quota.Used, o.Quota.Limit, o.Quota.ResetAt)
	case engine.RateLimited:
		s += fmt.Sprintf(" retry after %v, %d left", o.RateLimit.RetryAfter, o.RateLimit.Remaining)
	}
	return s
}

var allow = outcome{Kind: engine.Allow}

func deny(policyID, reason string) outcome {
	return outcome{Kind: engine.Deny, PolicyID: policyID, Reason: reason}
}

// ---- Golden vectors ------------------------------------------------------

type goldenDecision struct {
	Name     string       `json:"name"`
	Decision abi.Decision `json:"decision"`
	Hex      string       `json:"hex"`
}

type goldenRequest struct {
	Name    string      `json:"name"`
	Request abi.Request `json:"request"`
	Hex     string      `json:"hex"`
}

// goldens reads abi/testdata/golden/<prefix>-*.json.
func goldens[T any](t *testing.T, prefix string) []T {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("..", "..", "abi", "testdata", "golden", prefix+"-*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no golden %s vectors: %v", prefix, err)
	}
	var out []T
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var v T
		if err := json.Unmarshal(b, &v); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		out = append(out, v)
	}
	return out
}

func unhex(t *testing.T, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ---- Direct calls ----------------------------------------------------------

// probe runs a conformance guest outside the engine, so its arena can be
// written and read byte for byte. Host imports are stubbed: the probe
// exports never call them (the engine suite covers the host functions).
type probe struct {
	mod      api.Module
	arena    uint32
	arenaCap uint32
}

func newProbe(t *testing.T, module []byte) *probe {
	t.Helper()
	rt := wazero.NewRuntimeWithConfig(bg, wazero.NewRuntimeConfigInterpreter())
	t.Cleanup(func() { rt.Close(bg) })
	compiled, err := rt.CompileModule(bg, module)
	if err != nil {
		t.Fatal(err)
	}
	stubs := map[string]wazero.HostModuleBuilder{}
	for _, f := range compiled.ImportedFunctions() {
		module, name, _ := f.Import()
		b, ok := stubs[module]
		if !ok {
			b = rt.NewHostModuleBuilder(module)
			stubs[module] = b
		}
		b.NewFunctionBuilder().
			WithGoModuleFunction(api.GoModuleFunc(func(context.Context, api.Module, []uint64) {}), f.ParamTypes(), f.ResultTypes()).
			Export(name)
	}
	for module, b := range stubs {
		if _, err := b.Instantiate(bg); err != nil {
			t.Fatalf("stub %s: %v", module, err)
		}
	}
	mod, err := rt.InstantiateModule(bg, compiled, wazero.NewModuleConfig().WithName("").WithStartFunctions("_initialize"))
	if err != nil {
		t.Fatal(err)
	}
	p := &probe{mod: mod}
	io := p.call(t, abi.ExportIO)
	p.arena, p.arenaCap = uint32(io>>32), uint32(io)
	if p.arenaCap < 4096 {
		t.Fatalf("creto_io declared a %d-byte arena", p.arenaCap)
	}
	return p
}

func (p *probe) has(export string) bool { return p.mod.ExportedFunction(export) != nil }

func (p *probe) call(t *testing.T, export string, args ...uint64) uint64 {
	t.Helper()
	f := p.mod.ExportedFunction(export)
	if f == nil {
		t.Fatalf("the module does not export %s", export)
	}
	res, err := f.Call(bg, args...)
	if err != nil {
		t.Fatalf("%s%v: %v", export, args, err)
	}
	return res[0]
}

// put writes b at the start of the arena.
func (p *probe) put(t *testing.T, b []byte) {
	t.Helper()
	if !p.mod.Memory().Write(p.arena, b) {
		t.Fatalf("%d bytes do not fit the arena", len(b))
	}
}

// read returns a copy of memory [ptr, ptr+n).
func (p *probe) read(t *testing.T, ptr, n uint32) []byte {
	t.Helper()
	b, ok := p.mod.Memory().Read(ptr, n)
	if !ok {
		t.Fatalf("[%d, +%d) is outside memory", ptr, n)
	}
	return slices.Clone(b)
}

// view reads a (ptr << 32 | len) view a probe returned and checks that it
// points into the first n bytes of the arena: readers must not copy.
func (p *probe) view(t *testing.T, v uint64, n uint32) []byte {
	t.Helper()
	ptr, length := uint32(v>>32), uint32(v)
	if ptr < p.arena || uint64(ptr)+uint64(length) > uint64(p.arena)+uint64(n) {
		t.Fatalf("view [%d, +%d) is not inside the request at [%d, +%d)", ptr, length, p.arena, n)
	}
	return p.read(t, ptr, length)
}

// result splits what a builder returned and reads the record it wrote.
func (p *probe) result(t *testing.T, r uint64) (uint32, []byte) {
	t.Helper()
	status, n := abi.SplitResult(r)
	if n > int(p.arenaCap) {
		t.Fatalf("a %d-byte result from a %d-byte arena", n, p.arenaCap)
	}
	return status, p.read(t, p.arena, uint32(n))
}
