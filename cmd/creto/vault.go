package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/proto"

	vaultv1 "github.com/creto-systems/creto/api/creto/vault/v1"
)

// The seal of a node's vault, for operators: `creto vault status | init |
// unseal | seal` call VaultAdminService with the operator's certificate.

func newVaultCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "vault",
		Short: "Initialize, unseal and seal a node's secret vault (operators)",
		Args:  cobra.NoArgs,
		RunE:  func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newVaultStatusCmd(), newVaultInitCmd(), newVaultUnsealCmd(), newVaultSealCmd())
	return cmd
}

func callVault(cmd *cobra.Command, conn *connFlags, call func(vaultv1.VaultAdminServiceClient) (proto.Message, error)) error {
	return callNode(cmd, conn, vaultv1.NewVaultAdminServiceClient, call)
}

func newVaultStatusCmd() *cobra.Command {
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show whether the vault is initialized and sealed, and the unseal progress",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return callVault(cmd, conn, func(c vaultv1.VaultAdminServiceClient) (proto.Message, error) {
				return c.Status(cmd.Context(), &vaultv1.StatusRequest{})
			})
		},
	}
	conn = addConnFlags(cmd.Flags())
	return cmd
}

func newVaultInitCmd() *cobra.Command {
	var conn *connFlags
	var shares, threshold int
	var keyFile bool
	cmd := &cobra.Command{
		Use:   "init [--shares N --threshold T | --key-file]",
		Short: "Create the vault's root key and print the unseal shares, once",
		Long: `init creates the vault's root key. With Shamir shares (the default,
5 shares, any 3 of which unseal) it prints the shares on standard output,
one per line: they are stored nowhere and shown this once, so hand one to
each operator. With --key-file the node's key file wraps the root key
instead, as [vault] unseal = "auto" does on first start.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if keyFile {
				if cmd.Flags().Changed("shares") || cmd.Flags().Changed("threshold") {
					return errors.New("--key-file takes no --shares or --threshold")
				}
				return callVault(cmd, conn, func(c vaultv1.VaultAdminServiceClient) (proto.Message, error) {
					return c.InitWithBackend(cmd.Context(), &vaultv1.InitWithBackendRequest{})
				})
			}
			cc, err := conn.dial()
			if err != nil {
				return err
			}
			defer cc.Close()
			ctx, cancel := conn.context(cmd.Context())
			defer cancel()
			resp, err := vaultv1.NewVaultAdminServiceClient(cc).InitShamir(ctx, &vaultv1.InitShamirRequest{Threshold: int32(threshold), Shares: int32(shares)})
			if err != nil {
				return err
			}
			for _, s := range resp.GetShares() {
				fmt.Fprintln(cmd.OutOrStdout(), s)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "creto: the vault is initialized and sealed. These %d unseal shares are shown once and stored nowhere:\n"+
				"creto: give one to each operator; any %d of them unseal the vault (creto vault unseal).\n", len(resp.GetShares()), threshold)
			return nil
		},
	}
	cmd.Flags().IntVar(&shares, "shares", 5, "unseal shares to make (at most 255)")
	cmd.Flags().IntVar(&threshold, "threshold", 3, "shares needed to unseal")
	cmd.Flags().BoolVar(&keyFile, "key-file", false, "wrap the root key with the node's key file instead of shares")
	conn = addConnFlags(cmd.Flags())
	return cmd
}

func newVaultUnsealCmd() *cobra.Command {
	var conn *connFlags
	var keyFile, reset bool
	cmd := &cobra.Command{
		Use:   "unseal [SHARE...] [--key-file] [--reset]",
		Short: "Submit unseal shares (arguments, or one per line on standard input)",
		Long: `unseal submits Shamir shares towards the quorum and prints the seal
status; the vault unseals once the threshold is reached, over one call or
several (each operator may submit their own). With no arguments the shares
are read from standard input, one per line, so they stay out of the shell
history. --key-file unseals with the node's key file instead; --reset
discards the shares submitted so far.`,
		RunE: func(cmd *cobra.Command, args []string) error {
			switch {
			case reset || keyFile:
				if len(args) > 0 || (reset && keyFile) {
					return errors.New("--reset and --key-file take no shares, and not each other")
				}
				return callVault(cmd, conn, func(c vaultv1.VaultAdminServiceClient) (proto.Message, error) {
					if reset {
						return c.ResetUnseal(cmd.Context(), &vaultv1.ResetUnsealRequest{})
					}
					return c.UnsealWithBackend(cmd.Context(), &vaultv1.UnsealWithBackendRequest{})
				})
			case len(args) == 0:
				var err error
				if args, err = readShares(cmd.InOrStdin()); err != nil {
					return err
				}
			}
			return callVault(cmd, conn, func(c vaultv1.VaultAdminServiceClient) (proto.Message, error) {
				resp, err := c.SubmitUnsealShares(cmd.Context(), &vaultv1.SubmitUnsealSharesRequest{Shares: args})
				return resp.GetStatus(), err
			})
		},
	}
	cmd.Flags().BoolVar(&keyFile, "key-file", false, "unseal with the node's key file")
	cmd.Flags().BoolVar(&reset, "reset", false, "discard the shares submitted so far")
	conn = addConnFlags(cmd.Flags())
	return cmd
}

// maxShareLines bounds what unseal reads from standard input.
const maxShareLines = 255

// readShares reads shares one per line, skipping blank lines.
func readShares(r io.Reader) ([]string, error) {
	var out []string
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if s := strings.TrimSpace(sc.Text()); s != "" {
			if len(out) == maxShareLines {
				return nil, fmt.Errorf("more than %d shares on standard input", maxShareLines)
			}
			out = append(out, s)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("reading shares: %w", err)
	}
	if len(out) == 0 {
		return nil, errors.New("no shares: give them as arguments or one per line on standard input")
	}
	return out, nil
}

func newVaultSealCmd() *cobra.Command {
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "seal",
		Short: "Seal the vault: its keys are wiped and every secret call fails until the next unseal",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return callVault(cmd, conn, func(c vaultv1.VaultAdminServiceClient) (proto.Message, error) {
				if _, err := c.Seal(cmd.Context(), &vaultv1.SealRequest{}); err != nil {
					return nil, err
				}
				return c.Status(cmd.Context(), &vaultv1.StatusRequest{})
			})
		},
	}
	conn = addConnFlags(cmd.Flags())
	return cmd
}
