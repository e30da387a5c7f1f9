package examples_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/creto-systems/creto/bundle"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/engine/policytest"
	"github.com/creto-systems/creto/examples"
)

// TestSuitesPass keeps the example policies and their tests in step.
func TestSuitesPass(t *testing.T) {
	suites, err := policytest.Load(context.Background(), examples.Tests)
	if err != nil {
		t.Fatal(err)
	}
	decisions := map[engine.Kind]bool{}
	for _, s := range suites {
		for _, r := range s.Run(context.Background(), nil) {
			if !r.Passed() {
				t.Errorf("%s: %s", r.Name(), r.Failure)
			}
			decisions[r.Decision.Kind] = true
		}
	}
	// Quotas and rate limits are not decided by policies, so the suites
	// can only show the three decisions policies make.
	for _, k := range []engine.Kind{engine.Allow, engine.Deny, engine.RequiresOversight} {
		if !decisions[k] {
			t.Errorf("no case ends in %s", k)
		}
	}
}

// TestSuitesCoverEveryPolicy fails when a policy is added without a case
// that shows it deciding.
func TestSuitesCoverEveryPolicy(t *testing.T) {
	ctx := context.Background()
	e, err := bundle.Load(ctx, bundle.Files{FS: examples.FS, Policies: examples.Policies})
	if err != nil {
		t.Fatal(err)
	}
	suites, err := policytest.Load(ctx, examples.Tests)
	if err != nil {
		t.Fatal(err)
	}
	decided := map[string]bool{}
	for _, s := range suites {
		for _, r := range s.Run(ctx, nil) {
			for _, id := range r.Decision.MatchedPolicies {
				decided[id] = true
			}
		}
	}
	for _, p := range e.ListPolicies() {
		if !decided[p.ID] {
			t.Errorf("policy %s decides no test case", p.ID)
		}
	}
}

// TestEmbeddedMatchesDisk catches a file added on disk that the embed
// patterns miss, which would leave the demo showing a stale set.
func TestEmbeddedMatchesDisk(t *testing.T) {
	for _, dir := range []string{examples.Policies, examples.Requests, examples.Tests} {
		onDisk, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		embedded, err := fs.ReadDir(examples.FS, dir)
		if err != nil {
			t.Fatal(err)
		}
		var want, got []string
		for _, e := range onDisk {
			want = append(want, filepath.ToSlash(e.Name()))
		}
		for _, e := range embedded {
			got = append(got, e.Name())
		}
		if !slices.Equal(got, want) {
			t.Errorf("%s: embedded %v, on disk %v", dir, got, want)
		}
	}
}

// TestBundleLoads checks the embedded set is internally consistent: the
// policies and entities conform to the schema.
func TestBundleLoads(t *testing.T) {
	_, err := bundle.Load(context.Background(), bundle.Files{
		FS:       examples.FS,
		Policies: examples.Policies,
		Entities: examples.Entities,
		Schema:   examples.Schema,
	})
	if err != nil {
		t.Fatal(err)
	}
}
