package main

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/creto-systems/creto/bundle"
)

func newValidateCmd() *cobra.Command {
	var files bundle.Files
	cmd := &cobra.Command{
		Use:   "validate PATH [--schema FILE] [--entities FILE]",
		Short: "Parse every policy and check it against a schema",
		Long: `Parse every policy in PATH (a .cedar file or a directory searched
recursively for them) and, with --schema, validate each against the schema;
with --entities, check the entity data too.

Each problem is printed to standard error as file:line:col: message. Exit
status 0 when everything is valid, 2 otherwise.`,
		DisableFlagsInUseLine: true,
		Args:                  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			files.Policies = args[0]
			e, err := bundle.Load(cmd.Context(), files)
			var be *bundle.Error
			if errors.As(err, &be) {
				stderr := cmd.ErrOrStderr()
				for _, p := range be.Problems {
					fmt.Fprintln(stderr, p)
				}
				fmt.Fprintln(stderr, plural(len(be.Problems), "problem", "problems"))
				return &exitError{code: exitBadInput}
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), plural(e.Stats().Policies, "policy", "policies")+" OK")
			return nil
		},
	}
	cmd.Flags().StringVar(&files.Schema, "schema", "", "Cedar schema to validate the policies against")
	cmd.Flags().StringVar(&files.Entities, "entities", "", "Cedar entity JSON to check as well")
	return cmd
}
