package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
)

// guest loads a test module (assembled from the .wat beside it; see
// testdata/ext/README) and writes manifest into it.
func guest(t testing.TB, name, manifest string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", "ext", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	m, err := abi.ParseManifest([]byte(manifest))
	if err != nil {
		t.Fatal(err)
	}
	if b, err = abi.WriteManifest(b, m); err != nil {
		t.Fatal(err)
	}
	return b
}

// permissive is an engine whose Cedar policies allow everything except
// action "blocked", so what the extensions do is all that varies.
func permissive(t testing.TB) *engine.Engine {
	t.Helper()
	e := engine.New()
	t.Cleanup(func() { e.Close() })
	if _, err := e.ApplyPolicies(bg,
		engine.Change{Op: engine.OpCreate, ID: "all", Text: `permit(principal, action, resource);`},
		engine.Change{Op: engine.OpCreate, ID: "blocked", Text: `forbid(principal, action == Action::"blocked", resource);`},
	); err != nil {
		t.Fatal(err)
	}
	return e
}

func register(t testing.TB, e *engine.Engine, module []byte, cfg engine.ExtensionConfig) engine.ExtensionInfo {
	t.Helper()
	info, err := e.RegisterExtension(bg, module, cfg)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func stats(e *engine.Engine, name string) engine.ExtensionStats {
	for _, x := range e.ListExtensions() {
		if x.Name == name {
			return x.Stats
		}
	}
	return engine.ExtensionStats{}
}

func TestExtensionDecides(t *testing.T) {
	e := permissive(t)
	info := register(t, e, guest(t, "deny_delete", `{"name": "no-deletes"}`), engine.ExtensionConfig{})
	if info.Priority != 100 || info.OnError != "skip" || len(info.SHA256) != 64 {
		t.Fatalf("info: %+v", info)
	}
	d, err := e.Check(bg, req("Agent:a", "delete", "Doc:d", ""))
	if err != nil || d.Kind != engine.Deny || d.PolicyID != "no-delete" || d.Reason != "deletes are blocked" {
		t.Fatalf("delete: %v %q %q %v", d.Kind, d.PolicyID, d.Reason, err)
	}
	for range 3 { // the second and third come from Cedar's cache: the extension still runs
		if d, _ := e.Check(bg, req("Agent:a", "read", "Doc:d", "")); d.Kind != engine.Allow {
			t.Fatalf("read: %v", d.Kind)
		}
		if d, _ := e.Check(bg, req("Agent:a", "delete", "Doc:d", "")); d.Kind != engine.Deny {
			t.Fatalf("a cached Cedar allow skipped the extension: %v", d.Kind)
		}
	}
	before := stats(e, "no-deletes").Calls
	if d, _ := e.Check(bg, req("Agent:a", "blocked", "Doc:d", "")); d.Kind != engine.Deny || d.PolicyID != "blocked" {
		t.Fatalf("a Cedar deny: %v %s", d.Kind, d.PolicyID)
	}
	if after := stats(e, "no-deletes").Calls; after != before {
		t.Fatal("an extension ran after Cedar denied")
	}
}

func TestExtensionsRunByPriorityAndShortCircuit(t *testing.T) {
	e := permissive(t)
	register(t, e, guest(t, "continue", `{"name": "first", "priority": 1}`), engine.ExtensionConfig{})
	register(t, e, guest(t, "deny_delete", `{"name": "second", "priority": 2}`), engine.ExtensionConfig{})
	register(t, e, guest(t, "trap", `{"name": "third", "priority": 3, "on_error": "deny"}`), engine.ExtensionConfig{})
	names := []string{}
	for _, x := range e.ListExtensions() {
		names = append(names, x.Name)
	}
	if strings.Join(names, ",") != "first,second,third" {
		t.Fatalf("order: %v", names)
	}
	d, _ := e.Check(bg, req("Agent:a", "delete", "Doc:d", ""))
	if d.Kind != engine.Deny || d.PolicyID != "no-delete" {
		t.Fatalf("got %v %s", d.Kind, d.PolicyID)
	}
	if stats(e, "third").Calls != 0 {
		t.Fatal("a decision did not stop the chain")
	}
	// Without a decision the chain reaches the trapping extension, which
	// fails closed.
	d, _ = e.Check(bg, req("Agent:a", "read", "Doc:d", ""))
	if d.Kind != engine.Deny || d.PolicyID != "ext:third" || !strings.Contains(d.Reason, "trap") {
		t.Fatalf("got %v %s %q", d.Kind, d.PolicyID, d.Reason)
	}
}

func TestPrefilterSelectors(t *testing.T) {
	e := permissive(t)
	register(t, e, guest(t, "deny_delete", `{"name": "x", "prefilter": {"actions": ["Action::\"delete\""], "principal_types": ["Agent"]}}`), engine.ExtensionConfig{})
	e.Check(bg, req("Agent:a", "read", "Doc:d", ""))
	e.Check(bg, req("Human:h", "delete", "Doc:d", ""))
	if n := stats(e, "x").Calls; n != 0 {
		t.Fatalf("the pre-filter let %d calls through", n)
	}
	if d, _ := e.Check(bg, req("Agent:a", "delete", "Doc:d", "")); d.Kind != engine.Deny || stats(e, "x").Calls != 1 {
		t.Fatalf("a selected request: %v", d.Kind)
	}
}

func TestHostCallsAndPulledContext(t *testing.T) {
	e := permissive(t)
	register(t, e, guest(t, "context_len", `{"name": "ctx"}`), engine.ExtensionConfig{})
	if d, _ := e.Check(bg, req("Agent:a", "read", "Doc:d", `{"short": true}`)); d.Kind != engine.Allow {
		t.Fatalf("short context: %v %s", d.Kind, d.Reason)
	}
	long := `{"text": "` + strings.Repeat("x", 200) + `"}`
	if d, _ := e.Check(bg, req("Agent:a", "read", "Doc:d", long)); d.Kind != engine.Deny || d.Reason != "long context" {
		t.Fatalf("long context: %v %q", d.Kind, d.Reason)
	}
}

func TestRegistrationRefusesBadModules(t *testing.T) {
	e := permissive(t)
	cases := []struct {
		name, module, manifest string
		cfg                    engine.ExtensionConfig
		want                   error
	}{
		{"no ABI marker", "no_marker", `{"name": "a"}`, engine.ExtensionConfig{}, engine.ErrABIVersion},
		{"unknown import", "unknown_import", `{"name": "b"}`, engine.ExtensionConfig{}, engine.ErrUnknownImport},
		{"import its manifest did not request", "ungranted_import", `{"name": "c"}`, engine.ExtensionConfig{}, engine.ErrImportNotGranted},
		{"capability the operator did not grant", "continue", `{"name": "d", "capabilities": ["prefilter"]}`, engine.ExtensionConfig{}, engine.ErrImportNotGranted},
		{"infinite loop at start-up", "start_loop", `{"name": "e"}`, engine.ExtensionConfig{}, engine.ErrExtensionInvalid},
		{"arena outside memory", "bad_arena", `{"name": "f"}`, engine.ExtensionConfig{}, engine.ErrExtensionInvalid},
		{"configuration refused", "config_check", `{"name": "g"}`, engine.ExtensionConfig{Config: []byte("not json")}, engine.ErrExtensionInvalid},
		{"bad on_error", "continue", `{"name": "h"}`, engine.ExtensionConfig{OnError: "retry"}, engine.ErrExtensionInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := e.RegisterExtension(bg, guest(t, c.module, c.manifest), c.cfg)
			if !errors.Is(err, c.want) {
				t.Fatalf("got %v, want %v", err, c.want)
			}
		})
	}
	for name, module := range map[string][]byte{
		"not wasm":    []byte("hello"),
		"no manifest": mustRead(t, "continue"),
		"oversize":    make([]byte, engine.MaxModuleSize+1),
	} {
		if _, err := e.RegisterExtension(bg, module, engine.ExtensionConfig{}); !errors.Is(err, engine.ErrExtensionInvalid) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if n := len(e.ListExtensions()); n != 0 {
		t.Fatalf("%d extensions half-registered", n)
	}
	register(t, e, guest(t, "config_check", `{"name": "g"}`), engine.ExtensionConfig{Config: []byte(`{"ok": true}`)})
	if _, err := e.RegisterExtension(bg, guest(t, "continue", `{"name": "g"}`), engine.ExtensionConfig{}); !errors.Is(err, engine.ErrExtensionExists) {
		t.Fatalf("duplicate name: %v", err)
	}
}

func mustRead(t testing.TB, name string) []byte {
	b, err := os.ReadFile(filepath.Join("testdata", "ext", name+".wasm"))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestHostileGuestsAtCallTime: runaway, trapping, memory-hungry and lying
// guests fail as classified, per on_error, while concurrent checks through
// a well-behaved path keep their right answers.
func TestHostileGuestsAtCallTime(t *testing.T) {
	cases := []struct {
		module, action string
		class          string
	}{
		{"loop", "read", "fuel"},
		{"trap", "read", "trap"},
		{"memory_bomb", "read", "trap"},
		{"garbage", "read", "abi"},
		{"garbage", "magic", "abi"},
	}
	for _, c := range cases {
		t.Run(c.module+"/"+c.action, func(t *testing.T) {
			e := permissive(t)
			register(t, e, guest(t, c.module, `{"name": "skipper", "limits": {"fuel": 200000, "memory_pages": 8},
				"prefilter": {"principal_types": ["Agent"]}}`), engine.ExtensionConfig{})
			register(t, e, guest(t, c.module, `{"name": "denier", "on_error": "deny", "limits": {"fuel": 200000, "memory_pages": 8},
				"prefilter": {"principal_types": ["Robot"]}}`), engine.ExtensionConfig{})

			ctx, cancel := context.WithTimeout(bg, 300*time.Millisecond)
			defer cancel()
			var wg sync.WaitGroup
			for range 2 {
				wg.Go(func() {
					for ctx.Err() == nil {
						// Humans meet no extension: always Cedar's allow.
						if d, err := e.Check(bg, req("Human:h", "read", "Doc:d", "")); err != nil || d.Kind != engine.Allow {
							t.Errorf("an unrelated check: %v %v", d.Kind, err)
							return
						}
					}
				})
			}
			for range 3 {
				// on_error skip: the failure is logged and Cedar's allow stands.
				if d, _ := e.Check(bg, req("Agent:a", c.action, "Doc:d", "")); d.Kind != engine.Allow {
					t.Errorf("skip: %v %s", d.Kind, d.Reason)
				}
				// on_error deny: the failure denies, naming its class.
				d, _ := e.Check(bg, req("Robot:r", c.action, "Doc:d", ""))
				if d.Kind != engine.Deny || d.PolicyID != "ext:denier" || !strings.HasSuffix(d.Reason, "failed: "+c.class) {
					t.Errorf("deny: %v %s %q, want class %s", d.Kind, d.PolicyID, d.Reason, c.class)
				}
			}
			cancel()
			wg.Wait()
			if s := stats(e, "skipper"); s.Failures != 3 {
				t.Errorf("skipper stats: %+v", s)
			}
		})
	}
}

func TestBreakerDisablesAFailingExtension(t *testing.T) {
	e := permissive(t)
	register(t, e, guest(t, "trap", `{"name": "flaky", "on_error": "deny"}`), engine.ExtensionConfig{})
	var reasons []string
	for range 8 {
		d, _ := e.Check(bg, req("Agent:a", "read", "Doc:d", ""))
		reasons = append(reasons, d.Reason)
	}
	if !strings.HasSuffix(reasons[4], "trap") || !strings.HasSuffix(reasons[7], "unavailable") {
		t.Fatalf("reasons: %q", reasons)
	}
}

func TestReplaceAndUnregisterUnderLoad(t *testing.T) {
	e := permissive(t)
	register(t, e, guest(t, "continue", `{"name": "x"}`), engine.ExtensionConfig{})
	ctx, cancel := context.WithTimeout(bg, 400*time.Millisecond)
	defer cancel()
	var wg sync.WaitGroup
	for range 3 {
		wg.Go(func() {
			for ctx.Err() == nil {
				d, err := e.Check(bg, req("Agent:a", "delete", "Doc:d", ""))
				// Either module may answer, but never an error or a failure.
				if err != nil || (d.Kind != engine.Allow && d.PolicyID != "no-delete") {
					t.Errorf("mid-swap: %v %s %q %v", d.Kind, d.PolicyID, d.Reason, err)
					return
				}
			}
		})
	}
	for i := 0; ctx.Err() == nil; i++ {
		module := []string{"deny_delete", "continue"}[i%2]
		if _, err := e.ReplaceExtension(bg, "x", guest(t, module, `{"name": "x"}`), engine.ExtensionConfig{}); err != nil {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	wg.Wait()
	if _, err := e.ReplaceExtension(bg, "x", guest(t, "continue", `{"name": "y"}`), engine.ExtensionConfig{}); !errors.Is(err, engine.ErrExtensionInvalid) {
		t.Fatalf("a module of another name: %v", err)
	}
	if err := e.UnregisterExtension(bg, "x"); err != nil {
		t.Fatal(err)
	}
	if err := e.UnregisterExtension(bg, "x"); !errors.Is(err, engine.ErrExtensionNotFound) {
		t.Fatalf("second unregister: %v", err)
	}
	if d, _ := e.Check(bg, req("Agent:a", "delete", "Doc:d", "")); d.Kind != engine.Allow {
		t.Fatalf("after unregister: %v", d.Kind)
	}
}

func TestExtensionInfoJSON(t *testing.T) {
	e := permissive(t)
	info := register(t, e, guest(t, "context_len", `{"name": "ctx", "version": "1.0.0"}`), engine.ExtensionConfig{})
	b, _ := json.Marshal(info)
	if !strings.Contains(string(b), "creto:request/v1.context") || info.Version != "1.0.0" {
		t.Fatalf("%s", b)
	}
}

// countingHandler counts log records whose message is msg.
type countingHandler struct {
	msg string
	n   *atomic.Int64
}

func (h countingHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h countingHandler) Handle(_ context.Context, r slog.Record) error {
	r.Attrs(func(a slog.Attr) bool {
		if a.Key == "message" && a.Value.String() == h.msg {
			h.n.Add(1)
		}
		return true
	})
	return nil
}
func (h countingHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h countingHandler) WithGroup(string) slog.Handler      { return h }

func TestGuestLogsAreRateLimited(t *testing.T) {
	var lines atomic.Int64
	e := engine.New(engine.WithLogger(slog.New(countingHandler{msg: "flood", n: &lines})))
	defer e.Close()
	if _, err := e.CreatePolicy(bg, "all", `permit(principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	register(t, e, guest(t, "log_flood", `{"name": "flood"}`), engine.ExtensionConfig{})
	for range 3 {
		if d, _ := e.Check(bg, req("Agent:a", "read", "Doc:d", "")); d.Kind != engine.Allow {
			t.Fatal(d.Kind)
		}
	}
	if n := lines.Load(); n == 0 || n > 200 { // at most two one-second windows touched
		t.Fatalf("%d of 3,000 lines reached the log", n)
	}
}
