package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"io/fs"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/examples"
)

const (
	examplePolicies   = "../../examples/policies"
	exampleEntities   = "../../examples/entities.json"
	exampleSchema     = "../../examples/schema.cedarschema"
	exampleRequestDir = "../../examples/requests"
	exampleTests      = "../../examples/tests"
)

// creto runs the command line in-process.
func creto(t *testing.T, stdin io.Reader, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	if stdin == nil {
		stdin = strings.NewReader("")
	}
	var out, errOut bytes.Buffer
	code = run(context.Background(), args, stdin, &out, &errOut)
	return code, out.String(), errOut.String()
}

// decision is the part of `creto check` output the tests look at.
type decision struct {
	Decision string             `json:"decision"`
	Reasons  []string           `json:"reasons"`
	Errors   []engine.EvalError `json:"errors"`
	PolicyID string             `json:"policy_id"`
	Reason   string             `json:"reason"`
}

func parseDecision(t *testing.T, stdout string) decision {
	t.Helper()
	var d decision
	// Unmarshal rejects anything after the object, so this also checks
	// that stdout holds exactly one.
	if err := json.Unmarshal([]byte(stdout), &d); err != nil {
		t.Fatalf("stdout is not one JSON object: %v\n%s", err, stdout)
	}
	return d
}

func request(principal, action, resource, context string) string {
	return `{"principal": {"type": "Agent", "id": "` + principal + `"}, "action": {"id": "` + action +
		`"}, "resource": {"type": "File", "id": "` + resource + `"}, "context": ` + context + `}`
}

func TestCheck(t *testing.T) {
	withExamples := []string{"check", "--policies", examplePolicies, "--entities", exampleEntities, "--schema", exampleSchema, "--request", "-"}
	nested := strings.Repeat(`{"a": `, 100) + "1" + strings.Repeat("}", 100)
	tests := []struct {
		name     string
		args     []string
		stdin    string
		code     int
		decision string // when code is 0
		stderr   string // a pattern stderr must match when code is not 0
	}{{
		name:     "allowed",
		args:     withExamples,
		stdin:    request("ci-bot", "read_file", "engineering/design.md", "{}"),
		decision: "allow",
	}, {
		name:     "denied is still a successful check",
		args:     withExamples,
		stdin:    request("legacy-bot", "read_file", "engineering/design.md", "{}"),
		decision: "deny",
	}, {
		name:     "an unknown entity still evaluates",
		args:     withExamples,
		stdin:    request("ghost-bot", "read_file", "no/such/file", "{}"),
		decision: "deny",
	}, {
		name:     "no entities, no schema",
		args:     []string{"check", "--policies", examplePolicies, "--request", "-"},
		stdin:    request("ci-bot", "read_file", "engineering/design.md", "{}"),
		decision: "deny",
	}, {
		name:   "malformed policy",
		args:   []string{"check", "--policies", "testdata/broken", "--request", "-"},
		stdin:  request("a", "read", "d", "{}"),
		code:   exitBadInput,
		stderr: `^creto: testdata/broken/broken\.cedar:3:\d+: syntax error`,
	}, {
		name:   "context not an object",
		args:   withExamples,
		stdin:  request("ci-bot", "read_file", "engineering/design.md", "[1, 2]"),
		code:   exitBadInput,
		stderr: `^creto: invalid request: context: not a JSON object\n$`,
	}, {
		name:   "deeply nested context",
		args:   []string{"check", "--policies", examplePolicies, "--request", "-"},
		stdin:  request("ci-bot", "read_file", "engineering/design.md", nested),
		code:   exitBadInput,
		stderr: `^creto: invalid request: context: nested deeper than`,
	}, {
		name:   "context may not set the delegation",
		args:   []string{"check", "--policies", examplePolicies, "--request", "-"},
		stdin:  request("ci-bot", "read_file", "engineering/design.md", `{"delegation": 1}`),
		code:   exitBadInput,
		stderr: `context\.delegation is reserved`,
	}, {
		name:   "unknown request field",
		args:   withExamples,
		stdin:  `{"principal": {"type": "Agent", "id": "a"}, "resouce": {"type": "File", "id": "f"}}`,
		code:   exitBadInput,
		stderr: `^creto: request standard input: json: unknown field "resouce"\n$`,
	}, {
		name:   "request not an object",
		args:   withExamples,
		stdin:  `[]`,
		code:   exitBadInput,
		stderr: `request standard input: not a JSON object`,
	}, {
		name:   "trailing data",
		args:   withExamples,
		stdin:  request("ci-bot", "read_file", "engineering/design.md", "{}") + "{}",
		code:   exitBadInput,
		stderr: `unexpected data after the JSON object`,
	}, {
		name:   "request off the schema",
		args:   withExamples,
		stdin:  request("ci-bot", "reed_file", "engineering/design.md", "{}"),
		code:   exitBadInput,
		stderr: "^creto: invalid request: schema: action `Action::\"reed_file\"` does not exist",
	}, {
		name:   "missing request file",
		args:   []string{"check", "--policies", examplePolicies, "--request", "testdata/nowhere.json"},
		code:   exitBadInput,
		stderr: `^creto: open testdata/nowhere\.json: no such file or directory\n$`,
	}, {
		name:   "missing policies",
		args:   []string{"check", "--policies", "testdata/nowhere", "--request", "-"},
		stdin:  request("ci-bot", "read_file", "engineering/design.md", "{}"),
		code:   exitBadInput,
		stderr: `testdata/nowhere: no such file or directory`,
	}, {
		name:   "malformed entities",
		args:   []string{"check", "--policies", examplePolicies, "--entities", "testdata/failing/failing_test.yaml", "--request", "-"},
		stdin:  request("ci-bot", "read_file", "engineering/design.md", "{}"),
		code:   exitBadInput,
		stderr: `^creto: testdata/failing/failing_test\.yaml: invalid entities`,
	}, {
		name:   "entities off the schema",
		args:   []string{"check", "--policies", examplePolicies, "--schema", exampleSchema, "--entities", "testdata/off-schema-entities.json", "--request", "-"},
		stdin:  request("ci-bot", "read_file", "engineering/design.md", "{}"),
		code:   exitBadInput,
		stderr: `^creto: testdata/off-schema-entities\.json: invalid entities: entity does not conform to the schema`,
	}, {
		name:   "policies flag required",
		args:   []string{"check", "--request", "-"},
		code:   exitBadInput,
		stderr: `required flag\(s\) "policies" not set`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := creto(t, strings.NewReader(tt.stdin), tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			if tt.code != exitOK {
				if stdout != "" {
					t.Errorf("stdout %q, want nothing", stdout)
				}
				if !regexp.MustCompile(tt.stderr).MatchString(stderr) {
					t.Errorf("stderr %q does not match %q", stderr, tt.stderr)
				}
				if strings.Count(stderr, "\n") != 1 {
					t.Errorf("stderr %q is not one line", stderr)
				}
				return
			}
			if stderr != "" {
				t.Errorf("stderr %q, want nothing", stderr)
			}
			if d := parseDecision(t, stdout); d.Decision != tt.decision {
				t.Errorf("decision %s, want %s", d.Decision, tt.decision)
			}
		})
	}
}

func TestCheckUnknownEntityReportsErrors(t *testing.T) {
	code, stdout, _ := creto(t, strings.NewReader(request("ghost-bot", "read_file", "engineering/design.md", "{}")),
		"check", "--policies", examplePolicies, "--entities", exampleEntities, "--request", "-")
	if code != exitOK {
		t.Fatalf("exit %d", code)
	}
	d := parseDecision(t, stdout)
	if d.Decision != "deny" || d.Reason != engine.DefaultDenyReason || len(d.Errors) == 0 {
		t.Errorf("got %+v, want the default deny with the policies that failed to evaluate", d)
	}
}

// countingReader yields an endless request and counts what is read of it.
type countingReader struct{ n int }

func (r *countingReader) Read(p []byte) (int, error) {
	for i := range p {
		p[i] = ' '
	}
	r.n += len(p)
	return len(p), nil
}

func TestCheckRefusesOversizedRequestUnread(t *testing.T) {
	const tenMiB = 10 << 20
	r := &countingReader{}
	code, _, stderr := creto(t, io.LimitReader(r, tenMiB), "check", "--policies", examplePolicies, "--request", "-")
	if code != exitBadInput || !strings.Contains(stderr, "larger than the 1048576-byte limit") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	if limit := engine.DefaultLimits.MaxRequestBytes; r.n > limit+1 {
		t.Errorf("read %d bytes of the request, want at most %d", r.n, limit+1)
	}
}

// TestExampleRequests keeps the example requests valid: each must be
// decided, without evaluation errors, with the example schema applied.
func TestExampleRequests(t *testing.T) {
	entries, err := fs.ReadDir(examples.FS, examples.Requests)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) == 0 {
		t.Fatal("no example requests")
	}
	seen := map[string]bool{}
	for _, e := range entries {
		t.Run(e.Name(), func(t *testing.T) {
			code, stdout, stderr := creto(t, nil, "check", "--policies", examplePolicies, "--entities", exampleEntities,
				"--schema", exampleSchema, "--request", filepath.Join(exampleRequestDir, e.Name()))
			if code != exitOK {
				t.Fatalf("exit %d: %s", code, stderr)
			}
			d := parseDecision(t, stdout)
			if len(d.Errors) > 0 {
				t.Errorf("evaluation errors: %+v", d.Errors)
			}
			seen[d.Decision] = true
		})
	}
	for _, k := range []string{"allow", "deny", "requires_oversight"} {
		if !seen[k] {
			t.Errorf("no example request is decided %s", k)
		}
	}
}

func TestPolicyTest(t *testing.T) {
	tests := []struct {
		name    string
		args    []string
		code    int
		summary string // the last stdout line, when code is not 2
		stdout  string // a pattern stdout must also match
		stderr  string // a pattern stderr must match
	}{{
		name:    "the examples pass",
		args:    []string{exampleTests},
		summary: `^[1-9]\d* passed, 0 failed$`,
		stdout:  `(?m)^PASS payments/a large transfer needs two-person approval$`,
	}, {
		name:    "a failing case",
		args:    []string{"testdata/failing"},
		code:    exitFailed,
		summary: `^1 passed, 1 failed$`,
		stdout:  `(?m)^FAIL failing/writing is wrongly expected to be allowed: got deny \(reason "no policy permits this request"\), want allow$`,
	}, {
		name:    "filtered",
		args:    []string{"--run", "reading", "testdata/failing"},
		summary: `^1 passed, 0 failed$`,
	}, {
		name:    "verbose shows timing",
		args:    []string{"-v", "testdata/failing/failing_test.yaml"},
		code:    exitFailed,
		summary: `^1 passed, 1 failed$`,
		stdout:  `(?m)^PASS failing/reading is allowed \([\d.]+[nµm]?s\)$`,
	}, {
		name:    "a filter that matches nothing",
		args:    []string{"--run", "^nothing$", exampleTests},
		summary: `^0 passed, 0 failed$`,
		stderr:  `no case matches --run`,
	}, {
		name:   "a bad suite",
		args:   []string{"testdata/bad_suite_test.yaml"},
		code:   exitBadInput,
		stderr: `^creto: testdata/bad_suite_test\.yaml: line 6: unknown field "expct"\n$`,
	}, {
		name:   "a missing path",
		args:   []string{"testdata/nowhere"},
		code:   exitBadInput,
		stderr: `no such file or directory`,
	}, {
		name:   "a bad filter",
		args:   []string{"--run", "(", exampleTests},
		code:   exitBadInput,
		stderr: `^creto: --run: error parsing regexp`,
	}, {
		name:   "no path",
		code:   exitBadInput,
		stderr: `requires at least 1 arg`,
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, stdout, stderr := creto(t, nil, append([]string{"policy", "test"}, tt.args...)...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tt.code, stdout, stderr)
			}
			if tt.summary != "" {
				lines := strings.Split(strings.TrimSuffix(stdout, "\n"), "\n")
				if last := lines[len(lines)-1]; !regexp.MustCompile(tt.summary).MatchString(last) {
					t.Errorf("summary %q does not match %q", last, tt.summary)
				}
			}
			if tt.stdout != "" && !regexp.MustCompile(tt.stdout).MatchString(stdout) {
				t.Errorf("stdout does not match %q:\n%s", tt.stdout, stdout)
			}
			if tt.stderr != "" && !regexp.MustCompile(tt.stderr).MatchString(stderr) {
				t.Errorf("stderr %q does not match %q", stderr, tt.stderr)
			}
		})
	}
}

func TestPolicyValidate(t *testing.T) {
	code, stdout, stderr := creto(t, nil, "policy", "validate", examplePolicies, "--schema", exampleSchema, "--entities", exampleEntities)
	if code != exitOK || !regexp.MustCompile(`^\d+ policies OK\n$`).MatchString(stdout) || stderr != "" {
		t.Errorf("examples: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	code, stdout, stderr = creto(t, nil, "policy", "validate", "testdata/broken")
	want := regexp.MustCompile(`^testdata/broken/broken\.cedar:3:\d+: syntax error: .+\n1 problem\n$`)
	if code != exitBadInput || stdout != "" || !want.MatchString(stderr) {
		t.Errorf("broken: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}

	// The examples break the moment a policy reads an attribute the schema
	// lacks.
	code, _, stderr = creto(t, nil, "policy", "validate", "testdata/failing", "--schema", exampleSchema)
	if code != exitBadInput || !strings.Contains(stderr, "testdata/failing/policies.cedar:1:1: schema:") {
		t.Errorf("schema: exit %d, stderr %q", code, stderr)
	}
}

func TestDemo(t *testing.T) {
	code, stdout, stderr := creto(t, nil, "demo")
	if code != exitOK || stderr != "" {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	for _, want := range []string{"→ allow", "→ deny", "→ requires_oversight", "from the cache (cached: true)", "Engine: "} {
		if !strings.Contains(stdout, want) {
			t.Errorf("output lacks %q:\n%s", want, stdout)
		}
	}
	reqs, err := fs.Glob(examples.FS, path.Join(examples.Requests, "*.json"))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(stdout, " → "); n != len(reqs) {
		t.Errorf("%d decisions shown, want one per example request (%d)", n, len(reqs))
	}

	code, stdout, stderr = creto(t, nil, "demo", "--policies", "testdata/failing")
	if code != exitOK || !strings.Contains(stdout, "1 policy from testdata/failing") {
		t.Errorf("--policies: exit %d, stdout %q, stderr %q", code, stdout, stderr)
	}
	code, _, stderr = creto(t, nil, "demo", "--policies", "testdata/nowhere")
	if code != exitBadInput || !strings.Contains(stderr, "testdata/nowhere") {
		t.Errorf("missing --policies: exit %d, stderr %q", code, stderr)
	}
}

func TestVersionAndUsage(t *testing.T) {
	if code, stdout, _ := creto(t, nil, "version"); code != exitOK || !strings.HasPrefix(stdout, "creto ") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
	if code, stdout, _ := creto(t, nil, "--help"); code != exitOK || !strings.Contains(stdout, "policy") {
		t.Errorf("help: exit %d, stdout %q", code, stdout)
	}
	for _, args := range [][]string{{"frobnicate"}, {"check", "--bogus"}, {"policy", "validate"}, {"version", "extra"}} {
		if code, _, stderr := creto(t, nil, args...); code != exitBadInput || !strings.HasPrefix(stderr, "creto: ") {
			t.Errorf("%v: exit %d, stderr %q", args, code, stderr)
		}
	}
}
