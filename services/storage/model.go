package storage

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"maps"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/creto-systems/creto/internal/agentid"
)

// Classification is what an object is for (seed §3.2 Classification). It
// is required on every object: compliance retention hangs on it, so it is
// never guessed.
type Classification int32

// Classifications, numbered as in the seed's protobuf enum.
const (
	ClassificationUnspecified Classification = 0
	// AgentData is general agent data.
	AgentData Classification = 1
	// SandboxState is a sandbox checkpoint.
	SandboxState Classification = 2
	// MessagePayload is a large message payload.
	MessagePayload Classification = 3
	// Artifact is a build artifact or log.
	Artifact Classification = 4
	// Sensitive objects are encrypted like every object (a fresh data key
	// wrapped to the owner's post-quantum hybrid key) and additionally
	// never leave through a presigned GET URL, a bearer link that anyone
	// holding it could replay.
	Sensitive Classification = 5
	// Compliance objects are retained for compliance_retention_days from
	// the moment they become Compliance: no one can delete them, shorten
	// their life or change them until then.
	Compliance Classification = 6
)

var classificationNames = [...]string{
	ClassificationUnspecified: "unspecified",
	AgentData:                 "agent_data",
	SandboxState:              "sandbox_state",
	MessagePayload:            "message_payload",
	Artifact:                  "artifact",
	Sensitive:                 "sensitive",
	Compliance:                "compliance",
}

// String returns the lower-case name ("agent_data"), or a placeholder for
// a value outside the enum.
func (c Classification) String() string {
	if c >= 0 && int(c) < len(classificationNames) {
		return classificationNames[c]
	}
	return fmt.Sprintf("classification(%d)", int32(c))
}

// ParseClassification reads the name String writes.
func ParseClassification(s string) (Classification, error) {
	for c, n := range classificationNames {
		if n == s && c != int(ClassificationUnspecified) {
			return Classification(c), nil
		}
	}
	return 0, invalid("unknown classification %s", quote(s))
}

func (c Classification) valid() bool { return c >= AgentData && c <= Compliance }

// StorageRef names one object, or one version of it (seed §3.2
// StorageRef). An empty VersionID means the latest live version. A
// non-empty ContentHash must match the version the reference resolves
// to, or the call fails with ErrHashMismatch: it is how a caller asks for
// exactly the bytes it was given a reference to.
type StorageRef struct {
	Bucket    string
	Key       string
	VersionID string
	// ContentHash is the object's 32-byte keyed BLAKE3 content hash (see
	// docs/storage.md on why it is keyed per owner).
	ContentHash []byte
}

// String formats the reference for messages, quoting and bounding the
// caller-supplied parts.
func (r StorageRef) String() string {
	s := quote(r.Bucket) + "/" + quote(r.Key)
	if r.VersionID != "" {
		s += "@" + quote(r.VersionID)
	}
	return s
}

// ObjectMetadata describes one version (seed §3.2 ObjectMetadata). Values
// the service returns are copies.
type ObjectMetadata struct {
	Ref            StorageRef
	Owner          string
	Classification Classification
	ContentType    string
	SizeBytes      int64
	CreatedAt      time.Time
	// ExpiresAt is when the version stops being visible; zero means never.
	ExpiresAt time.Time
	// RetainUntil is when compliance retention ends; zero means the
	// version is not retained.
	RetainUntil time.Time
	// ContentHash equals Ref.ContentHash.
	ContentHash    []byte
	CustomMetadata map[string]string
}

// Object is a retrieved object held in memory (the seed's Object); for
// large objects use RetrieveStream.
type Object struct {
	Metadata ObjectMetadata
	Data     []byte
}

// EncryptionConfig overrides the configured algorithms for one object
// (seed §3.2 EncryptionConfig). Zero fields take the configuration's.
type EncryptionConfig struct {
	// Algorithm is the data AEAD: "aes-256-gcm" or "chacha20-poly1305".
	Algorithm string
	// KeyWrapAlgorithm is the KEM the data key is wrapped with. It must
	// be the owner's NHI key algorithm ("x-wing"): the key is wrapped to
	// that key and nothing else.
	KeyWrapAlgorithm string
	// CustomerKeyID names a customer-managed key. It is not supported:
	// data keys are wrapped to the owner's identity key only.
	CustomerKeyID string
}

// NoExpiry, as a TTL, stores a version that never expires, where a zero
// TTL takes default_ttl_days. (The seed's protobuf says a zero ttl means
// no expiry while its config has a 90-day default; an adapter maps a ttl
// that is present and zero to NoExpiry and an absent one to zero.)
const NoExpiry time.Duration = -1

// StoreRequest describes an object to store (seed StoreRequest, less the
// data, which Store reads from an io.Reader).
type StoreRequest struct {
	// Bucket defaults to Config.DefaultBucket.
	Bucket string
	// Key names the object in its bucket; empty means a generated key.
	// Storing to an existing key adds a version.
	Key string
	// Owner is the agent the object belongs to and whose key encrypts it;
	// empty means the caller. An existing object keeps its owner: a new
	// version must name the same one.
	Owner          string
	Classification Classification
	ContentType    string
	Metadata       map[string]string
	// TTL is the version's lifetime: 0 means default_ttl_days, NoExpiry
	// means never. A Compliance version never takes the default, and its
	// TTL must outlast its retention.
	TTL time.Duration
	// Size, when positive, is the exact length of the body: a larger one
	// is refused before anything is read, and a body of another length
	// fails the store.
	Size       int64
	Encryption *EncryptionConfig
}

// UpdateMetadataRequest changes one version's metadata in place.
type UpdateMetadataRequest struct {
	Ref StorageRef
	// Metadata, when not nil, replaces the custom metadata (an empty map
	// clears it).
	Metadata map[string]string
	// ContentType, when not nil, replaces the content type.
	ContentType *string
	// Classification, when not unspecified, replaces the classification.
	// Becoming Compliance starts retention; leaving it is refused while
	// retained.
	Classification Classification
	// TTL, when not zero, sets the expiry to now + TTL, or removes it
	// (NoExpiry). It may not end before a retention does.
	TTL time.Duration
}

// ListRequest selects objects of one owner (seed list(owner,
// classification, pagination)).
type ListRequest struct {
	// Owner defaults to the caller.
	Owner string
	// Classification, when set, keeps only versions of that class.
	Classification Classification
	// Bucket and Prefix, when set, narrow the listing to one bucket and
	// keys starting with Prefix (Prefix needs Bucket).
	Bucket, Prefix string
	// AllVersions lists every live version, newest first per key;
	// otherwise only each key's latest live version.
	AllVersions bool
	// Cursor continues a listing from ListResponse.NextCursor.
	Cursor string
	// Limit caps the page: 0 means 100, at most 1000.
	Limit int
}

// ListResponse is one page, in (bucket, key) order.
type ListResponse struct {
	Objects []ObjectMetadata
	// NextCursor is empty on the last page.
	NextCursor string
}

// Caller is who makes a call: the authenticated agent and, when it acts
// for another agent, the NHI delegation it acts through.
type Caller struct {
	// Agent is the authenticated agent id (from a resolved NHI token).
	Agent string
	// Delegation is the id (hex) of the last link of a delegation chain
	// whose root is the object's owner and whose principal is Agent; empty
	// when the agent acts on its own objects.
	Delegation string
}

// Permissions a delegation grants for storage (docs/storage.md).
const (
	// PermRead: Retrieve, RetrieveStream, GetMetadata, List and presigned
	// GET URLs.
	PermRead = "storage:read"
	// PermWrite: Store (new objects and versions), UpdateMetadata and
	// presigned PUT URLs.
	PermWrite = "storage:write"
	// PermDelete: Delete.
	PermDelete = "storage:delete"
)

// Input limits.
const (
	maxIDLength        = 128
	maxBucketLength    = 63
	maxKeyLength       = 1024
	maxContentType     = 255
	maxMetadataEntries = 32
	maxMetadataKey     = 128
	maxMetadataValue   = 1024
	maxMetadataTotal   = 8 << 10
	versionIDLength    = 32
	contentHashSize    = 32
	defaultListLimit   = 100
	maxListLimit       = 1000
)

// validateAgent checks an agent id the way NHI does: printable UTF-8
// without spaces, so it is safe in store keys and messages.
func validateAgent(what, id string) error {
	if err := agentid.Check(id, maxIDLength); err != nil {
		return invalid("%s %v", what, err)
	}
	return nil
}

// validateBucket allows S3's safe characters: lower-case letters, digits,
// '.', '-' and '_', starting with a letter or digit.
func validateBucket(b string) error {
	if b == "" || len(b) > maxBucketLength {
		return invalid("bucket must be 1 to %d bytes", maxBucketLength)
	}
	for i, r := range b {
		alnum := r >= 'a' && r <= 'z' || r >= '0' && r <= '9'
		if !alnum && (i == 0 || r != '.' && r != '-' && r != '_') {
			return invalid("bucket %s: use lower-case letters, digits, '.', '-' and '_', starting with a letter or digit", quote(b))
		}
	}
	return nil
}

// validateKey allows any valid UTF-8 without control characters, so a key
// can never carry the NUL that separates store-key fields.
func validateKey(k string) error {
	if k == "" || len(k) > maxKeyLength {
		return invalid("key must be 1 to %d bytes", maxKeyLength)
	}
	if !utf8.ValidString(k) {
		return invalid("key is not valid UTF-8")
	}
	if strings.IndexFunc(k, unicode.IsControl) >= 0 {
		return invalid("key %s contains a control character", quote(k))
	}
	return nil
}

func validateVersionID(v string) error {
	if len(v) != versionIDLength || strings.ToLower(v) != v {
		return invalid("version id %s is not %d lower-case hex digits", quote(v), versionIDLength)
	}
	if _, err := hex.DecodeString(v); err != nil {
		return invalid("version id %s is not %d lower-case hex digits", quote(v), versionIDLength)
	}
	return nil
}

// validateRef checks a reference a caller passes in.
func validateRef(r StorageRef) error {
	if err := validateBucket(r.Bucket); err != nil {
		return err
	}
	if err := validateKey(r.Key); err != nil {
		return err
	}
	if r.VersionID != "" {
		if err := validateVersionID(r.VersionID); err != nil {
			return err
		}
	}
	if len(r.ContentHash) != 0 && len(r.ContentHash) != contentHashSize {
		return invalid("content hash is %d bytes, want %d", len(r.ContentHash), contentHashSize)
	}
	return nil
}

func validateContentType(ct string) error {
	if len(ct) > maxContentType {
		return invalid("content type is %d bytes, limit %d", len(ct), maxContentType)
	}
	for i := 0; i < len(ct); i++ {
		if ct[i] < 0x20 || ct[i] > 0x7e {
			return invalid("content type must be printable ASCII")
		}
	}
	return nil
}

func validateMetadata(m map[string]string) error {
	if len(m) > maxMetadataEntries {
		return invalid("%d metadata entries, limit %d", len(m), maxMetadataEntries)
	}
	total := 0
	for k, v := range m {
		switch {
		case k == "" || len(k) > maxMetadataKey:
			return invalid("metadata keys must be 1 to %d bytes", maxMetadataKey)
		case len(v) > maxMetadataValue:
			return invalid("metadata entry %s: value over %d bytes", quote(k), maxMetadataValue)
		case !utf8.ValidString(k) || !utf8.ValidString(v):
			return invalid("metadata entry %s is not valid UTF-8", quote(k))
		case strings.IndexFunc(k, unicode.IsControl) >= 0:
			return invalid("metadata key %s contains a control character", quote(k))
		}
		total += len(k) + len(v)
	}
	if total > maxMetadataTotal {
		return invalid("metadata is %d bytes, limit %d", total, maxMetadataTotal)
	}
	return nil
}

// cloneMetadata copies m, keeping an empty map as nil so a version reads
// back the same whether it was stored with nil or an empty map.
func cloneMetadata(m map[string]string) map[string]string {
	if len(m) == 0 {
		return nil
	}
	return maps.Clone(m)
}

// checkHash compares a reference's expected hash, when it has one, with a
// version's.
func checkHash(want, have []byte) error {
	if len(want) == 0 || bytes.Equal(want, have) {
		return nil
	}
	return &HashMismatchError{Expected: hex.EncodeToString(want), Actual: hex.EncodeToString(have)}
}
