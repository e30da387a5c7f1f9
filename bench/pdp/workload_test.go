// Package pdp measures `creto serve` beside other policy decision points
// serving the same policy over loopback: OPA's server and Cerbos, each a
// real process built from its pinned module and run the way its users run
// it. It is a separate module so that neither anchor ever becomes a
// dependency of Creto; each anchor is built from a module of its own
// (opa/, cerbos/) with exactly its release's dependency graph. Run with
// `make bench-pdp`; bench/RESULTS.md has the figures.
package pdp

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
)

// The workload: an agent platform of 100 teams of 5 agents, each team
// with 2 folders holding 5 documents between them (500 documents). The
// policy (testdata/) lets agents read and write their team's documents
// when the classification is at most their clearance and the request's
// risk is below 5, lets each team's lead delete under the same
// conditions, forbids any delete at risk 3 or more with a reason, and
// denies everything else.
const (
	teams          = 100
	agentsPerTeam  = 5
	foldersPerTeam = 2
	docsPerTeam    = 5

	mixSize   = 500 // requests in the unary mix, cycled
	batchSize = 100 // requests per batch: one agent, one risk
	batches   = 10

	riskyDeletes = "risky deletes are blocked" // the forbid's reason, in every PDP
)

// actions, weighted as the mix draws them: "share" is an action no
// policy permits.
var actions = []struct {
	name   string
	weight int
}{{"read", 45}, {"write", 25}, {"delete", 25}, {"share", 5}}

type agent struct {
	id, team, role string // role: "lead" or "member"
	clearance      int
}

type folder struct{ id, team string }

type doc struct {
	id             string
	folder         int // index into workload.folders
	classification int
}

// request is one decision in neutral form; each PDP encodes it its own way.
type request struct {
	agent, doc int // indexes into workload.agents and workload.docs
	action     string
	risk       int
}

type workload struct {
	agents  []agent
	folders []folder
	docs    []doc
	mix     []request   // the unary mix
	batches [][]request // each one agent at one risk
}

func newWorkload() *workload {
	r := rand.New(rand.NewPCG(7, 42))
	w := &workload{}
	for t := range teams {
		team := fmt.Sprint("team", t)
		for a := range agentsPerTeam {
			role := "member"
			if a == 0 {
				role = "lead"
			}
			w.agents = append(w.agents, agent{id: fmt.Sprintf("agent%d-%d", t, a), team: team, role: role, clearance: 1 + r.IntN(4)})
		}
		for f := range foldersPerTeam {
			w.folders = append(w.folders, folder{id: fmt.Sprintf("folder%d-%d", t, f), team: team})
		}
		for d := range docsPerTeam {
			w.docs = append(w.docs, doc{id: fmt.Sprintf("doc%d-%d", t, d), folder: t*foldersPerTeam + d%foldersPerTeam, classification: r.IntN(5)})
		}
	}
	// An agent mostly asks about its own team's documents, at low risk.
	draw := func(a, risk int) request {
		t := a / agentsPerTeam
		if r.IntN(5) == 0 {
			t = r.IntN(teams)
		}
		return request{agent: a, doc: t*docsPerTeam + r.IntN(docsPerTeam), action: pick(r), risk: risk}
	}
	risk := func() int {
		if r.IntN(10) < 7 {
			return r.IntN(5)
		}
		return 5 + r.IntN(5)
	}
	for range mixSize {
		w.mix = append(w.mix, draw(r.IntN(len(w.agents)), risk()))
	}
	for range batches {
		a, rk := r.IntN(len(w.agents)), risk()
		b := make([]request, batchSize)
		for i := range b {
			b[i] = draw(a, rk)
		}
		w.batches = append(w.batches, b)
	}
	return w
}

func pick(r *rand.Rand) string {
	total := 0
	for _, a := range actions {
		total += a.weight
	}
	n := r.IntN(total)
	for _, a := range actions {
		if n < a.weight {
			return a.name
		}
		n -= a.weight
	}
	panic("unreachable")
}

// outcome is a decision as all three PDPs can express it.
type outcome int

const (
	allowed   outcome = iota
	denied            // no permit applies: the default deny
	forbidden         // the risky-delete forbid applies, with its reason
)

func (o outcome) String() string { return [...]string{"allow", "deny", "forbid"}[o] }

// decide is the policy in Go, the reference every PDP is held to.
func (w *workload) decide(q request) outcome {
	a, d := w.agents[q.agent], w.docs[q.doc]
	if q.action == "delete" && q.risk >= 3 {
		return forbidden
	}
	ok := w.folders[d.folder].team == a.team && d.classification <= a.clearance && q.risk < 5
	switch {
	case ok && (q.action == "read" || q.action == "write"):
		return allowed
	case ok && q.action == "delete" && a.role == "lead":
		return allowed
	}
	return denied
}

// docTeam is the team owning a document's folder.
func (w *workload) docTeam(d int) string { return w.folders[w.docs[d].folder].team }

// cretoEntities is the workload as Cedar entity JSON: documents in
// folders in teams, agents with their team as an attribute.
func (w *workload) cretoEntities() []byte {
	type ref struct {
		Type string `json:"type"`
		ID   string `json:"id"`
	}
	type entity struct {
		UID     ref            `json:"uid"`
		Parents []ref          `json:"parents"`
		Attrs   map[string]any `json:"attrs"`
	}
	var out []entity
	for t := range teams {
		out = append(out, entity{UID: ref{"Team", fmt.Sprint("team", t)}, Parents: []ref{}, Attrs: map[string]any{}})
	}
	for _, f := range w.folders {
		out = append(out, entity{UID: ref{"Folder", f.id}, Parents: []ref{{"Team", f.team}}, Attrs: map[string]any{}})
	}
	for _, d := range w.docs {
		out = append(out, entity{UID: ref{"Doc", d.id}, Parents: []ref{{"Folder", w.folders[d.folder].id}}, Attrs: map[string]any{"classification": d.classification}})
	}
	for _, a := range w.agents {
		out = append(out, entity{UID: ref{"Agent", a.id}, Parents: []ref{}, Attrs: map[string]any{
			"team":      map[string]any{"__entity": ref{"Team", a.team}},
			"role":      a.role,
			"clearance": a.clearance,
		}})
	}
	return mustJSON(out)
}

// opaData is the same workload as OPA's data document.
func (w *workload) opaData() []byte {
	agents, folders, docs := map[string]any{}, map[string]any{}, map[string]any{}
	for _, a := range w.agents {
		agents[a.id] = map[string]any{"team": a.team, "role": a.role, "clearance": a.clearance}
	}
	for _, f := range w.folders {
		folders[f.id] = map[string]any{"team": f.team}
	}
	for _, d := range w.docs {
		docs[d.id] = map[string]any{"folder": w.folders[d.folder].id, "classification": d.classification}
	}
	return mustJSON(map[string]any{"agents": agents, "folders": folders, "docs": docs})
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}
