package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/creto-systems/creto/client"
	"github.com/creto-systems/creto/internal/pki"
	"github.com/creto-systems/creto/node"
)

// connFlags say how a client command reaches a node. Without flags they
// point at a node started in the current directory with the defaults
// (`make run`): its address and its development CA and operator
// certificate under ./creto-data/tls.
type connFlags struct {
	addr, caCert, cert, key, token string
	plaintext                      bool
	timeout                        time.Duration
}

func addConnFlags(fs *pflag.FlagSet) *connFlags {
	c := &connFlags{}
	dev := filepath.Join(node.DefaultDataDir, "tls")
	fs.StringVar(&c.addr, "addr", envOr("CRETO_ADDR", node.DefaultGRPCAddr), "node gRPC address ($CRETO_ADDR)")
	fs.StringVar(&c.caCert, "cacert", envOr("CRETO_CACERT", filepath.Join(dev, pki.CACert)), "CA certificate that signed the node's ($CRETO_CACERT)")
	fs.StringVar(&c.cert, "cert", envOr("CRETO_CERT", filepath.Join(dev, pki.DefaultOperator+".crt")), "operator client certificate ($CRETO_CERT)")
	fs.StringVar(&c.key, "key", envOr("CRETO_KEY", filepath.Join(dev, pki.DefaultOperator+".key")), "operator client key ($CRETO_KEY)")
	fs.StringVar(&c.token, "token", os.Getenv("CRETO_TOKEN"), "NHI token to call as an agent instead of an operator ($CRETO_TOKEN)")
	fs.BoolVar(&c.plaintext, "plaintext", false, "connect without TLS (a node started with --plaintext)")
	fs.DurationVar(&c.timeout, "timeout", 30*time.Second, "deadline for the call")
	return c
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// dial connects to the node. With a token the caller is that agent and
// no client certificate is sent.
func (c *connFlags) dial() (*grpc.ClientConn, error) {
	var opts []grpc.DialOption
	if c.plaintext {
		opts = append(opts, grpc.WithTransportCredentials(insecure.NewCredentials()))
		if c.token != "" {
			return nil, errors.New("--token needs TLS: a bearer token is never sent in plaintext")
		}
	} else {
		ca, err := os.ReadFile(c.caCert)
		if err != nil {
			return nil, fmt.Errorf("--cacert: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(ca) {
			return nil, fmt.Errorf("--cacert %s: no PEM certificate", c.caCert)
		}
		cfg := &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS13}
		if c.token == "" {
			cert, err := tls.LoadX509KeyPair(c.cert, c.key)
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("no operator certificate (%s): pass --cert and --key, or --token to call as an agent", c.cert)
			}
			if err != nil {
				return nil, fmt.Errorf("--cert/--key: %w", err)
			}
			cfg.Certificates = []tls.Certificate{cert}
		} else {
			opts = append(opts, grpc.WithPerRPCCredentials(bearerToken(c.token)))
		}
		opts = append(opts, grpc.WithTransportCredentials(credentials.NewTLS(cfg)))
	}
	return grpc.NewClient(c.addr, opts...)
}

func (c *connFlags) context(parent context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(parent, c.timeout)
}

// bearerToken sends an NHI token with every call.
type bearerToken string

func (b bearerToken) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}

func (bearerToken) RequireTransportSecurity() bool { return true }

// clientConfig builds the Go clients' configuration from a client
// configuration file (none when file is empty) and the connection flags:
// the flags name the node for every service. With needCert, an operator
// call without --token, the operator certificate must be there; otherwise
// it is sent when it is there (or asked for) — a health check needs none.
func (c *connFlags) clientConfig(cmd *cobra.Command, file string, needCert bool) (client.Config, []client.Option, error) {
	var cfg client.Config
	if file != "" {
		var err error
		if cfg, err = client.LoadConfig(file); err != nil {
			return cfg, nil, err
		}
	}
	t := client.Transport{Endpoint: c.addr}
	var opts []client.Option
	switch {
	case c.plaintext:
		if c.token != "" {
			return cfg, nil, errors.New("--token needs TLS: a bearer token is never sent in plaintext")
		}
		t.TLSEnabled = new(bool)
	default:
		if _, err := os.Stat(c.caCert); err != nil {
			return cfg, nil, fmt.Errorf("--cacert: %w", err)
		}
		t.TLSCA = c.caCert
		_, err := os.Stat(c.cert)
		explicit := cmd.Flags().Changed("cert") || cmd.Flags().Changed("key")
		switch {
		case c.token != "":
			opts = append(opts, client.WithBearerToken(c.token))
		case explicit || err == nil:
			t.TLSCert, t.TLSKey = c.cert, c.key
		case needCert && errors.Is(err, fs.ErrNotExist):
			return cfg, nil, fmt.Errorf("no operator certificate (%s): pass --cert and --key, or --token to call as an agent", c.cert)
		case !errors.Is(err, fs.ErrNotExist):
			return cfg, nil, fmt.Errorf("--cert: %w", err)
		}
	}
	cfg.Transport = t
	for _, s := range []*client.ServiceConfig{&cfg.Authz.ServiceConfig, &cfg.NHI.ServiceConfig, &cfg.Memory.ServiceConfig, &cfg.Vault.ServiceConfig,
		&cfg.Storage.ServiceConfig, &cfg.Audit.ServiceConfig, &cfg.Consensus.ServiceConfig} {
		s.Transport = client.Transport{}
	}
	// A command emits no audit events: the audit logger needs no spool,
	// and must not replay a platform's.
	cfg.Audit.SpoolPath = ""
	return cfg, opts, nil
}
