package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/creto-systems/creto/client"
)

// `creto storage`: a node's object store (docs/storage.md) from the
// command line, through the Go storage client, so objects of any size
// stream in bounded memory and a read counts only once the node, which
// checks the version's content hash, has ended the stream cleanly. The caller
// is an agent (--token) or an operator acting as the agent --as names.

func newStorageCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "storage",
		Short: "Store, fetch, list and delete objects in a node's object store; presign URLs",
		Long: `storage calls a node's StorageService with the Go client: as an agent
(--token or $CRETO_TOKEN) or as an operator (the client certificate)
acting for the agent --as names. Objects are BUCKET/KEY: the bucket is up
to the first '/', the key the rest.

Exit status: 0 success, 2 bad input or a call the node refused (not
found, denied, over quota …), with the reason on one line.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return cmd.Help() },
	}
	cmd.AddCommand(newStoragePutCmd(), newStorageGetCmd(), newStorageLsCmd(), newStorageStatCmd(), newStorageRmCmd(), newStoragePresignCmd())
	return cmd
}

// storageFlags are every storage subcommand's: how to reach the node and
// whom to act as.
type storageFlags struct {
	conn           *connFlags
	as, delegation string
}

func addStorageFlags(cmd *cobra.Command) *storageFlags {
	f := &storageFlags{conn: addConnFlags(cmd.Flags())}
	cmd.Flags().StringVar(&f.as, "as", "", "the agent an operator acts for (an agent --token acts as itself)")
	cmd.Flags().StringVar(&f.delegation, "delegation", "", "NHI delegation id granting the access when the object is another agent's")
	return f
}

// client builds a storage client from the connection flags. --timeout
// bounds each message of a stream rather than a whole transfer, so a
// large object is not cut off; unary calls take it as their deadline too.
func (f *storageFlags) client(cmd *cobra.Command) (*client.StorageClient, error) {
	cfg, opts, err := f.conn.clientConfig(cmd, "", true)
	if err != nil {
		return nil, err
	}
	sc := cfg.Storage
	sc.Transport = cfg.Transport
	sc.TimeoutMS = int(min(max(f.conn.timeout, time.Millisecond), 10*time.Minute).Milliseconds())
	// The node's own limit decides how large an object may be.
	sc.MaxObjectSizeBytes = 1 << 40
	return client.NewStorageClient(sc, opts...)
}

// withClient runs call with a storage client and the call's deadline,
// turning its error into the command's one-line message.
func (f *storageFlags) withClient(cmd *cobra.Command, what string, call func(context.Context, *client.StorageClient) error) error {
	c, err := f.client(cmd)
	if err != nil {
		return err
	}
	defer c.Close()
	ctx, cancel := f.conn.context(cmd.Context())
	defer cancel()
	return storageError(what, call(ctx, c))
}

// storageError says in one line what failed: the command and object, the
// kind of error and the node's reason, and what to do for the refusals a
// user can fix.
func storageError(what string, err error) error {
	var e *client.Error
	if !errors.As(err, &e) {
		return err
	}
	msg := e.Kind.Error()
	if e.Message != "" && e.Message != msg {
		msg += ": " + e.Message
	}
	var hint string
	switch {
	case errors.Is(e.Kind, client.ErrUnauthenticated):
		hint = " (check --token, or --cert and --key)"
	case errors.Is(e.Kind, client.ErrUnavailable):
		hint = " (is the node running at --addr?)"
	case strings.Contains(e.Message, "names no agent"):
		hint = " (an operator names the agent with --as)"
	}
	return fmt.Errorf("%s: %s%s", what, strings.ReplaceAll(msg, "\n", " "), hint)
}

// maxRefLength bounds a BUCKET/KEY quoted in a message.
const maxRefLength = 128

// parseRef splits BUCKET/KEY; the node checks each part's characters.
func parseRef(arg string, keyOptional bool) (bucket, key string, err error) {
	bucket, key, _ = strings.Cut(arg, "/")
	if bucket == "" || (key == "" && !keyOptional) {
		want := "BUCKET/KEY"
		if keyOptional {
			want = "BUCKET or BUCKET/PREFIX"
		}
		return "", "", fmt.Errorf("%s is not %s", quoteArg(arg), want)
	}
	return bucket, key, nil
}

// quoteArg quotes a caller-supplied name for a message, bounded.
func quoteArg(s string) string {
	if len(s) > maxRefLength {
		return fmt.Sprintf("%q…", s[:maxRefLength])
	}
	return fmt.Sprintf("%q", s)
}

// classNames are the --class values, in the enum's order.
var classNames = []string{"agent-data", "sandbox-state", "message-payload", "artifact", "sensitive", "compliance"}

// parseClass reads --class; empty means any (for ls).
func parseClass(name string) (client.Classification, error) {
	if name == "" {
		return client.ClassificationUnspecified, nil
	}
	for i, n := range classNames {
		if n == name {
			return client.Classification(i + 1), nil
		}
	}
	return 0, fmt.Errorf("unknown --class %s: want one of %s", quoteArg(name), strings.Join(classNames, ", "))
}

func className(c client.Classification) string {
	if c >= 1 && int(c) <= len(classNames) {
		return classNames[c-1]
	}
	return "unspecified"
}

// objectJSON is how the commands print a version's metadata.
type objectJSON struct {
	Bucket         string            `json:"bucket"`
	Key            string            `json:"key"`
	VersionID      string            `json:"version_id"`
	ContentHash    string            `json:"content_hash"`
	Owner          string            `json:"owner"`
	Classification string            `json:"classification"`
	Size           int64             `json:"size"`
	ContentType    string            `json:"content_type,omitempty"`
	CreatedAt      time.Time         `json:"created_at"`
	ExpiresAt      *time.Time        `json:"expires_at,omitempty"`
	RetainUntil    *time.Time        `json:"retain_until,omitempty"`
	Metadata       map[string]string `json:"metadata,omitempty"`
}

func toJSON(m client.ObjectMetadata) objectJSON {
	opt := func(t time.Time) *time.Time {
		if t.IsZero() {
			return nil
		}
		return &t
	}
	return objectJSON{Bucket: m.Ref.Bucket, Key: m.Ref.Key, VersionID: m.Ref.VersionID, ContentHash: hex.EncodeToString(m.Ref.ContentHash),
		Owner: m.Owner, Classification: className(m.Classification), Size: m.Size, ContentType: m.ContentType,
		CreatedAt: m.CreatedAt, ExpiresAt: opt(m.ExpiresAt), RetainUntil: opt(m.RetainUntil), Metadata: m.Metadata}
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func newStoragePutCmd() *cobra.Command {
	var f *storageFlags
	var class, contentType, owner string
	var ttl time.Duration
	var noExpiry bool
	var meta map[string]string
	cmd := &cobra.Command{
		Use:   "put BUCKET/KEY [FILE|-]",
		Short: "Store a file (or standard input) as a new version of an object; print its metadata as JSON",
		Long: `put streams FILE (or standard input, without FILE or with -) to the node
as a new version of BUCKET/KEY, one chunk at a time whatever its size, and
prints the version's metadata as JSON. Nothing is stored unless the whole
input arrived.

--class is what the object is for (default agent-data); --content-type
defaults to the type of FILE's (or else KEY's) extension. --ttl sets the
version's lifetime (default: the node's default_ttl_days); --no-expiry
keeps it until deleted. --owner stores for another agent, whose key then
encrypts it (with --delegation granting storage:write).`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, key, err := parseRef(args[0], false)
			if err != nil {
				return err
			}
			c, err := parseClass(class)
			if err != nil {
				return err
			}
			req := client.StoreObjectRequest{Requester: f.as, Owner: owner, Ref: client.StorageRef{Bucket: bucket, Key: key},
				Classification: c, Metadata: meta, ContentType: contentType, TTL: ttl, NoExpiry: noExpiry, DelegationID: f.delegation}
			in := cmd.InOrStdin()
			file := "-"
			if len(args) == 2 {
				file = args[1]
			}
			if file != "-" {
				fh, err := os.Open(file)
				if err != nil {
					return err
				}
				defer fh.Close()
				st, err := fh.Stat()
				if err != nil {
					return err
				}
				if !st.Mode().IsRegular() {
					return fmt.Errorf("%s is not a regular file", quoteArg(file))
				}
				// The size lets the node refuse an object over its limits
				// before a byte is sent, and fails a file that changes.
				in, req.Size = fh, st.Size()
			}
			if req.ContentType == "" {
				req.ContentType = typeByExtension(file, key)
			}
			return f.withClient(cmd, "put "+quoteArg(args[0]), func(_ context.Context, sc *client.StorageClient) error {
				// No deadline on the whole transfer: --timeout bounds each
				// message.
				md, err := sc.StoreStream(cmd.Context(), req, in)
				if err != nil {
					return err
				}
				return printJSON(cmd.OutOrStdout(), toJSON(md))
			})
		},
	}
	f = addStorageFlags(cmd)
	cmd.Flags().StringVar(&class, "class", classNames[0], "classification: "+strings.Join(classNames, ", "))
	cmd.Flags().StringVar(&contentType, "content-type", "", "content type (default: from the file's or key's extension)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "the version's lifetime (default: the node's)")
	cmd.Flags().BoolVar(&noExpiry, "no-expiry", false, "keep the version until it is deleted")
	cmd.Flags().StringVar(&owner, "owner", "", "the agent whose object it is (default: the caller)")
	cmd.Flags().StringToStringVar(&meta, "meta", nil, "custom metadata KEY=VALUE (repeatable)")
	return cmd
}

// typeByExtension guesses a content type from the file's extension, or
// the key's when the data comes from standard input.
func typeByExtension(file, key string) string {
	for _, name := range []string{file, key} {
		if t := mime.TypeByExtension(filepath.Ext(name)); t != "" {
			return t
		}
	}
	return ""
}

func newStorageGetCmd() *cobra.Command {
	var f *storageFlags
	var version string
	cmd := &cobra.Command{
		Use:   "get BUCKET/KEY [FILE|-]",
		Short: "Fetch an object's latest (or --version) version into FILE or to standard output",
		Long: `get streams a version of BUCKET/KEY from the node: the latest, or
--version's. With FILE it is written to a temporary file in FILE's
directory, synced, and renamed to FILE only once the whole object arrived
and the node confirmed its content hash (the hash is keyed per owner, so
only the node can check it): FILE is never left partial, and an existing
FILE is untouched when the fetch fails. FILE gets mode 0600.

Without FILE (or with -) the object goes to standard output as it
arrives: on a non-zero exit status what was written is incomplete or
damaged and must be discarded.`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, key, err := parseRef(args[0], false)
			if err != nil {
				return err
			}
			req := client.ObjectRequest{Requester: f.as, Ref: client.StorageRef{Bucket: bucket, Key: key, VersionID: version}, DelegationID: f.delegation}
			return f.withClient(cmd, "get "+quoteArg(args[0]), func(_ context.Context, sc *client.StorageClient) error {
				// No deadline on the whole transfer: --timeout bounds each
				// message.
				r, err := sc.RetrieveStream(cmd.Context(), req)
				if err != nil {
					return err
				}
				defer r.Close()
				if len(args) < 2 || args[1] == "-" {
					_, err := io.Copy(cmd.OutOrStdout(), r)
					return err
				}
				return writeAtomically(args[1], r)
			})
		},
	}
	f = addStorageFlags(cmd)
	cmd.Flags().StringVar(&version, "version", "", "the version id (default: the latest)")
	return cmd
}

// writeAtomically writes r to path through a temporary file beside it,
// synced and renamed only when r ended with io.EOF — for an ObjectReader,
// once the whole object arrived and the node confirmed its hash.
func writeAtomically(path string, r io.Reader) (err error) {
	dir := filepath.Dir(path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(path)+".creto-*")
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
		}
	}()
	if _, err = io.Copy(tmp, r); err != nil {
		return err
	}
	if err = tmp.Sync(); err != nil {
		return err
	}
	if err = tmp.Close(); err != nil {
		return err
	}
	if err = os.Rename(tmp.Name(), path); err != nil {
		return err
	}
	// The rename is durable once the directory is synced too; where a
	// directory cannot be synced the complete file is in place anyway.
	if d, derr := os.Open(dir); derr == nil {
		d.Sync()
		d.Close()
	}
	return nil
}

func newStorageLsCmd() *cobra.Command {
	var f *storageFlags
	var owner, class string
	var limit int
	var allVersions bool
	cmd := &cobra.Command{
		Use:   "ls BUCKET[/PREFIX]",
		Short: "List an owner's objects in a bucket, one JSON object per line",
		Long: `ls lists the latest version of each object in BUCKET (whose key starts
with PREFIX, when given), in key order, one JSON object per line, going
through every page — or the first --limit objects. --all-versions lists
every live version; --class keeps one classification; --owner lists
another agent's (with --delegation granting storage:read).`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, prefix, err := parseRef(args[0], true)
			if err != nil {
				return err
			}
			c, err := parseClass(class)
			if err != nil {
				return err
			}
			if limit < 0 {
				return fmt.Errorf("--limit %d: want 0 (all) or more", limit)
			}
			req := client.ListObjectsRequest{Requester: f.as, Owner: owner, Classification: c, Bucket: bucket, Prefix: prefix,
				AllVersions: allVersions, DelegationID: f.delegation}
			enc := json.NewEncoder(cmd.OutOrStdout())
			return f.withClient(cmd, "ls "+quoteArg(args[0]), func(ctx context.Context, sc *client.StorageClient) error {
				for n := 0; ; {
					req.PageSize = 1000
					if limit > 0 {
						req.PageSize = min(limit-n, 1000)
					}
					page, err := sc.List(ctx, req)
					if err != nil {
						return err
					}
					for _, m := range page.Objects {
						if err := enc.Encode(toJSON(m)); err != nil {
							return err
						}
					}
					n += len(page.Objects)
					if req.PageToken = page.NextPageToken; req.PageToken == "" || (limit > 0 && n >= limit) {
						return nil
					}
				}
			})
		},
	}
	f = addStorageFlags(cmd)
	cmd.Flags().StringVar(&owner, "owner", "", "whose objects (default: the caller's)")
	cmd.Flags().StringVar(&class, "class", "", "only this classification")
	cmd.Flags().IntVar(&limit, "limit", 0, "list at most this many (default: all)")
	cmd.Flags().BoolVar(&allVersions, "all-versions", false, "every live version, not each key's latest")
	return cmd
}

// objectCmd builds stat and rm, which name one object and perhaps a
// version.
func objectCmd(use, short string, run func(context.Context, *cobra.Command, *client.StorageClient, client.ObjectRequest) error) *cobra.Command {
	var f *storageFlags
	var version string
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			bucket, key, err := parseRef(args[0], false)
			if err != nil {
				return err
			}
			req := client.ObjectRequest{Requester: f.as, Ref: client.StorageRef{Bucket: bucket, Key: key, VersionID: version}, DelegationID: f.delegation}
			what := strings.Fields(use)[0] + " " + quoteArg(args[0])
			return f.withClient(cmd, what, func(ctx context.Context, sc *client.StorageClient) error {
				return run(ctx, cmd, sc, req)
			})
		},
	}
	f = addStorageFlags(cmd)
	cmd.Flags().StringVar(&version, "version", "", "the version id (default: the latest; for rm: every version)")
	return cmd
}

func newStorageStatCmd() *cobra.Command {
	return objectCmd("stat BUCKET/KEY", "Print a version's metadata as JSON",
		func(ctx context.Context, cmd *cobra.Command, sc *client.StorageClient, req client.ObjectRequest) error {
			md, err := sc.GetMetadata(ctx, req)
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), toJSON(md))
		})
}

func newStorageRmCmd() *cobra.Command {
	return objectCmd("rm BUCKET/KEY", "Delete one version (--version) or every version of an object",
		func(ctx context.Context, cmd *cobra.Command, sc *client.StorageClient, req client.ObjectRequest) error {
			if err := sc.Delete(ctx, req); err != nil {
				return err
			}
			which := "every version"
			if req.Ref.VersionID != "" {
				which = "version " + quoteArg(req.Ref.VersionID)
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "creto: deleted %s of %s\n", which, quoteArg(req.Ref.Bucket+"/"+req.Ref.Key))
			return nil
		})
}

func newStoragePresignCmd() *cobra.Command {
	var f *storageFlags
	var version, class, contentType, owner string
	var ttl time.Duration
	var maxSize int64
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "presign get|put BUCKET/KEY",
		Short: "Print a time-limited URL that lets anyone holding it GET a version or PUT one upload",
		Long: `presign asks the node for a URL on its HTTP listener that lets whoever
holds it, until it expires, GET one version of BUCKET/KEY (the latest, or
--version's) or PUT one new version of it. It prints the URL alone on
standard output, for curl "$(creto storage presign get b/k)", and the
method and expiry on standard error; --json prints them all as JSON.

The URL is a bearer credential: keep it out of logs. --ttl is its
lifetime (default: the node's, 15 minutes). For put: --class (default
agent-data), --content-type the upload must send, --max-size its most
bytes, --owner the new version's owner.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			req := client.PresignRequest{Requester: f.as, TTL: ttl, DelegationID: f.delegation}
			switch args[0] {
			case "get":
				req.Op = client.PresignGet
				for _, flag := range []string{"class", "content-type", "max-size", "owner"} {
					if cmd.Flags().Changed(flag) {
						return fmt.Errorf("--%s is for presign put", flag)
					}
				}
			case "put":
				req.Op, req.ContentType, req.MaxSize, req.Owner = client.PresignPut, contentType, maxSize, owner
				if version != "" {
					return errors.New("--version is for presign get")
				}
				var err error
				if req.Classification, err = parseClass(class); err != nil {
					return err
				}
			default:
				return fmt.Errorf("%s: want get or put", quoteArg(args[0]))
			}
			bucket, key, err := parseRef(args[1], false)
			if err != nil {
				return err
			}
			req.Ref = client.StorageRef{Bucket: bucket, Key: key, VersionID: version}
			return f.withClient(cmd, "presign "+args[0]+" "+quoteArg(args[1]), func(ctx context.Context, sc *client.StorageClient) error {
				u, err := sc.PresignedURL(ctx, req)
				if err != nil {
					return err
				}
				url := string(u.URL.Expose())
				if asJSON {
					return printJSON(cmd.OutOrStdout(), struct {
						Method    string    `json:"method"`
						URL       string    `json:"url"`
						ExpiresAt time.Time `json:"expires_at"`
						Bucket    string    `json:"bucket"`
						Key       string    `json:"key"`
						VersionID string    `json:"version_id,omitempty"`
					}{u.Method, url, u.ExpiresAt, u.Ref.Bucket, u.Ref.Key, u.Ref.VersionID})
				}
				fmt.Fprintf(cmd.ErrOrStderr(), "creto: %s, expires %s\n", u.Method, u.ExpiresAt.UTC().Format(time.RFC3339))
				_, err = fmt.Fprintln(cmd.OutOrStdout(), url)
				return err
			})
		},
	}
	f = addStorageFlags(cmd)
	cmd.Flags().StringVar(&version, "version", "", "get: the version id (default: the latest)")
	cmd.Flags().DurationVar(&ttl, "ttl", 0, "the URL's lifetime (default: the node's)")
	cmd.Flags().StringVar(&class, "class", classNames[0], "put: the new version's classification")
	cmd.Flags().StringVar(&contentType, "content-type", "", "put: the Content-Type the upload must send (default: any)")
	cmd.Flags().Int64Var(&maxSize, "max-size", 0, "put: the upload's most bytes (default: the node's limit)")
	cmd.Flags().StringVar(&owner, "owner", "", "put: the new version's owner (default: the caller)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print the method, URL, expiry and object as JSON")
	return cmd
}
