package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"google.golang.org/protobuf/encoding/protojson"
	"google.golang.org/protobuf/types/known/timestamppb"

	auditv1 "github.com/creto-systems/creto/api/creto/audit/v1"
	"github.com/creto-systems/creto/internal/errfmt"
	"github.com/creto-systems/creto/services/audit"
)

// The audit commands that ask a running node (AuditService): query reads
// records, prove and checkpoint fetch proofs and checkpoints and check
// them here, with the functions `creto audit verify` uses offline, so the
// node's word is never taken for its own honesty.

// maxQueryPage is the page size query asks for: the most the node gives.
const maxQueryPage = 1000

func newAuditQueryCmd() *cobra.Command {
	var conn *connFlags
	var q auditv1.QueryRequest
	var outcomes []string
	var since, until string
	var limit int
	cmd := &cobra.Command{
		Use:   "query [--who ID] [--what ACTION] [--resource RES] [--outcome O] [--since T] [--until T] [--limit N]",
		Short: "Print a running node's audit records that match, one JSON object per line",
		Long: `query prints the records of a running node's audit log that match every
filter given, in log order, one JSON object per line (pipe it into jq).
It follows the node's pages until the last, or until --limit records.

--since and --until take an RFC 3339 time (2026-05-01T09:00:00Z) or a
duration that far back from now (90m, 24h, "1h ago"); --until is
exclusive. --outcome is success, failure, denied or timeout, and may be
repeated. An operator reads every record; an agent (--token) reads its
own, and --who may name only itself.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if limit < 0 {
				return fmt.Errorf("--limit %d: want 0 (no limit) or more", limit)
			}
			now := time.Now()
			var err error
			if q.Since, err = parseWhen("--since", since, now); err != nil {
				return err
			}
			if q.Until, err = parseWhen("--until", until, now); err != nil {
				return err
			}
			if q.Outcomes, err = parseOutcomes(outcomes); err != nil {
				return err
			}
			return onNode(cmd, conn, auditv1.NewAuditServiceClient, func(c auditv1.AuditServiceClient) error {
				return queryAll(cmd, c, &q, limit)
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&q.Who, "who", "", "records of this acting identity (an agent id, or Operator::\"name\")")
	f.StringVar(&q.What, "what", "", "records of this action or event")
	f.StringVar(&q.Resource, "resource", "", `records about this resource, in Cedar form (Doc::"q3")`)
	f.StringVar(&q.Source, "source", "", `records from this component ("authz", "nhi", "vault", "api", …)`)
	f.StringSliceVar(&outcomes, "outcome", nil, "records with this outcome: success, failure, denied or timeout (repeatable)")
	f.StringVar(&since, "since", "", `records at or after this time (RFC 3339, or a duration ago: "1h")`)
	f.StringVar(&until, "until", "", "records before this time (RFC 3339, or a duration ago)")
	f.IntVar(&limit, "limit", 0, "print at most N records (0: all)")
	conn = addConnFlags(f)
	return cmd
}

// queryAll prints every matching record, page after page.
func queryAll(cmd *cobra.Command, c auditv1.AuditServiceClient, q *auditv1.QueryRequest, limit int) error {
	out := cmd.OutOrStdout()
	var line bytes.Buffer
	for printed := 0; limit == 0 || printed < limit; {
		q.PageSize = maxQueryPage
		if limit > 0 {
			q.PageSize = int32(min(limit-printed, maxQueryPage))
		}
		resp, err := c.Query(cmd.Context(), q)
		if err != nil {
			return err
		}
		for _, r := range resp.GetRecords() {
			if printed == limit && limit > 0 {
				return nil
			}
			// Every field, zero or not, so that .index is there for entry
			// 0 and jq filters need no defaults.
			b, err := protojson.MarshalOptions{EmitUnpopulated: true}.Marshal(r)
			if err != nil {
				return err
			}
			// protojson varies its spacing on purpose; a line per record
			// must not.
			line.Reset()
			if err := json.Compact(&line, b); err != nil {
				return err
			}
			line.WriteByte('\n')
			if _, err := out.Write(line.Bytes()); err != nil {
				return err
			}
			printed++
		}
		if resp.GetNextPageToken() == "" {
			return nil
		}
		q.PageToken = resp.GetNextPageToken()
	}
	return nil
}

// parseWhen reads --since or --until: an RFC 3339 time, or a duration
// before now ("90m", "1h ago"). Empty is unbounded.
func parseWhen(flag, s string, now time.Time) (*timestamppb.Timestamp, error) {
	if s == "" {
		return nil, nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return timestamppb.New(t), nil
	}
	if d, err := time.ParseDuration(strings.TrimSpace(strings.TrimSuffix(s, "ago"))); err == nil && d >= 0 {
		return timestamppb.New(now.Add(-d)), nil
	}
	return nil, fmt.Errorf("%s %s: want an RFC 3339 time (2026-05-01T09:00:00Z) or a duration ago (90m, 24h)", flag, errfmt.Quote(s))
}

// parseOutcomes maps --outcome names to the API's values.
func parseOutcomes(names []string) ([]auditv1.Outcome, error) {
	var out []auditv1.Outcome
	for _, n := range names {
		v, ok := auditv1.Outcome_value["OUTCOME_"+strings.ToUpper(strings.TrimSpace(n))]
		if !ok || v == int32(auditv1.Outcome_OUTCOME_UNSPECIFIED) {
			return nil, fmt.Errorf("--outcome %s: want success, failure, denied or timeout", errfmt.Quote(n))
		}
		out = append(out, auditv1.Outcome(v))
	}
	return out, nil
}

// verifierFlag is --verifier-key: the keys to check the node's
// checkpoints with. Without it the node's own keys are used, which
// proves a checkpoint intact but not that it is the log it was: a
// warning says so.
type verifierFlag struct{ file string }

func (v *verifierFlag) add(cmd *cobra.Command) {
	cmd.Flags().StringVar(&v.file, "verifier-key", "", "file with the log's two verifier keys ('creto audit verifier-key' prints them); default: ask the node")
}

// load reads the pinned keys, or asks the node for its keys and warns.
func (v *verifierFlag) load(cmd *cobra.Command, c auditv1.AuditServiceClient) (*audit.Verifier, error) {
	if v.file != "" {
		return readVerifierKeys(v.file)
	}
	resp, err := c.GetVerifierKey(cmd.Context(), &auditv1.GetVerifierKeyRequest{})
	if err != nil {
		return nil, err
	}
	ver, err := audit.ParseVerifier(resp.GetEd25519Key(), resp.GetHybridKey())
	if err != nil {
		return nil, fmt.Errorf("the node's verifier keys: %w", err)
	}
	fmt.Fprintln(cmd.ErrOrStderr(), "creto: warning: no --verifier-key: checking against the keys the node sent now (trust on first use), "+
		"which proves the answer intact, not that it is the log you knew; save 'creto audit verifier-key' once and pass it")
	return ver, nil
}

// failed reports a verification failure on standard output, as `verify`
// does, and exits 1.
func failed(w io.Writer, what string, err error) error {
	msg := strings.TrimPrefix(err.Error(), "audit: ")
	msg = strings.TrimPrefix(msg, "open checkpoint: audit: ")
	fmt.Fprintf(w, "FAILED: %s: %s\n", what, msg)
	return &exitError{code: exitFailed}
}

func newAuditProveCmd() *cobra.Command {
	var conn *connFlags
	var keys verifierFlag
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "prove INDEX [--verifier-key FILE] [--json]",
		Short: "Prove a record is in a running node's audit log, checking the proof here",
		Long: `prove fetches the record at INDEX with its inclusion proof and the latest
signed checkpoint (brought up to date to cover it), and checks here that
both checkpoint signatures are the log's and that the proof leads from
the record to the checkpoint's root. It prints what was proven.

Pin the log's keys with --verifier-key (save 'creto audit verifier-key'
once, somewhere the node cannot write); without it the node's keys are
fetched and used, with a warning: that proves the answer intact, not
that the log is the one you knew.

Exit status: 0 proven, 1 the proof or checkpoint does not verify,
2 bad input or a refusal (no such record, no access, bad key file).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			index, err := strconv.ParseUint(args[0], 10, 63)
			if err != nil {
				return fmt.Errorf("INDEX %s: want a record's index, 0 or more", errfmt.Quote(args[0]))
			}
			return onNode(cmd, conn, auditv1.NewAuditServiceClient, func(c auditv1.AuditServiceClient) error {
				resp, err := c.GetProof(cmd.Context(), &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_INCLUSION, Index: index, WithLeaf: true})
				if err != nil {
					return err
				}
				v, err := keys.load(cmd, c)
				if err != nil {
					return err
				}
				what := fmt.Sprintf("entry %d", index)
				p, err := audit.ProofFromProto(resp.GetProof())
				if err != nil {
					return failed(cmd.OutOrStdout(), what, err)
				}
				// The proof is of the kind and index asked, whatever the
				// node says.
				p.Kind, p.Index = audit.Inclusion, index
				cp, err := audit.VerifyProof(v, audit.VerifyRequest{Proof: p})
				if err != nil {
					return failed(cmd.OutOrStdout(), what, err)
				}
				rec, err := audit.DecodeLeaf(p.Leaf)
				if err != nil {
					return failed(cmd.OutOrStdout(), what, err)
				}
				return printProven(cmd.OutOrStdout(), cp, rec, keys.file != "", asJSON)
			})
		},
	}
	keys.add(cmd)
	cmd.Flags().BoolVar(&asJSON, "json", false, "print what was proven as JSON")
	conn = addConnFlags(cmd.Flags())
	return cmd
}

func printProven(w io.Writer, cp audit.Checkpoint, rec audit.Record, pinned, asJSON bool) error {
	keys := "the keys the node sent (not pinned)"
	if pinned {
		keys = "the pinned verifier keys"
	}
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(struct {
			OK         bool         `json:"ok"`
			Origin     string       `json:"origin"`
			TreeSize   int64        `json:"tree_size"`
			Root       string       `json:"root"`
			PinnedKeys bool         `json:"pinned_keys"`
			Record     audit.Record `json:"record"`
		}{true, cp.Origin, cp.Size, cp.Root.String(), pinned, rec})
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "ok: entry %d is in %s's log of %s, root %s, checkpoint signed with %s\nrecord: %s\n",
		rec.Index, cp.Origin, plural(int(cp.Size), "entry", "entries"), cp.Root, keys, b)
	return err
}

func newAuditCheckpointCmd() *cobra.Command {
	var conn *connFlags
	var keys verifierFlag
	var oldFile string
	cmd := &cobra.Command{
		Use:   "checkpoint [--verifier-key FILE] [--consistent-with OLDFILE]",
		Short: "Print a running node's latest signed checkpoint; prove it extends an earlier one",
		Long: `checkpoint prints the log's latest signed checkpoint, the C2SP signed
note, exactly as the node signed it: save it, and a later
'creto audit checkpoint --consistent-with' proves the log only grew since.

With --verifier-key its two signatures are checked first. With
--consistent-with OLDFILE (a checkpoint saved earlier) the command
fetches a consistency proof from OLDFILE's tree to this one and checks it
here: the log then holds every record it held at OLDFILE, unchanged.
Both need the log's keys: --verifier-key, or the node's own, with a
warning.

Exit status: 0 printed (and verified), 1 a signature or the consistency
proof does not verify, or the node's log is smaller than OLDFILE's,
2 bad input or a refusal (an empty log has no checkpoint).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var old []byte
			if oldFile != "" {
				var err error
				if old, err = readBounded(oldFile, 64<<10); err != nil {
					return fmt.Errorf("--consistent-with: %w", err)
				}
			}
			return onNode(cmd, conn, auditv1.NewAuditServiceClient, func(c auditv1.AuditServiceClient) error {
				resp, err := c.GetCheckpoint(cmd.Context(), &auditv1.GetCheckpointRequest{})
				if err != nil {
					return err
				}
				note := []byte(resp.GetSignedNote())
				if keys.file != "" || old != nil {
					if err := checkCheckpoint(cmd, c, &keys, note, old, oldFile); err != nil {
						return err
					}
				}
				_, err = cmd.OutOrStdout().Write(note)
				return err
			})
		},
	}
	keys.add(cmd)
	cmd.Flags().StringVar(&oldFile, "consistent-with", "", "a checkpoint saved earlier: prove the log extends it")
	conn = addConnFlags(cmd.Flags())
	return cmd
}

// checkCheckpoint verifies the node's latest checkpoint and, given an
// older one, that the log only grew from it.
func checkCheckpoint(cmd *cobra.Command, c auditv1.AuditServiceClient, keys *verifierFlag, note, old []byte, oldFile string) error {
	out := cmd.OutOrStdout()
	v, err := keys.load(cmd, c)
	if err != nil {
		return err
	}
	cp, err := v.Open(note)
	if err != nil {
		return failed(out, "the latest checkpoint", err)
	}
	if old == nil {
		return nil
	}
	// The saved checkpoint is the user's input: one this log's keys did
	// not sign is the wrong file, not a fault of the node.
	oc, err := v.Open(old)
	if err != nil {
		return fmt.Errorf("--consistent-with %s: not a checkpoint of %s signed by its keys: %s", oldFile, cp.Origin,
			strings.TrimPrefix(strings.TrimPrefix(err.Error(), "audit: open checkpoint: "), "audit: "))
	}
	what := fmt.Sprintf("consistency from size %d to %d", oc.Size, cp.Size)
	switch {
	case oc.Size > cp.Size:
		return failed(out, what, errors.New("the node's latest checkpoint is smaller than the saved one: the log was rolled back or forked"))
	case oc.Size == 0:
		// Every log extends the empty one, and there is nothing to prove.
		return nil
	}
	resp, err := c.GetProof(cmd.Context(), &auditv1.GetProofRequest{Kind: auditv1.ProofKind_PROOF_KIND_CONSISTENCY,
		OldSize: uint64(oc.Size), TreeSize: uint64(cp.Size)})
	if err != nil {
		return err
	}
	p, err := audit.ProofFromProto(resp.GetProof())
	if err != nil {
		return failed(out, what, err)
	}
	// Checked as a consistency proof between the checkpoints in hand, not
	// the proof's own.
	p.Kind, p.OldSize, p.TreeSize = audit.Consistency, uint64(oc.Size), uint64(cp.Size)
	if _, err := audit.VerifyProof(v, audit.VerifyRequest{Proof: p, Checkpoint: note, OldCheckpoint: old}); err != nil {
		return failed(out, what, err)
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "creto: consistent: %s's log of %s (root %s) extends the one of %s (root %s)\n",
		cp.Origin, plural(int(cp.Size), "entry", "entries"), cp.Root, plural(int(oc.Size), "entry", "entries"), oc.Root)
	return nil
}
