// Package nhi is Creto's non-human identity service (seed §6): the
// registry of agents, their hybrid post-quantum keys, the bearer tokens
// they authenticate with, and the signed delegation chains through which
// one agent acts for another.
//
// Everything is durable in the node's store (internal/kv) under "nhi/".
// Private keys are encrypted at rest under a data key that a Sealer
// protects; FileSealer keeps the node master key in a 0600 file, and a
// PKCS#11 or KMS backend can take its place. All cryptography goes through
// services/crypto: signatures are ed25519+ml-dsa-65 composites and KEM keys
// are X-Wing.
//
// Service.Entities turns the registry into an entity.Provider, and
// DelegationChain.EntityRefs turns a verified chain into the engine
// request's Delegation, which policies read as context.delegation.
// docs/identity.md is the user guide.
package nhi
