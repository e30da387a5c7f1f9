// Command creto checks requests against Cedar policies, validates and tests
// policy sets, and demonstrates the engine on the embedded examples. See
// docs/cli.md.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
)

// Exit codes, the same for every command.
const (
	exitOK = 0
	// exitFailed: the command ran and found failures (policy test cases).
	exitFailed = 1
	// exitBadInput: the input could not be used: unreadable or malformed
	// files, invalid policies, flags or requests.
	exitBadInput = 2
)

func main() {
	os.Exit(run(context.Background(), os.Args[1:], os.Stdin, os.Stdout, os.Stderr))
}

// run executes the command line args and returns the exit code; it is
// main without the process, so tests run commands in-process.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	root := newRootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	code := exitBadInput
	var ee *exitError
	if errors.As(err, &ee) {
		code, err = ee.code, ee.err
	}
	if err != nil {
		for line := range strings.SplitSeq(err.Error(), "\n") {
			fmt.Fprintln(stderr, "creto: "+line)
		}
	}
	return code
}

func newRootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "creto",
		Short: "Cedar policy engine for AI-agent platforms",
		Long: `creto decides what AI agents may do, using Cedar policies.

Exit codes: 0 success, 1 policy test failures, 2 bad input.`,
		// Errors are printed once, by run, in one consistent form; usage
		// text after a bad request file would bury the message.
		SilenceErrors:     true,
		SilenceUsage:      true,
		CompletionOptions: cobra.CompletionOptions{DisableDefaultCmd: true},
	}
	policy := &cobra.Command{
		Use:   "policy",
		Short: "Validate and test policy sets",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	policy.AddCommand(newValidateCmd(), newTestCmd())
	root.AddCommand(newCheckCmd(), policy, newExtCmd(), newDemoCmd(), newVersionCmd(),
		newServeCmd(), newConfigCmd(), newVaultCmd(), newAuditCmd(), newHealthCmd(), newStorageCmd())
	return root
}

// exitError makes a command exit with code. A nil err means the command
// has already reported what went wrong.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func (e *exitError) Unwrap() error { return e.err }

// plural formats a count with the right form of its noun.
func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}
