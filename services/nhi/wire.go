package nhi

import nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"

// SignatureProto converts an agent's signature, in the crypto package's
// encoding (what Sign returns), to the wire's creto.nhi.v1.HybridSignature.
// It is for the adapters of other services whose messages carry NHI
// signatures, such as the audit log's records, so that the two halves are
// split in one place.
func SignatureProto(sig []byte) (*nhiv1.HybridSignature, error) { return signatureProto(sig) }

// SignatureFromProto is SignatureProto's inverse: the crypto package's
// encoding of a wire signature, or an error matching ErrInvalidArgument
// when it is not a well-formed hybrid signature.
func SignatureFromProto(h *nhiv1.HybridSignature) ([]byte, error) { return signatureFrom(h) }
