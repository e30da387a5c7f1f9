package engine_test

import (
	"archive/tar"
	"compress/gzip"
	"context"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/creto-systems/creto/engine"
)

// readCorpus returns the files of Cedar's official conformance corpus, which
// ships inside the cedar-go module.
func readCorpus(t *testing.T) map[string][]byte {
	t.Helper()
	out, err := exec.Command("go", "list", "-m", "-f", "{{.Dir}}", "github.com/cedar-policy/cedar-go").Output()
	if err != nil {
		t.Fatalf("locating cedar-go: %v", err)
	}
	f, err := os.Open(filepath.Join(strings.TrimSpace(string(out)), "corpus-tests.tar.gz"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{}
	tr := tar.NewReader(gz)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if h.Typeflag != tar.TypeReg {
			continue
		}
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatal(err)
		}
		files[h.Name] = b
	}
	return files
}

type corpusCase struct {
	Policies string `json:"policies"`
	Entities string `json:"entities"`
	Requests []struct {
		Description string           `json:"description"`
		Principal   engine.EntityRef `json:"principal"`
		Action      engine.EntityRef `json:"action"`
		Resource    engine.EntityRef `json:"resource"`
		Context     json.RawMessage  `json:"context"`
		Decision    string           `json:"decision"`
		Reason      []string         `json:"reason"`
		Errors      []string         `json:"errors"`
	} `json:"requests"`
}

// TestCorpusConformance runs every request of Cedar's conformance corpus
// through the engine with the scope index and the decision cache on, twice
// (the second time from the cache when the answer was an Allow), and
// requires Cedar's decision, reasons and erroring policies exactly.
func TestCorpusConformance(t *testing.T) {
	files := readCorpus(t)
	var names []string
	for name := range files {
		if strings.HasSuffix(name, ".json") && !strings.HasSuffix(name, ".entities.json") {
			names = append(names, name)
		}
	}
	slices.Sort(names)
	if len(names) < 1000 {
		t.Fatalf("corpus has only %d cases; the archive changed shape", len(names))
	}
	requests, cached := 0, 0
	for _, name := range names {
		var tc corpusCase
		if err := json.Unmarshal(files[name], &tc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		ents := engine.NewEntities()
		if err := ents.ReplaceJSON(files[tc.Entities]); err != nil {
			// Cedar rejects these entity files too; the corpus expects no
			// decisions from them.
			continue
		}
		eng := engine.New(engine.WithEntities(ents))
		srcs, err := engine.ParseFile("policy.cedar", files[tc.Policies])
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		// The corpus names policies policy0..N in file order.
		for i := range srcs {
			srcs[i].ID = "policy" + strconv.Itoa(i)
		}
		if err := eng.ReplacePolicies(context.Background(), srcs); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, r := range tc.Requests {
			req := engine.Request{
				Principal: engine.Principal{Type: r.Principal.Type, ID: r.Principal.ID},
				Action:    r.Action,
				Resource:  r.Resource,
				Context:   r.Context,
			}
			for pass := range 2 {
				d, err := eng.Check(context.Background(), req)
				if err != nil {
					t.Fatalf("%s %s: %v", name, r.Description, err)
				}
				if d.Cached {
					cached++
				}
				got := "deny"
				if d.Kind == engine.Allow {
					got = "allow"
				}
				var errIDs []string
				for _, e := range d.Errors {
					errIDs = append(errIDs, e.PolicyID)
				}
				if got != r.Decision || !sameSet(d.MatchedPolicies, r.Reason) || !sameSet(errIDs, r.Errors) {
					t.Errorf("%s %s (pass %d): got %s reasons=%v errors=%v; want %s reasons=%v errors=%v",
						name, r.Description, pass, got, d.MatchedPolicies, errIDs, r.Decision, r.Reason, r.Errors)
				}
			}
			requests++
		}
		eng.Close()
	}
	if requests < 10000 || cached == 0 {
		t.Fatalf("ran %d requests, %d from cache: the corpus was not exercised", requests, cached)
	}
	t.Logf("%d corpus requests agree with Cedar (%d answered again from cache)", requests, cached)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(slices.Compact(a), slices.Compact(b))
}
