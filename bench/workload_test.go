package bench_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"regexp"
	"strings"
	"testing"

	cedar "github.com/cedar-policy/cedar-go"

	"github.com/creto-systems/creto/engine"
)

// workload is an agent platform of a given size: teams of agents under
// departments, actions in groups, documents in team folders, and a policy
// mix of team RBAC, per-agent grants, ABAC conditions on attributes and
// context, and forbids with reasons. Requests are what agents of those
// teams would plausibly send.
type workload struct {
	policies string
	entities []byte
	requests []engine.Request
}

func newWorkload(nPolicies int) workload {
	r := rand.New(rand.NewPCG(uint64(nPolicies), 42))
	teams := max(1, nPolicies/10)
	const agentsPerTeam, docsPerTeam, actions = 5, 5, 20

	type ent struct {
		UID     engine.EntityRef   `json:"uid"`
		Parents []engine.EntityRef `json:"parents"`
		Attrs   map[string]any     `json:"attrs"`
	}
	var ents []ent
	for d := range max(1, teams/10) {
		ents = append(ents, ent{UID: engine.EntityRef{Type: "Dept", ID: fmt.Sprint("dept", d)}, Parents: []engine.EntityRef{}, Attrs: map[string]any{}})
	}
	for t := range teams {
		dept := engine.EntityRef{Type: "Dept", ID: fmt.Sprint("dept", t/10)}
		ents = append(ents,
			ent{UID: engine.EntityRef{Type: "Team", ID: fmt.Sprint("team", t)}, Parents: []engine.EntityRef{dept}, Attrs: map[string]any{}},
			ent{UID: engine.EntityRef{Type: "Folder", ID: fmt.Sprint("folder", t)}, Parents: []engine.EntityRef{}, Attrs: map[string]any{}})
		for a := range agentsPerTeam {
			ents = append(ents, ent{
				UID:     engine.EntityRef{Type: "Agent", ID: fmt.Sprintf("agent%d-%d", t, a)},
				Parents: []engine.EntityRef{{Type: "Team", ID: fmt.Sprint("team", t)}},
				Attrs:   map[string]any{"clearance": r.IntN(5), "tier": []string{"free", "pro"}[r.IntN(2)]},
			})
		}
		for d := range docsPerTeam {
			ents = append(ents, ent{
				UID:     engine.EntityRef{Type: "Doc", ID: fmt.Sprintf("doc%d-%d", t, d)},
				Parents: []engine.EntityRef{{Type: "Folder", ID: fmt.Sprint("folder", t)}},
				Attrs:   map[string]any{"classification": r.IntN(5)},
			})
		}
	}
	for g := range actions / 5 {
		ents = append(ents, ent{UID: engine.EntityRef{Type: "Action", ID: fmt.Sprint("group", g)}, Parents: []engine.EntityRef{}, Attrs: map[string]any{}})
	}
	for a := range actions {
		ents = append(ents, ent{UID: engine.EntityRef{Type: "Action", ID: fmt.Sprint("act", a)},
			Parents: []engine.EntityRef{{Type: "Action", ID: fmt.Sprint("group", a/5)}}, Attrs: map[string]any{}})
	}
	entJSON, err := json.Marshal(ents)
	if err != nil {
		panic(err)
	}

	var b strings.Builder
	for i := range nPolicies {
		t := r.IntN(teams)
		switch k := i % 10; {
		case k < 4:
			fmt.Fprintf(&b, "permit(principal in Team::\"team%d\", action in Action::\"group%d\", resource in Folder::\"folder%d\");\n", t, r.IntN(actions/5), t)
		case k < 6:
			fmt.Fprintf(&b, "permit(principal == Agent::\"agent%d-%d\", action == Action::\"act%d\", resource is Doc);\n", t, r.IntN(agentsPerTeam), r.IntN(actions))
		case k < 8:
			fmt.Fprintf(&b, "permit(principal in Team::\"team%d\", action == Action::\"act%d\", resource in Folder::\"folder%d\") when { resource.classification <= principal.clearance && context.risk < 5 };\n", t, r.IntN(actions), t)
		case k < 9:
			fmt.Fprintf(&b, "@reason(\"risky deletes are blocked\")\nforbid(principal in Dept::\"dept%d\", action == Action::\"act%d\", resource) when { context.risk > 8 };\n", t/10, r.IntN(actions))
		default:
			fmt.Fprintf(&b, "forbid(principal is Agent, action == Action::\"act%d\", resource in Folder::\"folder%d\") unless { principal.clearance >= 1 };\n", r.IntN(actions), t)
		}
	}

	reqs := make([]engine.Request, 1024)
	for i := range reqs {
		t := r.IntN(teams)
		reqs[i] = engine.Request{
			Principal: engine.Principal{Type: "Agent", ID: fmt.Sprintf("agent%d-%d", t, r.IntN(agentsPerTeam))},
			Action:    engine.EntityRef{Type: "Action", ID: fmt.Sprint("act", r.IntN(actions))},
			Resource:  engine.EntityRef{Type: "Doc", ID: fmt.Sprintf("doc%d-%d", t, r.IntN(docsPerTeam))},
			Context:   json.RawMessage(fmt.Sprintf(`{"risk":%d,"channel":"api"}`, r.IntN(10))),
		}
	}
	return workload{policies: b.String(), entities: entJSON, requests: reqs}
}

var conditionRE = regexp.MustCompile(` (when|unless) \{[^}]*\}`)

// scopeOnly is the same workload with every when/unless clause removed:
// pure RBAC, every decision made from scopes alone.
func (w workload) scopeOnly() workload {
	w.policies = conditionRE.ReplaceAllString(w.policies, "")
	return w
}

func (w workload) engine(tb testing.TB, opts ...engine.Option) *engine.Engine {
	tb.Helper()
	ents := engine.NewEntities()
	if err := ents.ReplaceJSON(w.entities); err != nil {
		tb.Fatal(err)
	}
	e := engine.New(append([]engine.Option{engine.WithEntities(ents)}, opts...)...)
	srcs, err := engine.ParseFile("bench.cedar", []byte(w.policies))
	if err != nil {
		tb.Fatal(err)
	}
	if err := e.ReplacePolicies(context.Background(), srcs); err != nil {
		tb.Fatal(err)
	}
	return e
}

// plain is the anchor: the same policies, entities and requests for
// cedar.Authorize over the whole set, with requests prebuilt.
type plain struct {
	ps       *cedar.PolicySet
	entities cedar.EntityMap
	requests []cedar.Request
}

func (w workload) plain(tb testing.TB) plain {
	tb.Helper()
	ps, err := cedar.NewPolicySetFromBytes("bench.cedar", []byte(w.policies))
	if err != nil {
		tb.Fatal(err)
	}
	var em cedar.EntityMap
	if err := em.UnmarshalJSON(w.entities); err != nil {
		tb.Fatal(err)
	}
	p := plain{ps: ps, entities: em}
	for _, r := range w.requests {
		var rec cedar.Record
		if err := rec.UnmarshalJSON(r.Context); err != nil {
			tb.Fatal(err)
		}
		p.requests = append(p.requests, cedar.Request{
			Principal: cedar.NewEntityUID(cedar.EntityType(r.Principal.Type), cedar.String(r.Principal.ID)),
			Action:    cedar.NewEntityUID(cedar.EntityType(r.Action.Type), cedar.String(r.Action.ID)),
			Resource:  cedar.NewEntityUID(cedar.EntityType(r.Resource.Type), cedar.String(r.Resource.ID)),
			Context:   rec,
		})
	}
	return p
}
