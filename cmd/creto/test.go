package main

import (
	"fmt"
	"regexp"

	"github.com/spf13/cobra"

	"github.com/creto-systems/creto/engine/policytest"
)

func newTestCmd() *cobra.Command {
	var verbose bool
	var filter string
	cmd := &cobra.Command{
		Use:   "test [-v] [--run REGEX] PATH...",
		Short: "Run policy test suites",
		Long: `Run the policy test suites in each PATH: a suite file, or a directory
searched recursively for *_test.yaml, *_test.yml and *_test.json files. The
suite format is described in docs/policy-tests.md.

Prints one line per case, PASS or FAIL with what differed, then a summary
"N passed, M failed". Exit status 0 when every case passed, 1 when any
failed, 2 when a suite cannot be loaded.`,
		DisableFlagsInUseLine: true,
		Args:                  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var match func(string) bool
			if filter != "" {
				re, err := regexp.Compile(filter)
				if err != nil {
					return fmt.Errorf("--run: %w", err)
				}
				match = re.MatchString
			}
			suites, err := policytest.Load(cmd.Context(), args...)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			passed, failed := 0, 0
			for _, s := range suites {
				for _, r := range s.Run(cmd.Context(), match) {
					status := "PASS"
					if r.Passed() {
						passed++
					} else {
						status = "FAIL"
						failed++
					}
					line := status + " " + r.Name()
					if verbose {
						line += " (" + round(r.Duration) + ")"
					}
					if !r.Passed() {
						line += ": " + r.Failure
					}
					fmt.Fprintln(out, line)
				}
			}
			fmt.Fprintf(out, "%d passed, %d failed\n", passed, failed)
			if passed+failed == 0 && match != nil {
				fmt.Fprintf(cmd.ErrOrStderr(), "creto: no case matches --run %q\n", filter)
			}
			if failed > 0 {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "show how long each case took")
	cmd.Flags().StringVar(&filter, "run", "", "run only the cases whose suite/case name matches this regular expression")
	return cmd
}
