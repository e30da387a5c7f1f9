package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/audit"
)

func newAuditCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "audit",
		Short: "Query, prove, verify, export and identify a node's audit log",
		Long: `The audit log is an RFC 6962 Merkle tree with signed C2SP checkpoints
(docs/audit.md). verify and export work offline, on a stopped node's data
directory or on an export; query, prove and checkpoint ask a running node
and check its proofs here; verifier-key does either.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newAuditVerifyCmd(), newAuditExportCmd(), newAuditVerifierKeyCmd(),
		newAuditQueryCmd(), newAuditProveCmd(), newAuditCheckpointCmd())
	return cmd
}

// openNodeStore opens the store of a node's data directory (DIR/kv)
// without creating anything: a mistyped path is bad input, not a new,
// empty, perfectly valid log.
func openNodeStore(dataDir string) (kv.Store, error) {
	dir := filepath.Join(dataDir, "kv")
	if m, _ := filepath.Glob(filepath.Join(dir, "MANIFEST-*")); len(m) == 0 {
		return nil, fmt.Errorf("%s holds no node store (%s/kv): %w", dataDir, dataDir, fs.ErrNotExist)
	}
	st, err := kv.Open(dir)
	if err != nil {
		return nil, fmt.Errorf("open %s (is the node still running?): %w", dir, err)
	}
	return st, nil
}

func dataDirFlag(cmd *cobra.Command, dir *string) {
	cmd.Flags().StringVar(dir, "data-dir", "", "the node's data directory (its store is DIR/kv)")
}

func newAuditVerifyCmd() *cobra.Command {
	var dataDir, keyFile string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "verify [EXPORT]",
		Short: "Check a whole audit log: every record, tree hash and checkpoint",
		Long: `verify checks an audit log end to end: every record is re-encoded and
re-hashed, every stored tree hash compared, every checkpoint's two
signatures checked, and the root at every checkpoint recomputed, which
also proves each checkpoint consistent with every earlier one. It names
the first entry or checkpoint that does not verify.

Give either an export (from 'creto audit export') or --data-dir of a
stopped node. With --verifier-key (the two lines 'creto audit
verifier-key' prints, kept somewhere the node cannot write) the log must
be signed by those keys; without it, the log is checked against the keys
it carries, which proves it intact but not whose it is.

Exit status: 0 the log verifies, 1 it does not (tampered or truncated),
2 bad input (no such directory or file, not an export, bad key file).`,
		Args: cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if (len(args) == 1) == (dataDir != "") {
				return errors.New("give either an export file or --data-dir")
			}
			var trusted *audit.Verifier
			if keyFile != "" {
				var err error
				if trusted, err = readVerifierKeys(keyFile); err != nil {
					return err
				}
			}
			rep, err := verifyAuditLog(cmd.Context(), dataDir, args, trusted)
			if errors.Is(err, audit.ErrVerification) {
				fmt.Fprintln(cmd.OutOrStdout(), "FAILED:", strings.TrimPrefix(err.Error(), "audit: "))
				return &exitError{code: exitFailed}
			}
			if err != nil {
				return err
			}
			return printReport(cmd.OutOrStdout(), rep, asJSON)
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVar(&keyFile, "verifier-key", "", "file with the log's two verifier keys, one per line")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the report as JSON")
	return cmd
}

func verifyAuditLog(ctx context.Context, dataDir string, args []string, trusted *audit.Verifier) (audit.Report, error) {
	if dataDir != "" {
		st, err := openNodeStore(dataDir)
		if err != nil {
			return audit.Report{}, err
		}
		defer st.Close()
		return audit.VerifyStore(ctx, st, trusted)
	}
	f, err := os.Open(args[0])
	if err != nil {
		return audit.Report{}, err
	}
	defer f.Close()
	return audit.VerifyExport(ctx, f, trusted)
}

// readVerifierKeys reads the two lines `creto audit verifier-key` prints.
func readVerifierKeys(path string) (*audit.Verifier, error) {
	b, err := readBounded(path, 64<<10)
	if err != nil {
		return nil, err
	}
	var keys []string
	for line := range strings.Lines(string(b)) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			keys = append(keys, line)
		}
	}
	if len(keys) != 2 {
		return nil, fmt.Errorf("%s: want the two verifier keys 'creto audit verifier-key' prints, found %d lines", path, len(keys))
	}
	v, err := audit.ParseVerifier(keys[0], keys[1])
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return v, nil
}

// readBounded reads a small file, refusing one larger than max.
func readBounded(path string, max int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s: larger than %d bytes", path, max)
	}
	return b, nil
}

func printReport(w io.Writer, rep audit.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			OK          bool   `json:"ok"`
			Origin      string `json:"origin"`
			Entries     int64  `json:"entries"`
			Checkpoints int    `json:"checkpoints"`
			TreeSize    int64  `json:"tree_size"`
			Root        string `json:"root"`
			Uncovered   int64  `json:"uncovered"`
			TrustedKeys bool   `json:"trusted_keys"`
		}{true, rep.Origin, rep.Entries, rep.Checkpoints, rep.Latest.Size, rep.Latest.Root.String(), rep.Uncovered, rep.TrustedKeys})
	}
	fmt.Fprintf(w, "ok: %s: %s, %s; latest checkpoint: size %d, root %s\n",
		rep.Origin, plural(int(rep.Entries), "entry", "entries"), plural(rep.Checkpoints, "checkpoint", "checkpoints"), rep.Latest.Size, rep.Latest.Root)
	if rep.Uncovered > 0 {
		fmt.Fprintf(w, "note: the last %s are not covered by a checkpoint yet\n", plural(int(rep.Uncovered), "entry is", "entries are"))
	}
	if !rep.TrustedKeys {
		fmt.Fprintln(w, "note: checked against the keys the log carries; pass --verifier-key to check whose log it is")
	}
	return nil
}

func newAuditExportCmd() *cobra.Command {
	var dataDir, out string
	cmd := &cobra.Command{
		Use:   "export --data-dir DIR [-o FILE]",
		Short: "Write a stopped node's audit log to a file 'creto audit verify' checks anywhere",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return errors.New("--data-dir is required")
			}
			st, err := openNodeStore(dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			w, commit, err := outputFile(cmd, out)
			if err != nil {
				return err
			}
			stats, err := audit.Export(cmd.Context(), st, w)
			if err = commit(err); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "exported %s and %s\n", plural(int(stats.Entries), "entry", "entries"), plural(stats.Checkpoints, "checkpoint", "checkpoints"))
			return nil
		},
	}
	dataDirFlag(cmd, &dataDir)
	cmd.Flags().StringVarP(&out, "output", "o", "", "write to FILE (created 0600; default standard output)")
	return cmd
}

// outputFile returns where to write: stdout, or a new file that commit
// syncs and closes, or removes if the write failed, so a failed export
// never leaves a file that looks whole.
func outputFile(cmd *cobra.Command, path string) (io.Writer, func(error) error, error) {
	if path == "" {
		return cmd.OutOrStdout(), func(err error) error { return err }, nil
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, nil, fmt.Errorf("%s exists; not overwriting it", path)
	}
	if err != nil {
		return nil, nil, err
	}
	return f, func(err error) error {
		if err == nil {
			err = f.Sync()
		}
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
		return err
	}, nil
}

func newAuditVerifierKeyCmd() *cobra.Command {
	var dataDir string
	var conn *connFlags
	cmd := &cobra.Command{
		Use:   "verifier-key [--data-dir DIR | --addr HOST:PORT ...]",
		Short: "Print the audit log's two checkpoint verifier keys",
		Long: `verifier-key prints the log's public verifier keys, one per line: the
standard Ed25519 signed-note key (golang.org/x/mod/sumdb/note and tlog
tools accept it) and the hybrid Ed25519+ML-DSA-65 key. Keep them where
the node cannot write, and pass them to 'creto audit verify', 'prove'
and 'checkpoint' with --verifier-key.

With --data-dir the keys are read from a stopped node's store; without
it they are asked of the running node the connection flags name, over
TLS checked against --cacert: do that once, when you trust the node,
and keep the file.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if dataDir == "" {
				return onNode(cmd, conn, auditv1.NewAuditServiceClient, func(c auditv1.AuditServiceClient) error {
					resp, err := c.GetVerifierKey(cmd.Context(), &auditv1.GetVerifierKeyRequest{})
					if err != nil {
						return err
					}
					v, err := audit.ParseVerifier(resp.GetEd25519Key(), resp.GetHybridKey())
					if err != nil {
						return fmt.Errorf("the node's verifier keys: %w", err)
					}
					return printVerifierKeys(cmd.OutOrStdout(), v)
				})
			}
			for _, name := range []string{"addr", "cacert", "cert", "key", "token", "plaintext"} {
				if cmd.Flags().Changed(name) {
					return fmt.Errorf("--data-dir reads a stopped node's store; --%s is for asking a running node: give one or the other", name)
				}
			}
			st, err := openNodeStore(dataDir)
			if err != nil {
				return err
			}
			defer st.Close()
			v, err := audit.ReadVerifier(cmd.Context(), st)
			if err != nil {
				return err
			}
			return printVerifierKeys(cmd.OutOrStdout(), v)
		},
	}
	dataDirFlag(cmd, &dataDir)
	conn = addConnFlags(cmd.Flags())
	return cmd
}

// printVerifierKeys prints the two lines readVerifierKeys reads.
func printVerifierKeys(w io.Writer, v *audit.Verifier) error {
	_, err := fmt.Fprintf(w, "%s\n%s\n", v.Ed25519Key(), v.HybridKey())
	return err
}
