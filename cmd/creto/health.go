package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"

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
			cfg, opts, err := healthConfig(cmd, conn, configFile)
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

// healthConfig builds the clients' configuration from the file and the
// connection flags: the flags name the node for every service.
func healthConfig(cmd *cobra.Command, conn *connFlags, file string) (client.Config, []client.Option, error) {
	var cfg client.Config
	if file != "" {
		var err error
		if cfg, err = client.LoadConfig(file); err != nil {
			return cfg, nil, err
		}
	}
	t := client.Transport{Endpoint: conn.addr}
	var opts []client.Option
	switch {
	case conn.plaintext:
		if conn.token != "" {
			return cfg, nil, errors.New("--token needs TLS: a bearer token is never sent in plaintext")
		}
		t.TLSEnabled = new(bool)
	default:
		if _, err := os.Stat(conn.caCert); err != nil {
			return cfg, nil, fmt.Errorf("--cacert: %w", err)
		}
		t.TLSCA = conn.caCert
		// The operator certificate is sent when it is there (or asked
		// for); a health check does not need one.
		_, err := os.Stat(conn.cert)
		explicit := cmd.Flags().Changed("cert") || cmd.Flags().Changed("key")
		switch {
		case conn.token != "":
			opts = append(opts, client.WithBearerToken(conn.token))
		case explicit || err == nil:
			t.TLSCert, t.TLSKey = conn.cert, conn.key
		case !errors.Is(err, fs.ErrNotExist):
			return cfg, nil, fmt.Errorf("--cert: %w", err)
		}
	}
	cfg.Transport = t
	for _, s := range []*client.ServiceConfig{&cfg.Authz.ServiceConfig, &cfg.NHI.ServiceConfig, &cfg.Memory.ServiceConfig, &cfg.Vault.ServiceConfig,
		&cfg.Storage.ServiceConfig, &cfg.Audit.ServiceConfig, &cfg.Consensus.ServiceConfig} {
		s.Transport = client.Transport{}
	}
	// A health check emits nothing: the audit logger needs no spool.
	cfg.Audit.SpoolPath = ""
	return cfg, opts, nil
}
