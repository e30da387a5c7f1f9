package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/grpc"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/proto"

	authzv1 "github.com/creto-systems/creto/api/creto/authz/v1"
)

// extension settings shared by register and update.
type extSettings struct {
	config, onError string
	grants          []string
}

func (s *extSettings) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&s.config, "config", "", "file handed to the module's creto_init (usually JSON)")
	cmd.Flags().StringSliceVar(&s.grants, "grant", nil, "capability to grant (repeatable, or comma-separated)")
	cmd.Flags().StringVar(&s.onError, "on-error", "", `"deny" forces the extension's failures to deny`)
}

func (s *extSettings) read(path string) (module, config []byte, err error) {
	if module, err = readModule(path); err != nil {
		return nil, nil, err
	}
	if s.config != "" {
		if config, err = os.ReadFile(s.config); err != nil {
			return nil, nil, fmt.Errorf("--config: %w", err)
		}
	}
	return module, config, nil
}

func newExtRegisterCmd() *cobra.Command {
	var s extSettings
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "register FILE.wasm",
		Short: "Register an extension with a running node (it takes effect at once and survives restarts)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, config, err := s.read(args[0])
			if err != nil {
				return err
			}
			return callAuthz(cmd, conn, func(c authzv1.AuthorizationServiceClient) (proto.Message, error) {
				return c.RegisterExtension(cmd.Context(), &authzv1.RegisterExtensionRequest{Module: module, Config: config, Grants: s.grants, OnError: s.onError})
			})
		},
	}
	s.add(cmd)
	conn = addConnFlags(cmd.Flags())
	return cmd
}

func newExtUpdateCmd() *cobra.Command {
	var s extSettings
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "update NAME FILE.wasm",
		Short: "Replace a registered extension atomically",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			module, config, err := s.read(args[1])
			if err != nil {
				return err
			}
			return callAuthz(cmd, conn, func(c authzv1.AuthorizationServiceClient) (proto.Message, error) {
				return c.UpdateExtension(cmd.Context(), &authzv1.UpdateExtensionRequest{Name: args[0], Module: module, Config: config, Grants: s.grants, OnError: s.onError})
			})
		},
	}
	s.add(cmd)
	conn = addConnFlags(cmd.Flags())
	return cmd
}

func newExtUnregisterCmd() *cobra.Command {
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "unregister NAME",
		Short: "Remove a registered extension",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return callAuthz(cmd, conn, func(c authzv1.AuthorizationServiceClient) (proto.Message, error) {
				return c.UnregisterExtension(cmd.Context(), &authzv1.UnregisterExtensionRequest{Name: args[0]})
			})
		},
	}
	conn = addConnFlags(cmd.Flags())
	return cmd
}

func newExtListCmd() *cobra.Command {
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List a node's registered extensions with their counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return callAuthz(cmd, conn, func(c authzv1.AuthorizationServiceClient) (proto.Message, error) {
				return c.ListExtensions(cmd.Context(), &authzv1.ListExtensionsRequest{})
			})
		},
	}
	conn = addConnFlags(cmd.Flags())
	return cmd
}

// callAuthz runs one call against the node and prints the response as
// JSON. A refused call is bad input (exit 2) with the node's message.
func callAuthz(cmd *cobra.Command, conn *connFlags, call func(authzv1.AuthorizationServiceClient) (proto.Message, error)) error {
	return callNode(cmd, conn, authzv1.NewAuthorizationServiceClient, call)
}

// callNode runs one call of a service's client against the node and
// prints the response as JSON.
func callNode[C any](cmd *cobra.Command, conn *connFlags, client func(grpc.ClientConnInterface) C, call func(C) (proto.Message, error)) error {
	return onNode(cmd, conn, client, func(c C) error {
		resp, err := call(c)
		if err != nil {
			return err
		}
		return printProto(cmd.OutOrStdout(), resp)
	})
}

// onNode runs fn with a service's client connected to the node; the
// command's context carries the call deadline (--timeout) meanwhile.
func onNode[C any](cmd *cobra.Command, conn *connFlags, client func(grpc.ClientConnInterface) C, fn func(C) error) error {
	cc, err := conn.dial()
	if err != nil {
		return err
	}
	defer cc.Close()
	ctx, cancel := conn.context(cmd.Context())
	defer cancel()
	cmd.SetContext(ctx)
	return fn(client(cc))
}

func printProto(w io.Writer, m proto.Message) error {
	b, err := protojson.MarshalOptions{EmitUnpopulated: false}.Marshal(m)
	if err != nil {
		return err
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return err
	}
	out, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintln(w, strings.TrimSpace(string(out)))
	return err
}
