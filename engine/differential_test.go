package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/engine"
)

// world is a random policy set, entity graph and request stream. It leans
// on what the scope index and native scope matching must get right:
// hierarchies (with a missing parent and an occasional cycle), action
// groups, `is`, `in`, in-sets, and policies with and without conditions.
type world struct {
	policies string
	entities []byte
	requests []engine.Request
}

func genWorld(seed uint64) world {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	pick := func(xs []string) string { return xs[r.IntN(len(xs))] }

	agents := []string{`Agent::"a0"`, `Agent::"a1"`, `Agent::"a2"`, `Agent::"a3"`, `Agent::"ghost"`}
	groups := []string{`Group::"g0"`, `Group::"g1"`, `Group::"g2"`, `Group::"g3"`}
	actions := []string{`Action::"read"`, `Action::"write"`, `Action::"delete"`, `Action::"share"`}
	actionGroups := []string{`Action::"readOnly"`, `Action::"mutate"`, `Action::"all"`}
	docs := []string{`Doc::"d0"`, `Doc::"d1"`, `Doc::"d2"`, `Doc::"d3"`, `Doc::"loose"`}
	folders := []string{`Folder::"f0"`, `Folder::"f1"`, `Folder::"f2"`}

	type ent struct {
		UID     map[string]string   `json:"uid"`
		Parents []map[string]string `json:"parents"`
		Attrs   map[string]any      `json:"attrs"`
	}
	ref := func(s string) map[string]string {
		typ, id, _ := strings.Cut(s, "::")
		return map[string]string{"type": typ, "id": strings.Trim(id, `"`)}
	}
	someOf := func(xs []string, p float64) []map[string]string {
		out := []map[string]string{}
		for _, x := range xs {
			if r.Float64() < p {
				out = append(out, ref(x))
			}
		}
		return out
	}
	var ents []ent
	for _, a := range agents[:4] { // "ghost" is never stored
		attrs := map[string]any{"dept": pick([]string{"eng", "ops"})}
		if r.IntN(4) > 0 { // sometimes missing: conditions on it then error
			attrs["level"] = r.IntN(5)
		}
		ents = append(ents, ent{UID: ref(a), Parents: someOf(groups, 0.35), Attrs: attrs})
	}
	for i, g := range groups {
		// Groups nest upwards, plus an occasional cycle back down.
		parents := []map[string]string{}
		if i+1 < len(groups) && r.IntN(2) == 0 {
			parents = append(parents, ref(groups[i+1]))
		}
		if i == len(groups)-1 && r.IntN(5) == 0 {
			parents = append(parents, ref(groups[0]))
		}
		if i == 1 && r.IntN(3) == 0 {
			parents = append(parents, ref(`Group::"unstored"`))
		}
		ents = append(ents, ent{UID: ref(g), Parents: parents, Attrs: map[string]any{}})
	}
	for _, a := range actions {
		ents = append(ents, ent{UID: ref(a), Parents: someOf(actionGroups[:2], 0.5), Attrs: map[string]any{}})
	}
	for _, g := range actionGroups[:2] {
		ents = append(ents, ent{UID: ref(g), Parents: someOf(actionGroups[2:], 0.7), Attrs: map[string]any{}})
	}
	for i, f := range folders {
		parents := []map[string]string{}
		if i > 0 && r.IntN(2) == 0 {
			parents = append(parents, ref(folders[i-1]))
		}
		ents = append(ents, ent{UID: ref(f), Parents: parents, Attrs: map[string]any{}})
	}
	for _, d := range docs[:4] {
		ents = append(ents, ent{UID: ref(d), Parents: someOf(folders, 0.4), Attrs: map[string]any{
			"owner":  map[string]any{"__entity": ref(pick(agents))},
			"secret": r.IntN(2) == 0,
		}})
	}
	entJSON, _ := json.Marshal(ents)

	principalScope := func() string {
		switch r.IntN(6) {
		case 0:
			return "principal"
		case 1:
			return "principal == " + pick(agents)
		case 2:
			return "principal in " + pick(append(groups, agents...))
		case 3:
			return "principal is " + pick([]string{"Agent", "Group"})
		case 4:
			return "principal is Agent in " + pick(groups)
		default:
			return "principal == " + pick(groups)
		}
	}
	actionScope := func() string {
		switch r.IntN(4) {
		case 0:
			return "action"
		case 1:
			return "action == " + pick(actions)
		case 2:
			return "action in " + pick(append(actionGroups, actions...))
		default:
			return fmt.Sprintf("action in [%s, %s]", pick(append(actionGroups, actions...)), pick(actions))
		}
	}
	resourceScope := func() string {
		switch r.IntN(5) {
		case 0:
			return "resource"
		case 1:
			return "resource == " + pick(docs)
		case 2:
			return "resource in " + pick(append(folders, docs...))
		case 3:
			return "resource is " + pick([]string{"Doc", "Folder"})
		default:
			return "resource is Doc in " + pick(folders)
		}
	}
	conditions := []string{
		"when { principal.level > 2 }",
		"when { resource.owner == principal }",
		"unless { context.risk > 5 }",
		"when { resource has secret && resource.secret }",
		`when { principal.dept == "ops" }`,
		"when { principal in resource.owner }",
	}
	var b strings.Builder
	n := 5 + r.IntN(40)
	for range n {
		effect := "permit"
		if r.IntN(4) == 0 {
			effect = "forbid"
			if r.IntN(2) == 0 {
				b.WriteString(`@reason("not today") `)
			}
		} else if r.IntN(6) == 0 {
			b.WriteString(`@oversight("two-person") @approvers("alice,bob") `)
		}
		fmt.Fprintf(&b, "%s(%s, %s, %s)", effect, principalScope(), actionScope(), resourceScope())
		if r.IntN(5) < 2 {
			b.WriteString(" " + pick(conditions))
		}
		b.WriteString(";\n")
	}

	var reqs []engine.Request
	for range 60 {
		p := ref(pick(append(agents, groups[0])))
		a := ref(pick(append(actions, actionGroups[0])))
		res := ref(pick(append(docs, folders...)))
		ctx := json.RawMessage(fmt.Sprintf(`{"risk": %d}`, r.IntN(10)))
		if r.IntN(4) == 0 {
			ctx = nil
		}
		reqs = append(reqs, engine.Request{
			Principal: engine.Principal{Type: p["type"], ID: p["id"]},
			Action:    engine.EntityRef{Type: a["type"], ID: a["id"]},
			Resource:  engine.EntityRef{Type: res["type"], ID: res["id"]},
			Context:   ctx,
		})
	}
	return world{policies: b.String(), entities: entJSON, requests: reqs}
}

// checkAgainstCedar evaluates w with plain cedar.Authorize over the whole
// policy set and with the engine (index and cache on, and index off), and
// fails on any difference in decision, reasons or errors. Then it changes a
// third of the policies in place (deletes, updates, additions: the index
// is rebuilt incrementally) and compares again.
func checkAgainstCedar(t *testing.T, w world) {
	t.Helper()
	var em cedar.EntityMap
	if err := em.UnmarshalJSON(w.entities); err != nil {
		t.Fatalf("generated entities do not parse: %v", err)
	}
	srcs, err := engine.ParseFile("gen.cedar", []byte(w.policies))
	if err != nil {
		t.Fatalf("generated policies do not parse: %v\n%s", err, w.policies)
	}
	for i := range srcs {
		srcs[i].ID = fmt.Sprintf("policy%d", i)
	}
	engines := map[string]*engine.Engine{}
	for name, opts := range map[string][]engine.Option{
		"indexed":   nil,
		"unindexed": {engine.WithoutIndex()},
	} {
		ents := engine.NewEntities()
		ents.Replace(em)
		e := engine.New(append(opts, engine.WithEntities(ents))...)
		if err := e.ReplacePolicies(context.Background(), srcs); err != nil {
			t.Fatal(err)
		}
		engines[name] = e
	}
	compareWithCedar(t, engines, em, w.requests)

	// Change the set: delete every third policy, rewrite every fifth with
	// another's text, add policies from a different world.
	other, err := engine.ParseFile("other.cedar", []byte(genWorld(uint64(len(w.policies))).policies))
	if err != nil {
		t.Fatal(err)
	}
	var changes []engine.Change
	for i, src := range srcs {
		switch {
		case i%3 == 0:
			changes = append(changes, engine.Change{Op: engine.OpDelete, ID: src.ID})
		case i%5 == 0:
			changes = append(changes, engine.Change{Op: engine.OpUpdate, ID: src.ID, Text: other[i%len(other)].Text})
		}
	}
	for i, src := range other[:min(5, len(other))] {
		changes = append(changes, engine.Change{Op: engine.OpCreate, ID: fmt.Sprintf("added%d", i), Text: src.Text})
	}
	for _, e := range engines {
		if _, err := e.ApplyPolicies(context.Background(), changes...); err != nil {
			t.Fatal(err)
		}
	}
	compareWithCedar(t, engines, em, w.requests)
}

func compareWithCedar(t *testing.T, engines map[string]*engine.Engine, em cedar.EntityMap, requests []engine.Request) {
	t.Helper()
	ps := cedar.NewPolicySet()
	var text strings.Builder
	for _, p := range engines["unindexed"].ListPolicies() {
		var cp cedar.Policy
		if err := cp.UnmarshalCedar([]byte(p.Text)); err != nil {
			t.Fatal(err)
		}
		ps.Add(cedar.PolicyID(p.ID), &cp)
		fmt.Fprintf(&text, "// %s\n%s\n", p.ID, p.Text)
	}
	for _, req := range requests {
		var cctx cedar.Record
		if len(req.Context) > 0 {
			if err := cctx.UnmarshalJSON(req.Context); err != nil {
				t.Fatal(err)
			}
		}
		want, diag := cedar.Authorize(ps, em, cedar.Request{
			Principal: cedar.NewEntityUID(cedar.EntityType(req.Principal.Type), cedar.String(req.Principal.ID)),
			Action:    cedar.NewEntityUID(cedar.EntityType(req.Action.Type), cedar.String(req.Action.ID)),
			Resource:  cedar.NewEntityUID(cedar.EntityType(req.Resource.Type), cedar.String(req.Resource.ID)),
			Context:   cctx,
		})
		var wantReasons, wantErrors []string
		for _, r := range diag.Reasons {
			wantReasons = append(wantReasons, string(r.PolicyID))
		}
		for _, e := range diag.Errors {
			wantErrors = append(wantErrors, string(e.PolicyID))
		}
		slices.Sort(wantReasons)
		slices.Sort(wantErrors)
		for name, e := range engines {
			for pass := range 2 { // the second pass is served by the cache when allowed
				d, err := e.Check(context.Background(), req)
				if err != nil {
					t.Fatalf("%s: %v", name, err)
				}
				allowed := d.Kind == engine.Allow || d.Kind == engine.RequiresOversight
				var gotErrors []string
				for _, e := range d.Errors {
					gotErrors = append(gotErrors, e.PolicyID)
				}
				if allowed != bool(want) || !slices.Equal(d.MatchedPolicies, wantReasons) || !slices.Equal(gotErrors, wantErrors) {
					t.Fatalf("%s engine (pass %d) disagrees with cedar.Authorize on %+v:\n got %v reasons=%v errors=%v\nwant %v reasons=%v errors=%v\npolicies:\n%s",
						name, pass, req, d.Kind, d.MatchedPolicies, gotErrors, want, wantReasons, wantErrors, text.String())
				}
			}
		}
	}
}

func TestDifferentialAgainstCedar(t *testing.T) {
	seeds := 400
	if testing.Short() {
		seeds = 50
	}
	for seed := range uint64(seeds) {
		checkAgainstCedar(t, genWorld(seed))
	}
}

// FuzzDifferential explores more worlds: go test -fuzz FuzzDifferential ./engine
func FuzzDifferential(f *testing.F) {
	for seed := range uint64(8) {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, seed uint64) {
		checkAgainstCedar(t, genWorld(seed))
	})
}
