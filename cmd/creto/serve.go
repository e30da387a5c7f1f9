package main

import (
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/creto-systems/creto/node"
)

// serveFlags are the flags of serve and config print: each overrides one
// configuration key, over the file and the environment.
type serveFlags struct {
	config string
	set    func(*node.Config) // applies the flags that were given
}

func addServeFlags(fs *pflag.FlagSet) *serveFlags {
	sf := &serveFlags{}
	fs.StringVar(&sf.config, "config", os.Getenv("CRETO_CONFIG"), "TOML configuration file (default $CRETO_CONFIG; none needed)")
	str := map[string]func(*node.Config) *string{
		"data-dir":        func(c *node.Config) *string { return &c.Server.DataDir },
		"grpc-addr":       func(c *node.Config) *string { return &c.Server.GRPCAddr },
		"http-addr":       func(c *node.Config) *string { return &c.Server.HTTPAddr },
		"import-policies": func(c *node.Config) *string { return &c.Authz.ImportPolicies },
		"entities":        func(c *node.Config) *string { return &c.Authz.Entities },
		"schema":          func(c *node.Config) *string { return &c.Authz.Schema },
		"log-level":       func(c *node.Config) *string { return &c.Log.Level },
		"log-format":      func(c *node.Config) *string { return &c.Log.Format },
		"pki-dir":         func(c *node.Config) *string { return &c.Server.PKIDir },
		"node-id":         func(c *node.Config) *string { return &c.Consensus.NodeID },
		"raft-addr":       func(c *node.Config) *string { return &c.Consensus.BindAddress },
	}
	usage := map[string]string{
		"data-dir":        "data directory (server.data_dir, default " + node.DefaultDataDir + ")",
		"grpc-addr":       "gRPC listen address (server.grpc_addr, default " + node.DefaultGRPCAddr + ")",
		"http-addr":       "HTTP listen address for /metrics, /healthz and presigned storage URLs (server.http_addr, default " + node.DefaultHTTPAddr + ")",
		"import-policies": "directory of .cedar policies imported into a node that has none (authz.import_policies)",
		"entities":        "Cedar entity JSON file (authz.entities)",
		"schema":          "Cedar schema file (authz.schema)",
		"log-level":       "debug, info, warn or error (log.level)",
		"log-format":      "text or json (log.format)",
		"pki-dir":         "development PKI directory, shareable by the nodes of one machine (server.pki_dir, default <data-dir>/tls)",
		"node-id":         "this node's id in the cluster, for life (consensus.node_id, default the host name)",
		"raft-addr":       "raft listen address, mutual TLS between nodes (consensus.bind_address, default 127.0.0.1:7400)",
	}
	vals := map[string]*string{}
	for name := range str {
		vals[name] = fs.String(name, "", usage[name])
	}
	plaintext := fs.Bool("plaintext", false, "serve without TLS, on a loopback address only (server.plaintext)")
	join := fs.StringSlice("join", nil, "gRPC address of a cluster member to join through; repeat or comma-separate (consensus.join)")
	sf.set = func(c *node.Config) {
		for name, field := range str {
			if fs.Changed(name) {
				*field(c) = *vals[name]
			}
		}
		if fs.Changed("plaintext") {
			c.Server.Plaintext = *plaintext
		}
		if fs.Changed("join") {
			c.Consensus.Join = *join
		}
	}
	return sf
}

func (sf *serveFlags) load() (node.Config, error) {
	cfg, err := node.LoadConfig(sf.config, os.Environ())
	if err != nil {
		return cfg, err
	}
	sf.set(&cfg)
	return cfg, nil
}

func newServeCmd() *cobra.Command {
	var sf *serveFlags
	cmd := &cobra.Command{
		Use:   "serve",
		Short: "Run a Creto node: every service over gRPC with mTLS",
		Long: `Run a Creto node. With no configuration it keeps its state in ./creto-data,
listens on loopback (gRPC 127.0.0.1:50051, HTTP 127.0.0.1:50080) and, on
first start, creates a development CA with a server certificate and an
operator client certificate, printing their paths.

Configuration comes from a TOML file (--config), then CRETO_<SECTION>_<KEY>
environment variables, then flags. 'creto config print' shows the result.
SIGINT or SIGTERM stops the node gracefully. See docs/server.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.load()
			if err != nil {
				return err
			}
			log, err := node.NewLogger(cfg.Log, cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			n, err := node.Open(ctx, cfg, log)
			if err != nil {
				return err
			}
			return n.Run(ctx)
		},
	}
	sf = addServeFlags(cmd.Flags())
	return cmd
}

func newConfigCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "config",
		Short: "Inspect the node configuration",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	var sf *serveFlags
	print := &cobra.Command{
		Use:   "print",
		Short: "Print the effective configuration: defaults, file, environment and flags applied",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			cfg, err := sf.load()
			if err != nil {
				return err
			}
			b, err := cfg.Effective()
			if err != nil {
				return err
			}
			_, err = fmt.Fprint(cmd.OutOrStdout(), string(b))
			return err
		},
	}
	sf = addServeFlags(print.Flags())
	cmd.AddCommand(print)
	return cmd
}
