package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/creto-systems/creto/bundle"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/engine/policytest"
	"github.com/creto-systems/creto/examples"
)

func newDemoCmd() *cobra.Command {
	var policies string
	cmd := &cobra.Command{
		Use:   "demo [--policies DIR]",
		Short: "Evaluate the example requests against the example policies",
		Long: `Load the example agent-platform policies, entities and schema (built into
the binary, so no files are needed), decide each example request, then show
the decision cache at work and the engine's counters.

With --policies, the example requests are decided against the .cedar files
in DIR instead; the example schema is not applied to them, so a policy set
under experiment need not match it.`,
		DisableFlagsInUseLine: true,
		Args:                  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runDemo(cmd.Context(), cmd.OutOrStdout(), policies)
		},
	}
	cmd.Flags().StringVar(&policies, "policies", "", "directory of .cedar files to use instead of the examples")
	return cmd
}

func runDemo(ctx context.Context, w io.Writer, policyDir string) error {
	files := bundle.Files{
		FS:       examples.FS,
		Policies: examples.Policies,
		Entities: examples.Entities,
		Schema:   examples.Schema,
	}
	source := "the built-in examples, checked against their schema"
	if policyDir != "" {
		info, err := os.Stat(policyDir)
		if err != nil {
			return err
		}
		if !info.IsDir() {
			return fmt.Errorf("--policies %s: not a directory", policyDir)
		}
		files.FS = policyOverlay{base: examples.FS, policies: os.DirFS(policyDir)}
		files.Schema = ""
		source = policyDir
	}
	e, err := bundle.Load(ctx, files, engine.WithRequestValidation())
	if err != nil {
		return err
	}
	defer e.Close()
	reqs, err := exampleRequests()
	if err != nil {
		return err
	}

	fmt.Fprintf(w, "Creto demo: %s against %s from %s\n\n",
		plural(len(reqs), "example request", "example requests"),
		plural(e.Stats().Policies, "policy", "policies"), source)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	firstAllow := -1
	var firstAllowTime time.Duration
	for i, r := range reqs {
		d, err := e.Check(ctx, r)
		outcome := policytest.Describe(d)
		if err != nil {
			outcome = "rejected: " + err.Error()
		} else if d.Kind == engine.Allow && firstAllow < 0 {
			firstAllow, firstAllowTime = i, d.EvaluationTime
		}
		fmt.Fprintf(tw, "  %s\t%s\t%s\t→ %s in %s\n",
			principalLabel(r), actionLabel(r.Action), entityLabel(r.Resource), outcome, round(d.EvaluationTime))
	}
	if err := tw.Flush(); err != nil {
		return err
	}

	fmt.Fprintln(w, "\nDecision cache (allow decisions only; any policy or entity change invalidates it)")
	if firstAllow < 0 {
		fmt.Fprintln(w, "  no example request was allowed, so nothing was cached")
	} else {
		// The request was first decided, uncached, in the loop above.
		r := reqs[firstAllow]
		d, err := e.Check(ctx, r)
		if err != nil {
			return err
		}
		fmt.Fprintf(w, "  %s %s %s: %s evaluated, %s from the cache (cached: %t)\n",
			principalLabel(r), actionLabel(r.Action), entityLabel(r.Resource),
			round(firstAllowTime), round(d.EvaluationTime), d.Cached)
	}

	st := e.Stats()
	fmt.Fprintf(w, "\nEngine: %s, policy epoch %d, cache %s and %s, %s\n",
		plural(st.Policies, "policy", "policies"), st.Epoch,
		plural(int(st.Cache.Hits), "hit", "hits"), plural(int(st.Cache.Misses), "miss", "misses"),
		plural(st.Cache.Entries, "entry", "entries"))
	return nil
}

// exampleRequests decodes the embedded example requests, in file order.
func exampleRequests() ([]engine.Request, error) {
	entries, err := fs.ReadDir(examples.FS, examples.Requests)
	if err != nil {
		return nil, err
	}
	var out []engine.Request
	for _, ent := range entries {
		name := path.Join(examples.Requests, ent.Name())
		b, err := fs.ReadFile(examples.FS, name)
		if err != nil {
			return nil, err
		}
		req, err := decodeRequest(b)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		out = append(out, req)
	}
	return out, nil
}

// policyOverlay serves the policies directory from another file system and
// everything else from base, so a user's policies meet the example
// entities and requests.
type policyOverlay struct {
	base, policies fs.FS
}

func (o policyOverlay) Open(name string) (fs.File, error) {
	if name == examples.Policies {
		return o.policies.Open(".")
	}
	if rest, ok := strings.CutPrefix(name, examples.Policies+"/"); ok {
		return o.policies.Open(rest)
	}
	return o.base.Open(name)
}

func entityLabel(r engine.EntityRef) string { return r.Type + "::" + strconv.Quote(r.ID) }

// actionLabel drops the Action type every action has unless it is
// namespaced.
func actionLabel(r engine.EntityRef) string {
	if r.Type == "" || r.Type == "Action" {
		return r.ID
	}
	return entityLabel(r)
}

func principalLabel(r engine.Request) string {
	p := entityLabel(engine.EntityRef{Type: r.Principal.Type, ID: r.Principal.ID})
	switch n := len(r.Delegation); n {
	case 0:
		return p
	case 1:
		return p + " for " + entityLabel(r.Delegation[0])
	default:
		return fmt.Sprintf("%s for %s (+%d)", p, entityLabel(r.Delegation[0]), n-1)
	}
}

func round(d time.Duration) string { return d.Round(100 * time.Nanosecond).String() }
