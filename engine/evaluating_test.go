package engine_test

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/engine"
)

// probe is a host module whose one function records what
// engine.EvaluatingFrom says, and a value the caller put in the context.
type probe struct {
	mu   sync.Mutex
	seen []probeCall
}

type probeCall struct {
	ok    bool
	ev    engine.Evaluating
	chain string
	value any
}

type probeKey struct{}

func (*probe) Capability() string { return "probe" }

func (p *probe) Functions(string) []engine.HostFunction {
	return []engine.HostFunction{{Name: "probe", Results: []api.ValueType{api.ValueTypeI32},
		Func: func(ctx context.Context, _ api.Module, stack []uint64) {
			ev, ok := engine.EvaluatingFrom(ctx)
			c := probeCall{ok: ok, ev: ev, chain: fmt.Sprint(ev.Delegation), value: ctx.Value(probeKey{})}
			c.ev.Delegation = nil // aliases the request: kept only as text
			p.mu.Lock()
			p.seen = append(p.seen, c)
			p.mu.Unlock()
			stack[0] = 0
		}}}
}

// A host function learns the request in flight from its context: the
// principal, chain and trace of the check it serves, never another's, and
// nothing during creto_init. The caller's context values pass through.
func TestHostFunctionsSeeTheRequestBeingEvaluated(t *testing.T) {
	p := &probe{}
	e := engine.New(engine.WithHostModules(p))
	t.Cleanup(func() { e.Close() })
	if _, err := e.CreatePolicy(bg, "all", `permit (principal, action, resource);`); err != nil {
		t.Fatal(err)
	}
	register(t, e, guest(t, "host_probe", `{"name": "prober", "capabilities": ["probe"]}`), engine.ExtensionConfig{Grants: []string{"probe"}})
	p.mu.Lock()
	if len(p.seen) != 1 || p.seen[0].ok {
		t.Fatalf("creto_init: %+v", p.seen)
	}
	p.seen = nil
	p.mu.Unlock()

	const n = 200
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			ctx := context.WithValue(bg, probeKey{}, i)
			_, err := e.Check(ctx, engine.Request{
				Principal:  engine.Principal{Type: "Agent", ID: fmt.Sprint("agent-", i)},
				Delegation: []engine.EntityRef{{Type: "User", ID: fmt.Sprint("user-", i)}},
				Action:     engine.EntityRef{ID: "read"},
				Resource:   engine.EntityRef{Type: "Doc", ID: fmt.Sprint(i)}, // distinct: no cached decision
				TraceID:    fmt.Sprint("trace-", i),
			})
			if err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	evaluations := 0
	for _, c := range p.seen {
		if !c.ok {
			continue // creto_init of an instance made for the load
		}
		evaluations++
		i, ok := c.value.(int)
		if !ok || !c.ok || c.ev.Extension != "prober" || c.ev.Principal != (engine.EntityRef{Type: "Agent", ID: fmt.Sprint("agent-", i)}) ||
			c.ev.TraceID != fmt.Sprint("trace-", i) || c.chain != fmt.Sprint([]engine.EntityRef{{Type: "User", ID: fmt.Sprint("user-", i)}}) {
			t.Errorf("call with value %v saw %+v (chain %s)", c.value, c.ev, c.chain)
		}
	}
	if evaluations != n {
		t.Fatalf("%d evaluations probed, want %d", evaluations, n)
	}
	if _, ok := engine.EvaluatingFrom(bg); ok {
		t.Fatal("a plain context claims an evaluation")
	}
}
