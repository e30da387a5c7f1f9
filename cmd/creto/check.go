package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/creto-systems/creto/bundle"
	"github.com/creto-systems/creto/engine"
)

func newCheckCmd() *cobra.Command {
	var files bundle.Files
	var request string
	cmd := &cobra.Command{
		Use:   "check --policies PATH --request FILE|- [--entities FILE] [--schema FILE]",
		Short: "Decide one request and print the decision as JSON",
		Long: `Decide one request against a policy set and print the decision as one
JSON object. The request is JSON in the Cedar CLI's shape:

  {"principal": {"type": "Agent", "id": "ci-bot"},
   "action":    {"type": "Action", "id": "read_file"},
   "resource":  {"type": "File", "id": "engineering/design.md"},
   "context":   {}}

with an optional "delegation" array of {"type","id"} (origin first) and
optional principal "attributes". With --schema, policies, entities and the
request must all conform to the schema.

Exit status 0 when the request was decided, whether allowed or denied; 2
when an input is unusable.`,
		DisableFlagsInUseLine: true,
		Args:                  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			req, err := readRequest(cmd.InOrStdin(), request)
			if err != nil {
				return err
			}
			// One check gains nothing from the cache.
			e, err := bundle.Load(cmd.Context(), files,
				engine.WithCache(engine.CacheConfig{}), engine.WithRequestValidation())
			if err != nil {
				return err
			}
			d, err := e.Check(cmd.Context(), req)
			if err != nil {
				return err
			}
			return json.NewEncoder(cmd.OutOrStdout()).Encode(d)
		},
	}
	f := cmd.Flags()
	f.StringVar(&files.Policies, "policies", "", "a .cedar file or a directory of them (required)")
	f.StringVar(&files.Entities, "entities", "", "Cedar entity JSON")
	f.StringVar(&files.Schema, "schema", "", "Cedar schema (human-readable or JSON)")
	f.StringVar(&request, "request", "", `request JSON file, or "-" for standard input (required)`)
	for _, name := range []string{"policies", "request"} {
		if err := cmd.MarkFlagRequired(name); err != nil {
			panic(err) // the flag is defined just above
		}
	}
	return cmd
}
