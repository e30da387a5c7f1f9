package nhi

import (
	"errors"

	"github.com/creto-systems/creto/internal/errfmt"
)

// Sentinel errors. Every error the service returns wraps at least one of
// them, so callers (and the gRPC adapter mapping them to status codes)
// decide with errors.Is and never by parsing messages. Messages name agents
// and delegations by id but never carry tokens, signatures or key material.
var (
	// ErrNotFound: no agent, key or delegation has the given id.
	ErrNotFound = errors.New("not found")
	// ErrAlreadyExists: Register named an agent id that is taken. Ids of
	// revoked agents stay taken, so an id never names two identities.
	ErrAlreadyExists = errors.New("already exists")
	// ErrInvalidArgument: an input is empty, too large, badly formed or out
	// of range. Nothing was changed.
	ErrInvalidArgument = errors.New("invalid argument")
	// ErrRevoked: the agent was revoked. Revocation is permanent.
	ErrRevoked = errors.New("agent revoked")
	// ErrSuspended: the agent is suspended; Update can make it active again.
	ErrSuspended = errors.New("agent suspended")
	// ErrExpired: the agent, or the key an operation needs, is past its
	// expiry.
	ErrExpired = errors.New("expired")
	// ErrInvalidSignature: Verify rejected a signature.
	ErrInvalidSignature = errors.New("invalid signature")

	// ErrTokenMalformed: the token does not decode: wrong length, version,
	// algorithm, encoding or field ranges.
	ErrTokenMalformed = errors.New("token malformed")
	// ErrTokenForged: the token's signature does not verify, or it names a
	// node key this node never had.
	ErrTokenForged = errors.New("token forged")
	// ErrTokenExpired: the token, or the agent it names, has expired.
	ErrTokenExpired = errors.New("token expired")
	// ErrTokenRevoked: the token was revoked, its agent is revoked or
	// suspended, or the node key that signed it was retired.
	ErrTokenRevoked = errors.New("token revoked")

	// ErrDelegationMalformed: a delegation or chain encoding does not decode.
	ErrDelegationMalformed = errors.New("delegation malformed")
	// ErrDelegationForged: a link's signature does not verify under its
	// delegator's key, names a key the delegator never had, or differs from
	// the link this service recorded.
	ErrDelegationForged = errors.New("delegation forged")
	// ErrDelegationExpired: a link, or an agent on the chain, has expired.
	ErrDelegationExpired = errors.New("delegation expired")
	// ErrDelegationRevoked: a link (or one above it) was revoked, an agent
	// on the chain is revoked or suspended, or a signing key was retired.
	ErrDelegationRevoked = errors.New("delegation revoked")
	// ErrWidened: a link grants a permission its parent does not hold, or
	// outlives its parent. Delegation may only narrow.
	ErrWidened = errors.New("delegation widens its parent")
	// ErrDelegationCycle: an agent would appear twice on one chain.
	ErrDelegationCycle = errors.New("delegation cycle")
	// ErrChainTooDeep: the chain would exceed the configured maximum depth.
	ErrChainTooDeep = errors.New("delegation chain too deep")
	// ErrChainBroken: consecutive links do not connect: a link's parent is
	// not the link before it, or its delegator is not the previous
	// delegatee.
	ErrChainBroken = errors.New("delegation chain broken")
	// ErrNotVerified: a chain's entity references were asked for before the
	// chain was verified.
	ErrNotVerified = errors.New("delegation chain not verified")

	// ErrSealed: the node key cannot open this store's data key — the key
	// file was replaced or belongs to another node, or the sealer refused.
	ErrSealed = errors.New("node key does not open the store")
	// ErrClosed: the service was closed.
	ErrClosed = errors.New("service closed")
)

// opError builds the package's error shape, "nhi: <op>[ <subject>]: <causes>",
// keeping every cause matchable with errors.Is.
func opError(op, subject string, causes ...error) error {
	return errfmt.Op("nhi", op, subject, causes...)
}

// detail attaches an explanation to a sentinel without hiding it from
// errors.Is.
func detail(sentinel error, format string, args ...any) error {
	return errfmt.Detail(sentinel, format, args...)
}

// quote bounds and escapes a caller-supplied id before it goes into an
// error message, so a hostile id cannot forge log lines or flood them.
func quote(s string) string { return errfmt.Quote(s) }
