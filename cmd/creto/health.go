package main

import (
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/creto-systems/creto/client"
)

// `creto health`: the platform's health as the Go clients see a node's
// services (seed §14.1), for operators and scripts. Exit status 0 when
// healthy, 1 when degraded or unhealthy, 2 for bad input.

func newHealthCmd() *cobra.Command {
	var conn *connFlags
	var configFile string
	cmd := &cobra.Command{
		Use:   "health",
		Short: "Check a node's services through the Go clients and print the platform's health as JSON",
		Long: `health asks each service of a node (authz, nhi, memory, vault, storage,
audit, consensus) for its health as the Go clients do, runs the local
crypto self-test, and prints the aggregated report as JSON: the platform
is unhealthy when a critical service (authz, nhi, vault, crypto) is,
degraded when any other is or any service is slow or has its circuit
open.

--config reads a client configuration (docs/clients.md) for the timeouts
that decide "slow"; the connection flags override its endpoint and TLS
settings. Health checks need no client certificate.

Exit status: 0 healthy, 1 degraded or unhealthy, 2 bad input.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, opts, err := conn.clientConfig(cmd, configFile, false)
			if err != nil {
				return err
			}
			c, err := client.New(cfg, opts...)
			if err != nil {
				return err
			}
			defer c.Close()
			ctx, cancel := conn.context(cmd.Context())
			defer cancel()
			report := c.Health(ctx)
			enc := json.NewEncoder(cmd.OutOrStdout())
			enc.SetIndent("", "  ")
			if err := enc.Encode(report); err != nil {
				return err
			}
			if report.Status != client.Healthy {
				return &exitError{code: exitFailed}
			}
			return nil
		},
	}
	conn = addConnFlags(cmd.Flags())
	cmd.Flags().StringVar(&configFile, "config", "", "client configuration file (TOML) for timeouts; flags override its endpoint and TLS")
	return cmd
}
