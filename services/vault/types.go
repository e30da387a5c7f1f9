package vault

import (
	"fmt"
	"maps"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/creto-systems/creto/internal/agentid"
)

// SecretRef names a secret: a path of segments and a name within it
// (seed SecretRef), e.g. {"agents/agent-123/api-keys", "OPENAI_API_KEY"}.
type SecretRef struct {
	Path string
	Name string
}

// String renders the reference for messages: both parts quoted and
// bounded.
func (r SecretRef) String() string { return quote(r.Path) + "/" + quote(r.Name) }

// Limits on references and identities.
const (
	// MaxPathBytes caps a path.
	MaxPathBytes = 512
	// MaxNameBytes caps a name.
	MaxNameBytes = 256
	// MaxIDBytes caps agent, sandbox and delegation ids (nhi's limit).
	MaxIDBytes = 256
	// MaxLabelBytes caps each label key and value.
	MaxLabelBytes = 256
	// MaxDescriptionBytes caps a description.
	MaxDescriptionBytes = 4096
)

// agentNamespace is the path prefix under which each agent may create
// secrets without a grant: "agents/<agent id>/…".
const agentNamespace = "agents/"

// validate checks a reference. Path segments and names are UTF-8 without
// control characters, whitespace or NUL (which separates them in store
// keys); segments are separated by single slashes, and "." and ".." are
// refused so a path has one spelling.
func (r SecretRef) validate() error {
	if err := checkSegments("path", r.Path, MaxPathBytes, true); err != nil {
		return err
	}
	return checkSegments("name", r.Name, MaxNameBytes, false)
}

// validatePath checks a path alone (for listing).
func validatePath(p string) error { return checkSegments("path", p, MaxPathBytes, true) }

func checkSegments(what, s string, limit int, slashes bool) error {
	switch {
	case s == "":
		return invalid("%s is empty", what)
	case len(s) > limit:
		return invalid("%s is %d bytes, limit %d", what, len(s), limit)
	case !utf8.ValidString(s):
		return invalid("%s is not valid UTF-8", what)
	}
	for _, r := range s {
		if unicode.IsControl(r) || unicode.IsSpace(r) || (r == '/' && !slashes) {
			return invalid("%s %s contains a space, control character or slash", what, quote(s))
		}
	}
	if slashes {
		for seg := range strings.SplitSeq(s, "/") {
			if seg == "" || seg == "." || seg == ".." {
				return invalid("%s %s has an empty, \".\" or \"..\" segment", what, quote(s))
			}
		}
	}
	return nil
}

// validateID accepts the ids nhi accepts: non-empty, bounded, UTF-8, no
// whitespace or control characters. Identities the vault itself acts as
// (SchedulerAgent) contain a space, so no caller can claim one.
func validateID(what, id string) error {
	if err := agentid.Check(id, MaxIDBytes); err != nil {
		return invalid("%s %v", what, err)
	}
	return nil
}

// namespaceOwner returns the agent whose namespace path lies in
// ("agents/<id>/…" or "agents/<id>"), or "".
func namespaceOwner(path string) string {
	rest, ok := strings.CutPrefix(path, agentNamespace)
	if !ok {
		return ""
	}
	id, _, _ := strings.Cut(rest, "/")
	return id
}

// SecretType classifies a secret (seed SecretType). It decides which
// generator rotates it.
type SecretType uint8

// The seed's secret types. TypeUnspecified is not storable.
const (
	TypeUnspecified SecretType = iota
	TypeAPIKey
	TypePassword
	TypeCertificate
	TypePrivateKey
	TypeToken
	TypeConnectionString
	TypeGeneric
)

var typeNames = [...]string{"SECRET_TYPE_UNSPECIFIED", "API_KEY", "PASSWORD", "CERTIFICATE", "PRIVATE_KEY", "TOKEN", "CONNECTION_STRING", "GENERIC"}

// String returns the seed's enum name, e.g. "API_KEY".
func (t SecretType) String() string {
	if int(t) < len(typeNames) {
		return typeNames[t]
	}
	return "SecretType(" + strconv.Itoa(int(t)) + ")"
}

// ParseSecretType returns the type with the given seed enum name. An
// unknown name, and "SECRET_TYPE_UNSPECIFIED", is ErrInvalidArgument.
func ParseSecretType(s string) (SecretType, error) {
	for i, n := range typeNames[1:] {
		if n == s {
			return SecretType(i + 1), nil
		}
	}
	return 0, invalid("unknown secret type %s", quote(s))
}

func (t SecretType) valid() bool { return t > TypeUnspecified && t <= TypeGeneric }

// RotationPolicy says when a secret is rotated automatically.
type RotationPolicy struct {
	// Interval between automatic rotations, counted from the current
	// version's creation; 0 means rotation is manual only. It needs a
	// generator for the secret's type.
	Interval time.Duration
}

// SecretMetadata describes a secret (seed SecretMetadata).
type SecretMetadata struct {
	Type        SecretType
	Description string
	Labels      map[string]string
	Rotation    RotationPolicy
}

func (m SecretMetadata) clone() SecretMetadata {
	m.Labels = maps.Clone(m.Labels)
	return m
}

// validate checks metadata against the configured limits.
func (m *SecretMetadata) validate(cfg *settings) error {
	if !m.Type.valid() {
		return invalid("secret type %v is not storable", m.Type)
	}
	if len(m.Description) > MaxDescriptionBytes || !utf8.ValidString(m.Description) {
		return invalid("description must be valid UTF-8 of at most %d bytes", MaxDescriptionBytes)
	}
	if len(m.Labels) > cfg.MaxLabels {
		return invalid("%d labels, limit %d", len(m.Labels), cfg.MaxLabels)
	}
	for k, v := range m.Labels {
		if k == "" || len(k) > MaxLabelBytes || len(v) > MaxLabelBytes || !utf8.ValidString(k) || !utf8.ValidString(v) {
			return invalid("label %s: key and value must be valid UTF-8, key 1..%d bytes, value at most %d", quote(k), MaxLabelBytes, MaxLabelBytes)
		}
	}
	if iv := m.Rotation.Interval; iv != 0 {
		if iv < cfg.MinRotationInterval {
			return invalid("rotation interval %v is under the minimum %v", iv, cfg.MinRotationInterval)
		}
		if cfg.generators[m.Type] == nil {
			return fmt.Errorf("%w: %w: automatic rotation of %v secrets needs one", ErrInvalidArgument, ErrNoGenerator, m.Type)
		}
	}
	if len(m.Labels) == 0 {
		m.Labels = nil
	}
	return nil
}

// Secret is one version of a secret with its value (seed Secret). Call
// Destroy when done with the value.
type Secret struct {
	Ref SecretRef
	// Value is empty in the responses of writes: the vault never echoes a
	// value back.
	Value    SecretValue
	Version  uint32
	Metadata SecretMetadata
	// CreatedAt and CreatedBy are the version's.
	CreatedAt time.Time
	CreatedBy string
	// ExpiresAt is zero for a version that never expires.
	ExpiresAt time.Time
}

// Destroy wipes the value.
func (s *Secret) Destroy() { s.Value.Destroy() }

// VersionInfo describes one version without its value.
type VersionInfo struct {
	Version   uint32
	CreatedAt time.Time
	// CreatedBy is the agent that wrote the version, or SchedulerAgent.
	CreatedBy string
	ExpiresAt time.Time
	// DeletedAt is set while the version is soft-deleted.
	DeletedAt time.Time
	DeletedBy string
	// Destroyed versions have no value any more.
	Destroyed bool
}

// SecretInfo is a secret's metadata and version history, without values.
type SecretInfo struct {
	Ref SecretRef
	// Owner is the agent whose namespace the secret is in, or else the
	// agent that created it. It has every access to the secret.
	Owner          string
	Metadata       SecretMetadata
	CurrentVersion uint32
	CreatedAt      time.Time
	UpdatedAt      time.Time
	// Versions are the kept versions, oldest first.
	Versions []VersionInfo
}

// GetSecretRequest names a secret and optionally a version (seed
// GetSecretRequest).
type GetSecretRequest struct {
	Ref SecretRef
	// Version 0 means the current version.
	Version uint32
}

// GetSecretsRequest names several secrets, read at their current
// versions.
type GetSecretsRequest struct {
	Refs []SecretRef
}

// GetSecretsResponse holds the secrets in request order.
type GetSecretsResponse struct {
	Secrets []Secret
}

// Destroy wipes every value.
func (r *GetSecretsResponse) Destroy() {
	for i := range r.Secrets {
		r.Secrets[i].Destroy()
	}
}

// CreateSecretRequest creates a secret with its first version.
type CreateSecretRequest struct {
	Ref      SecretRef
	Value    SecretValue
	Metadata SecretMetadata
	// TTL is the first version's lifetime; 0 means it never expires.
	TTL time.Duration
}

// UpdateSecretRequest writes a new version.
type UpdateSecretRequest struct {
	Ref   SecretRef
	Value SecretValue
	// Metadata replaces the secret's metadata when set; its type cannot
	// change.
	Metadata *SecretMetadata
	// TTL is the new version's lifetime; 0 means it never expires.
	TTL time.Duration
	// CAS is KV v2's check-and-set: nil writes unconditionally; a pointer
	// to 0 writes only if the secret does not exist yet (and then creates
	// it, with Metadata, which must be set); a pointer to N writes only if
	// the current version is N. A mismatch is *CASMismatchError.
	CAS *uint32
}

// DeleteSecretRequest deletes versions of a secret.
type DeleteSecretRequest struct {
	Ref SecretRef
	// Versions to delete; empty means the current version (soft delete)
	// or, with Destroy, the whole secret.
	Versions []uint32
	// Destroy erases values for good instead of soft-deleting them. With
	// no Versions it removes the secret entirely: every version and its
	// metadata.
	Destroy bool
}

// DeleteResponse lists the versions the call deleted or destroyed.
type DeleteResponse struct {
	Versions []uint32
	// Purged is set when the whole secret was removed.
	Purged bool
}

// UndeleteSecretRequest restores soft-deleted versions.
type UndeleteSecretRequest struct {
	Ref      SecretRef
	Versions []uint32
}

// ListSecretsRequest lists the secrets under a path.
type ListSecretsRequest struct {
	Path string
	// Recursive includes secrets in sub-paths.
	Recursive bool
	// Limit caps the result; 0 means 100, at most 1000.
	Limit int
	// After resumes a listing after this reference (a previous Next).
	After SecretRef
}

// ListSecretsResponse is one page of a listing, in reference order.
// Secrets the caller may not see are left out.
type ListSecretsResponse struct {
	Secrets []SecretInfo
	// Next is the reference to pass as After for the next page; zero when
	// the listing is complete.
	Next SecretRef
}
