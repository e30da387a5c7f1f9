package policytest_test

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/engine/policytest"
)

const policies = `
@id("read")
permit (principal == Agent::"a", action == Action::"read", resource);

@id("ctx")
permit (principal, action == Action::"ctx", resource)
when { context.owner == User::"alice" && context.n == 5 && context.tags.contains("x") };

@id("attr")
permit (principal, action == Action::"attr", resource)
when { principal has level && principal.level >= 2 };

@id("pay")
@oversight("two-person")
@approvers("x,y")
@timeout("5m")
permit (principal, action == Action::"pay", resource)
when { context.amount > 10 };

@id("no-mallory")
@reason("mallory is banned")
forbid (principal == Agent::"mallory", action, resource);
`

// writeSuite lays out a policy file and a suite beside it, and returns the
// suite's path.
func writeSuite(t *testing.T, suite string) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "policies.cedar"), []byte(policies), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s_test.yaml")
	if err := os.WriteFile(path, []byte(suite), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func loadOne(t *testing.T, suite string) *policytest.Suite {
	t.Helper()
	suites, err := policytest.Load(context.Background(), writeSuite(t, suite))
	if err != nil {
		t.Fatal(err)
	}
	return suites[0]
}

func TestRun(t *testing.T) {
	tests := []struct {
		name string
		// cases is the suite's cases list, indented as under "cases:".
		cases string
		// failures holds, per case, a pattern the failure must match; ""
		// means the case must pass.
		failures []string
	}{{
		name: "allow with reasons",
		cases: `
  - name: a reads
    request: {principal: {type: Agent, id: a}, action: {id: read}, resource: {type: Doc, id: d}}
    expect: allow
    reasons: [read]`,
		failures: []string{""},
	}, {
		name: "wrong decision",
		cases: `
  - name: b reads
    request: {principal: {type: Agent, id: b}, action: {id: read}, resource: {type: Doc, id: d}}
    expect: allow`,
		failures: []string{`^got deny \(reason "no policy permits this request"\), want allow$`},
	}, {
		name: "wrong details are all reported",
		cases: `
  - name: mallory reads
    request: {principal: {type: Agent, id: mallory}, action: {id: read}, resource: {type: Doc, id: d}}
    expect: deny
    policy_id: other
    reason: mallory is banned
    reasons: []`,
		failures: []string{`^reasons: got \[no-mallory\], want \[\]; policy_id: got "no-mallory", want "other"$`},
	}, {
		name: "oversight details",
		cases: `
  - name: big payment
    request: {principal: {type: Agent, id: a}, action: {id: pay}, resource: {type: Acct, id: x}, context: {amount: 11}}
    expect: requires_oversight
    policy_id: pay
    requirement: two-person
    approvers: [y, x]
    timeout: 5m
  - name: wrong approvers
    request: {principal: {type: Agent, id: a}, action: {id: pay}, resource: {type: Acct, id: x}, context: {amount: 11}}
    expect: requires_oversight
    approvers: [x]
    timeout: 10m`,
		failures: []string{"", `^approvers: got \[x, y\], want \[x\]; timeout: got 5m0s, want 10m0s$`},
	}, {
		name: "context from YAML, with an entity escape",
		cases: `
  - name: context matches
    request:
      principal: {type: Agent, id: a}
      action: {id: ctx}
      resource: {type: Doc, id: d}
      context:
        owner: {__entity: {type: User, id: alice}}
        n: 5
        tags: [x, "y"]
    expect: allow
    reasons: [ctx]`,
		failures: []string{""},
	}, {
		name: "principal attributes",
		cases: `
  - name: level passed in the request
    request: {principal: {type: Agent, id: z, attributes: {level: 3}}, action: {id: attr}, resource: {type: Doc, id: d}}
    expect: allow`,
		failures: []string{""},
	}, {
		name: "evaluation errors",
		cases: `
  - name: missing context attribute
    request: {principal: {type: Agent, id: a}, action: {id: pay}, resource: {type: Acct, id: x}}
    expect: deny
    errors: [pay]`,
		failures: []string{""},
	}, {
		name: "request the engine rejects",
		cases: `
  - name: reserved context key
    request:
      principal: {type: Agent, id: a}
      delegation: [{type: User, id: alice}]
      action: {id: read}
      resource: {type: Doc, id: d}
      context: {delegation: 1}
    expect: allow`,
		failures: []string{`^the engine rejected the request: invalid request: context.delegation is reserved`},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := loadOne(t, "policies: policies.cedar\ncases:"+tt.cases+"\n")
			results := s.Run(context.Background(), nil)
			if len(results) != len(tt.failures) {
				t.Fatalf("got %d results, want %d", len(results), len(tt.failures))
			}
			for i, r := range results {
				want := tt.failures[i]
				switch {
				case want == "" && !r.Passed():
					t.Errorf("%s failed: %s", r.Name(), r.Failure)
				case want != "" && !regexp.MustCompile(want).MatchString(r.Failure):
					t.Errorf("%s: failure %q does not match %q", r.Name(), r.Failure, want)
				}
			}
		})
	}
}

func TestRunFilter(t *testing.T) {
	s := loadOne(t, `
name: filtered
policies: policies.cedar
cases:
  - name: one
    request: {principal: {type: Agent, id: a}, action: {id: read}, resource: {type: Doc, id: d}}
    expect: allow
  - name: two
    request: {principal: {type: Agent, id: a}, action: {id: read}, resource: {type: Doc, id: d}}
    expect: allow
  - name: twenty
    request: {principal: {type: Agent, id: a}, action: {id: read}, resource: {type: Doc, id: d}}
    expect: allow
`)
	tests := []struct {
		filter string
		want   []string
	}{
		{"", []string{"filtered/one", "filtered/two", "filtered/twenty"}},
		{"^filtered/tw", []string{"filtered/two", "filtered/twenty"}},
		{"two$", []string{"filtered/two"}},
		{"^other/", nil},
	}
	for _, tt := range tests {
		var match func(string) bool
		if tt.filter != "" {
			match = regexp.MustCompile(tt.filter).MatchString
		}
		var got []string
		for _, r := range s.Run(context.Background(), match) {
			got = append(got, r.Name())
		}
		if strings.Join(got, ",") != strings.Join(tt.want, ",") {
			t.Errorf("filter %q ran %v, want %v", tt.filter, got, tt.want)
		}
	}
}

func TestLoadRejectsBadSuites(t *testing.T) {
	const req = `{principal: {type: Agent, id: a}, action: {id: read}, resource: {type: Doc, id: d}}`
	tests := []struct {
		name, suite, want string
	}{
		{"empty file", "", "the file is empty"},
		{"not YAML", "cases: [", "yaml:"},
		{"unknown top-level field", "policies: policies.cedar\npolicy: x\ncases: []", `line 2: unknown field "policy"`},
		{"unknown case field", "policies: policies.cedar\ncases:\n  - name: c\n    request: " + req + "\n    expct: allow", `unknown field "expct"`},
		{"unknown request field", "policies: policies.cedar\ncases:\n  - name: c\n    request: {principal: {type: A, id: a}, resouce: {type: D, id: d}}\n    expect: allow", `unknown field "resouce"`},
		{"no policies", "cases:\n  - name: c\n    request: " + req + "\n    expect: allow", "policies: required"},
		{"missing policies", "policies: nowhere.cedar\ncases:\n  - name: c\n    request: " + req + "\n    expect: allow", "nowhere.cedar: no such file"},
		{"missing entities", "policies: policies.cedar\nentities: nowhere.json\ncases:\n  - name: c\n    request: " + req + "\n    expect: allow", "nowhere.json: no such file"},
		{"no cases", "policies: policies.cedar\ncases: []", "the suite has none"},
		{"unnamed case", "policies: policies.cedar\ncases:\n  - request: " + req + "\n    expect: allow", "cases[0]: name: required"},
		{"no expectation", "policies: policies.cedar\ncases:\n  - name: c\n    request: " + req, `case "c": expect: required`},
		{"unknown decision", "policies: policies.cedar\ncases:\n  - name: c\n    request: " + req + "\n    expect: maybe", `unknown decision "maybe"`},
		{"bad timeout", "policies: policies.cedar\ncases:\n  - name: c\n    request: " + req + "\n    expect: allow\n    timeout: soon", "timeout:"},
		{"duplicate case", "policies: policies.cedar\ncases:\n  - name: c\n    request: " + req + "\n    expect: allow\n  - name: c\n    request: " + req + "\n    expect: deny", `case "c": the name is used twice`},
		{"float in context", "policies: policies.cedar\ncases:\n  - name: c\n    request: {principal: {type: A, id: a}, action: {id: r}, resource: {type: D, id: d}, context: {x: 1.5}}\n    expect: allow", "line 4: 1.5: Cedar has no floating-point numbers"},
		{"two documents", "policies: policies.cedar\ncases:\n  - name: c\n    request: " + req + "\n    expect: allow\n---\nname: x", "more than one YAML document"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := writeSuite(t, tt.suite)
			_, err := policytest.Load(context.Background(), path)
			if err == nil {
				t.Fatal("loaded")
			}
			if !strings.Contains(err.Error(), tt.want) || !strings.HasPrefix(err.Error(), path) {
				t.Errorf("error %q: want it to start with the suite path and contain %q", err, tt.want)
			}
		})
	}
}

func TestLoadRejectsBrokenPolicies(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.cedar"), []byte("permit (principal, action resource);"), 0o644); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "s_test.yaml")
	suite := "policies: bad.cedar\ncases:\n  - name: c\n    request: {principal: {type: A, id: a}, action: {id: r}, resource: {type: D, id: d}}\n    expect: allow\n"
	if err := os.WriteFile(path, []byte(suite), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := policytest.Load(context.Background(), path)
	if err == nil || !regexp.MustCompile(`bad\.cedar:1:\d+: syntax error`).MatchString(err.Error()) {
		t.Fatalf("got %v, want a positioned syntax error", err)
	}
}

func TestLoadDirectory(t *testing.T) {
	dir := t.TempDir()
	write := func(name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("policies.cedar", policies)
	suite := func(policies string) string {
		return "policies: " + policies + "\ncases:\n  - name: c\n    request: {principal: {type: Agent, id: a}, action: {id: read}, resource: {type: D, id: d}}\n    expect: allow\n"
	}
	write("a_test.yaml", suite("policies.cedar"))
	write("nested/b_test.yml", suite("../policies.cedar"))
	write("nested/c_test.json", `{"policies": "../policies.cedar", "cases": [{"name": "c", "request": {"principal": {"type": "Agent", "id": "a"}, "action": {"id": "read"}, "resource": {"type": "D", "id": "d"}}, "expect": "allow"}]}`)
	write("notes.yaml", "not a suite")

	suites, err := policytest.Load(context.Background(), dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range suites {
		names = append(names, s.Name)
		for _, r := range s.Run(context.Background(), nil) {
			if !r.Passed() {
				t.Errorf("%s: %s", r.Name(), r.Failure)
			}
		}
	}
	if got := strings.Join(names, ","); got != "a,b,c" {
		t.Errorf("suites %s, want a,b,c", got)
	}

	// The same suite twice has a clashing name.
	if _, err := policytest.Load(context.Background(), dir, filepath.Join(dir, "a_test.yaml")); err == nil || !strings.Contains(err.Error(), `suite name "a" is already used`) {
		t.Errorf("got %v, want a duplicate-name error", err)
	}
	if _, err := policytest.Load(context.Background(), filepath.Join(dir, "nested", "..", "nested", "none")); err == nil {
		t.Error("a missing path loaded")
	}
	empty := t.TempDir()
	if _, err := policytest.Load(context.Background(), empty); err == nil || !strings.Contains(err.Error(), "no suite files") {
		t.Errorf("got %v, want a no-suite-files error", err)
	}
}

func TestDescribe(t *testing.T) {
	tests := []struct {
		d    engine.Decision
		want string
	}{
		{engine.Decision{Kind: engine.Allow, MatchedPolicies: []string{"a", "b"}}, "allow (policies a, b)"},
		{engine.Decision{Kind: engine.Deny, Reason: engine.DefaultDenyReason}, `deny (reason "no policy permits this request")`},
		{engine.Decision{Kind: engine.Deny, PolicyID: "f", Reason: "no", Errors: []engine.EvalError{{PolicyID: "p"}}}, `deny (policy f, reason "no", evaluation errors in p)`},
		{engine.Decision{Kind: engine.RequiresOversight, PolicyID: "o", Oversight: engine.Oversight{Requirement: "two-person", Timeout: engine.DefaultOversightTimeout}}, "requires_oversight (policy o, two-person within 15m0s)"},
		{engine.Decision{Kind: engine.RateLimited}, "rate_limited (retry after 0s)"},
	}
	for _, tt := range tests {
		if got := policytest.Describe(tt.d); got != tt.want {
			t.Errorf("got %s, want %s", got, tt.want)
		}
	}
}
