package audit

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/creto-systems/creto/services/crypto"
)

// Checkpoint is a signed statement of the log's size and root hash, in the
// C2SP tlog-checkpoint format: the origin line, the size in decimal and
// the base64 RFC 6962 root hash, then the signed-note signature lines.
type Checkpoint struct {
	Origin string
	Size   int64
	Root   tlog.Hash
}

// maxNoteSize bounds a signed checkpoint before it is parsed: the text is
// under 400 bytes and the two signatures about 4.6 KB; the rest leaves
// room for witness cosignatures.
const maxNoteSize = 64 << 10

// maxOriginLen bounds the origin line, which is also the key name.
const maxOriginLen = 256

// Signature types of the two lines (C2SP signed-note). The hybrid type is
// not assigned by the spec, so it is 0xff followed by hybridTypeID, as the
// spec recommends for unassigned types.
const (
	sigTypeEd25519 = 0x01
	sigTypeHybrid  = 0xff
	// hybridTypeID names the hybrid signature type after the 0xff byte in
	// key IDs and verifier keys. Never change it: it is in every key ID.
	hybridTypeID = "creto.dev/signed-note/ed25519+ml-dsa-65/v1"
)

// hybridContext is the composite signature's context string: the node's
// audit key signs nothing but checkpoints, and the context makes that
// explicit to anyone holding the key.
var hybridContext = []byte("creto-audit-checkpoint/v1")

// marshalText returns the checkpoint's note text.
func (c Checkpoint) marshalText() string {
	return c.Origin + "\n" + strconv.FormatInt(c.Size, 10) + "\n" + base64.StdEncoding.EncodeToString(c.Root[:]) + "\n"
}

// parseCheckpointText parses a checkpoint's note text strictly: a
// non-empty origin, a canonical decimal size (no sign, no leading zeros),
// a canonical base64 32-byte hash, then optional extension lines (which
// C2SP allows and this log never writes), each non-empty.
func parseCheckpointText(text string) (Checkpoint, error) {
	var c Checkpoint
	if !strings.HasSuffix(text, "\n") {
		return c, errors.New("checkpoint text does not end in a newline")
	}
	lines := strings.Split(text[:len(text)-1], "\n")
	if len(lines) < 3 {
		return c, fmt.Errorf("checkpoint has %d lines, want at least 3", len(lines))
	}
	for _, ext := range lines[3:] {
		if ext == "" {
			return c, errors.New("empty extension line")
		}
	}
	c.Origin = lines[0]
	if !validOrigin(c.Origin) {
		return c, errors.New("invalid origin line")
	}
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return c, fmt.Errorf("size %s is not a canonical decimal", quote(lines[1]))
	}
	c.Size = size
	root, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != len(c.Root) || base64.StdEncoding.EncodeToString(root) != lines[2] {
		return c, errors.New("root hash is not canonical base64 of 32 bytes")
	}
	copy(c.Root[:], root)
	return c, nil
}

// validOrigin accepts what a signed-note key name may be (non-empty, no
// spaces, no '+') as long as it is printable ASCII, since the origin is
// both the first line and the name of the log's keys.
func validOrigin(s string) bool {
	if s == "" || len(s) > maxOriginLen {
		return false
	}
	for i := 0; i < len(s); i++ {
		if c := s[i]; c <= ' ' || c >= 0x7f || c == '+' {
			return false
		}
	}
	return true
}

// Verifier checks the checkpoints of one log. Both of the log's signature
// lines must be present and valid: the standard Ed25519 line, which
// generic tools check, and the hybrid Ed25519+ML-DSA-65 line, which keeps
// a checkpoint unforgeable should Ed25519 fall. It is immutable and safe
// for concurrent use.
type Verifier struct {
	origin string
	p      crypto.Provider
	ed     noteKey
	hybrid noteKey
}

// noteKey is one signature line's key: a note.Verifier over a public key
// held by the crypto package.
type noteKey struct {
	name string
	hash uint32
	pub  *crypto.PublicKey
	p    crypto.Provider
	typ  []byte // signature type byte(s) in the key ID and verifier key
	ctx  []byte // signature context
}

func (k *noteKey) Name() string    { return k.name }
func (k *noteKey) KeyHash() uint32 { return k.hash }

// Verify checks a raw signature from a note line; any malformed input is
// simply a failed verification.
func (k *noteKey) Verify(msg, sig []byte) bool {
	enc, err := crypto.EncodeSignature(k.pub.Algorithm(), sig)
	if err != nil {
		return false
	}
	return k.p.Verify(k.pub, msg, k.ctx, enc) == nil
}

// verifierKey encodes the key as signed-note verifier keys are written:
// name+hex(key ID)+base64(type || public key).
func (k *noteKey) verifierKey() string {
	material := append(bytes.Clone(k.typ), k.pub.Raw()...)
	return fmt.Sprintf("%s+%08x+%s", k.name, k.hash, base64.StdEncoding.EncodeToString(material))
}

// newNoteKey builds the key of one line and computes its key ID as C2SP
// recommends: SHA-256(name || 0x0A || type || public key)[:4].
func newNoteKey(p crypto.Provider, name string, pub *crypto.PublicKey) (noteKey, error) {
	k := noteKey{name: name, pub: pub, p: p}
	switch pub.Algorithm() {
	case crypto.Ed25519:
		k.typ = []byte{sigTypeEd25519}
	case crypto.Ed25519MLDSA65:
		k.typ = append([]byte{sigTypeHybrid}, hybridTypeID...)
		k.ctx = hybridContext
	default:
		return k, detail(ErrInvalidArgument, "%v is not a checkpoint signature algorithm", pub.Algorithm())
	}
	in := append(append([]byte(name+"\n"), k.typ...), pub.Raw()...)
	sum, err := p.Hash(crypto.SHA256, in)
	if err != nil {
		return k, err
	}
	k.hash = binary.BigEndian.Uint32(sum)
	return k, nil
}

// newVerifier builds a verifier from the log's two public keys.
func newVerifier(p crypto.Provider, origin string, ed, hybrid *crypto.PublicKey) (*Verifier, error) {
	if !validOrigin(origin) {
		return nil, detail(ErrInvalidArgument, "origin %s", quote(origin))
	}
	edKey, err := newNoteKey(p, origin, ed)
	if err != nil {
		return nil, err
	}
	hyKey, err := newNoteKey(p, origin, hybrid)
	if err != nil {
		return nil, err
	}
	if edKey.pub.Algorithm() != crypto.Ed25519 || hyKey.pub.Algorithm() != crypto.Ed25519MLDSA65 {
		return nil, detail(ErrInvalidArgument, "want an ed25519 and an ed25519+ml-dsa-65 key")
	}
	return &Verifier{origin: origin, p: p, ed: edKey, hybrid: hyKey}, nil
}

// ParseVerifier builds a Verifier from the two verifier keys a node
// exports (Verifier.Ed25519Key and Verifier.HybridKey, `creto audit
// verifier-key`). Both must name the same log.
func ParseVerifier(ed25519Key, hybridKey string) (*Verifier, error) {
	p := crypto.New()
	edName, edPub, err := parseVerifierKey(p, ed25519Key, []byte{sigTypeEd25519}, crypto.Ed25519)
	if err != nil {
		return nil, opError("parse verifier", "", err)
	}
	hyName, hyPub, err := parseVerifierKey(p, hybridKey, append([]byte{sigTypeHybrid}, hybridTypeID...), crypto.Ed25519MLDSA65)
	if err != nil {
		return nil, opError("parse verifier", "", err)
	}
	if edName != hyName {
		return nil, opError("parse verifier", "", detail(ErrInvalidArgument, "the keys name different logs, %s and %s", quote(edName), quote(hyName)))
	}
	v, err := newVerifier(p, edName, edPub, hyPub)
	if err != nil {
		return nil, opError("parse verifier", "", err)
	}
	return v, nil
}

// parseVerifierKey parses name+hash+base64(type||key) and checks the hash.
func parseVerifierKey(p crypto.Provider, s string, typ []byte, alg crypto.Algorithm) (string, *crypto.PublicKey, error) {
	name, rest, ok1 := strings.Cut(s, "+")
	hash16, b64, ok2 := strings.Cut(rest, "+")
	hash, err1 := strconv.ParseUint(hash16, 16, 32)
	material, err2 := base64.StdEncoding.DecodeString(b64)
	if !ok1 || !ok2 || err1 != nil || err2 != nil || len(hash16) != 8 || !validOrigin(name) || !bytes.HasPrefix(material, typ) {
		return "", nil, detail(ErrMalformed, "not a %v verifier key", alg)
	}
	pub, err := crypto.NewPublicKey(alg, material[len(typ):])
	if err != nil {
		return "", nil, fmt.Errorf("%w: %w", ErrMalformed, err)
	}
	k, err := newNoteKey(p, name, pub)
	if err != nil {
		return "", nil, err
	}
	if k.hash != uint32(hash) {
		return "", nil, detail(ErrMalformed, "%v verifier key: key ID %s does not match the key", alg, hash16)
	}
	return name, pub, nil
}

// Origin returns the origin of the log whose checkpoints v checks.
func (v *Verifier) Origin() string { return v.origin }

// Ed25519Key returns the standard signed-note verifier key of the
// Ed25519 line: golang.org/x/mod/sumdb/note.NewVerifier, and every tool
// built on it, accepts it.
func (v *Verifier) Ed25519Key() string { return v.ed.verifierKey() }

// HybridKey returns the verifier key of the hybrid line, in the same
// name+hash+base64 form with type 0xff followed by the hybrid type id.
func (v *Verifier) HybridKey() string { return v.hybrid.verifierKey() }

// Equal reports whether two verifiers check the same log with the same
// keys.
func (v *Verifier) Equal(o *Verifier) bool {
	return v != nil && o != nil && v.origin == o.origin && v.ed.pub.Equal(o.ed.pub) && v.hybrid.pub.Equal(o.hybrid.pub)
}

// Open verifies a signed checkpoint and returns it. It fails, with an
// error matching ErrVerification, unless both of the log's signatures are
// present and valid and the text is a well-formed checkpoint of this
// log; signatures of other keys (witnesses) are ignored.
func (v *Verifier) Open(signed []byte) (Checkpoint, error) {
	c, err := v.open(signed)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: open checkpoint: %w", err)
	}
	return c, nil
}

func (v *Verifier) open(signed []byte) (Checkpoint, error) {
	if len(signed) > maxNoteSize {
		return Checkpoint{}, badCheckpoint(-1, "%d bytes, limit %d", len(signed), maxNoteSize)
	}
	n, err := note.Open(signed, note.VerifierList(&v.ed, &v.hybrid))
	if err != nil {
		var inv *note.InvalidSignatureError
		var unv *note.UnverifiedNoteError
		switch {
		case errors.As(err, &inv):
			return Checkpoint{}, badCheckpoint(-1, "the %s signature does not verify", v.lineName(inv.Hash))
		case errors.As(err, &unv):
			return Checkpoint{}, badCheckpoint(-1, "not signed by this log's keys")
		default:
			return Checkpoint{}, badCheckpoint(-1, "not a signed note: %v", err)
		}
	}
	var ed, hy bool
	for _, s := range n.Sigs {
		ed = ed || s.Hash == v.ed.hash
		hy = hy || s.Hash == v.hybrid.hash
	}
	c, err := parseCheckpointText(n.Text)
	switch {
	case err != nil:
		return Checkpoint{}, badCheckpoint(-1, "%v", err)
	case !ed:
		return Checkpoint{}, badCheckpoint(c.Size, "the Ed25519 signature line is missing")
	case !hy:
		return Checkpoint{}, badCheckpoint(c.Size, "the hybrid ed25519+ml-dsa-65 signature line is missing")
	case c.Origin != v.origin:
		return Checkpoint{}, badCheckpoint(c.Size, "origin %s, want %s", quote(c.Origin), quote(v.origin))
	}
	return c, nil
}

func (v *Verifier) lineName(hash uint32) string {
	if hash == v.hybrid.hash {
		return "hybrid ed25519+ml-dsa-65"
	}
	return "Ed25519"
}

// noteSigner signs one line of a checkpoint with a private key held by
// the crypto package.
type noteSigner struct {
	noteKey
	priv *crypto.PrivateKey
}

// Sign returns the raw signature a note line carries.
func (s *noteSigner) Sign(msg []byte) ([]byte, error) {
	sig, err := s.p.Sign(s.priv, msg, s.ctx)
	if err != nil {
		return nil, err
	}
	_, raw, err := crypto.DecodeSignature(sig)
	return raw, err
}

// signCheckpoint returns c as a signed note with the Ed25519 line first,
// then the hybrid line.
func signCheckpoint(c Checkpoint, ed, hybrid *noteSigner) ([]byte, error) {
	return note.Sign(&note.Note{Text: c.marshalText()}, ed, hybrid)
}
