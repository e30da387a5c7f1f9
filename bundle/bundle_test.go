package bundle_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/creto-systems/creto/bundle"
	"github.com/creto-systems/creto/engine"
)

const schema = `
entity User;
entity Doc { owner: User };
action read appliesTo { principal: User, resource: Doc };
`

func files(m map[string]string) fstest.MapFS {
	fsys := fstest.MapFS{}
	for name, text := range m {
		fsys[name] = &fstest.MapFile{Data: []byte(text)}
	}
	return fsys
}

func TestLoad(t *testing.T) {
	fsys := files(map[string]string{
		"policies/a.cedar":        `@id("owner-reads") permit (principal, action == Action::"read", resource is Doc) when { resource.owner == principal };`,
		"policies/sub/b.cedar":    `permit (principal == User::"admin", action, resource);`,
		"policies/notes.txt":      `not a policy`,
		"entities.json":           `[{"uid": {"type": "Doc", "id": "d"}, "attrs": {"owner": {"__entity": {"type": "User", "id": "u"}}}, "parents": []}]`,
		"schema.cedarschema":      schema,
		"bad.cedarschema":         "entity A;\nentity {",
		"off-schema.json":         `[{"uid": {"type": "Doc", "id": "d"}, "attrs": {}, "parents": []}]`,
		"single/only.cedar.bak":   `permit (principal, action, resource);`,
		"empty/README":            ``,
		"broken/ok.cedar":         `@id("ok") permit (principal, action, resource);`,
		"broken/x/syntax.cedar":   "permit (principal,\naction resource);",
		"broken/y/typo.cedar":     `@id("typo") permit (principal, action == Action::"read", resource is Doc) when { resource.ownr == principal };`,
		"broken/z/over.cedar":     `@id("over") @oversight("two-person") forbid (principal, action, resource);`,
		"broken/z/ok-again.cedar": `@id("ok") permit (principal, action, resource);`,
	})
	tests := []struct {
		name     string
		files    bundle.Files
		policies int
		problems []string
	}{{
		name:     "directory with entities and schema",
		files:    bundle.Files{FS: fsys, Policies: "policies", Entities: "entities.json", Schema: "schema.cedarschema"},
		policies: 2,
	}, {
		name:     "a file named explicitly, whatever its extension",
		files:    bundle.Files{FS: fsys, Policies: "single/only.cedar.bak"},
		policies: 1,
	}, {
		name:  "every problem, each at its own file",
		files: bundle.Files{FS: fsys, Policies: "broken", Schema: "schema.cedarschema"},
		problems: []string{
			`broken/x/syntax.cedar:2:16: syntax error: ")": exact got resource want ,`,
			"broken/y/typo.cedar:1:1: schema: for policy `typo`, attribute `ownr`",
			`broken/z/ok-again.cedar: policy "ok": the id is used twice`,
			`broken/z/over.cedar:1:1: policy "over": @oversight belongs on a permit`,
		},
	}, {
		name:     "no policy files",
		files:    bundle.Files{FS: fsys, Policies: "empty"},
		problems: []string{"empty: no .cedar files"},
	}, {
		name:     "no policies named",
		files:    bundle.Files{FS: fsys},
		problems: []string{"no policies given"},
	}, {
		name:     "missing files",
		files:    bundle.Files{FS: fsys, Policies: "nowhere", Entities: "nothing.json", Schema: "none.cedarschema"},
		problems: []string{"open none.cedarschema: file does not exist", "open nowhere: file does not exist", "open nothing.json: file does not exist"},
	}, {
		name:     "a schema that does not parse",
		files:    bundle.Files{FS: fsys, Policies: "policies", Schema: "bad.cedarschema"},
		problems: []string{"bad.cedarschema:2:8: invalid schema: expected identifier"},
	}, {
		name:     "entities that do not parse",
		files:    bundle.Files{FS: fsys, Policies: "policies", Entities: "policies/a.cedar"},
		problems: []string{"policies/a.cedar: invalid entities: "},
	}, {
		name:     "entities off the schema",
		files:    bundle.Files{FS: fsys, Policies: "policies", Entities: "off-schema.json", Schema: "schema.cedarschema"},
		problems: []string{"off-schema.json: invalid entities: entity does not conform to the schema"},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e, err := bundle.Load(context.Background(), tt.files)
			if tt.problems == nil {
				if err != nil {
					t.Fatal(err)
				}
				if n := e.Stats().Policies; n != tt.policies {
					t.Errorf("%d policies, want %d", n, tt.policies)
				}
				return
			}
			var be *bundle.Error
			if !errors.As(err, &be) {
				t.Fatalf("got %v, want a *bundle.Error", err)
			}
			if e != nil {
				t.Error("an engine came back with the error")
			}
			if len(be.Problems) != len(tt.problems) {
				t.Fatalf("got problems %q, want %q", be.Problems, tt.problems)
			}
			for i, p := range be.Problems {
				if !strings.HasPrefix(p.String(), tt.problems[i]) {
					t.Errorf("problem %d is %q, want it to start with %q", i, p, tt.problems[i])
				}
			}
		})
	}
}

func TestLoadFromDisk(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "policies"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, text string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("policies/ok.cedar", `permit (principal, action, resource);`)
	write("policies/bad.cedar", "\n  permit (principal action, resource);")
	write("single.cedar", `@id("p") permit (principal, action, resource);`)

	e, err := bundle.Load(context.Background(), bundle.Files{Policies: filepath.Join(dir, "single.cedar")})
	if err != nil {
		t.Fatal(err)
	}
	if p := e.ListPolicies(); len(p) != 1 || p[0].ID != "p" {
		t.Errorf("policies %+v, want just p", p)
	}

	_, err = bundle.Load(context.Background(), bundle.Files{Policies: filepath.Join(dir, "policies")})
	if !errors.Is(err, engine.ErrInvalidPolicy) {
		t.Fatalf("got %v, want ErrInvalidPolicy", err)
	}
	if want := filepath.Join(dir, "policies", "bad.cedar") + ":2:27: syntax error"; !strings.HasPrefix(err.Error(), want) {
		t.Errorf("error %q, want it to start with %q", err, want)
	}
}

func TestErrorSummarises(t *testing.T) {
	p := bundle.Problem{File: "f.cedar", Line: 1, Column: 2, Message: "bad"}
	tests := []struct {
		problems []bundle.Problem
		want     string
	}{
		{[]bundle.Problem{p}, "f.cedar:1:2: bad"},
		{[]bundle.Problem{p, p}, "f.cedar:1:2: bad (and 1 more problem)"},
		{[]bundle.Problem{p, p, {Message: "m"}}, "f.cedar:1:2: bad (and 2 more problems)"},
		{[]bundle.Problem{{File: "e.json", Message: "m"}}, "e.json: m"},
	}
	for _, tt := range tests {
		if got := (&bundle.Error{Problems: tt.problems}).Error(); got != tt.want {
			t.Errorf("got %q, want %q", got, tt.want)
		}
	}
}
