// Package vault is Creto's secret vault (seed §5): versioned secrets
// encrypted at rest, delegated access for sandbox secret injection with
// atomic use limits, rotation on a schedule, and a durable access log.
//
// Secrets follow HashiCorp Vault's KV v2 model: each write adds a version,
// with check-and-set; deletes are soft until a destroy. Every record the
// vault stores is encrypted with AES-256-GCM under a root key, bound to
// its store key, through services/crypto. The root key is wrapped by a key
// backend (nhi.FileSealer's key file, or an HSM implementing KeyBackend)
// or by a key split into Shamir shares; the vault starts sealed and serves
// nothing until unsealed.
//
// Every call names the requesting agent. A secret's owner — the agent
// whose namespace ("agents/<id>/…") holds it, or else its creator — has
// every access; anyone else needs a grant from the Authorizer, which by
// default denies. Every access, allowed or denied, is recorded through an
// AccessRecorder before it takes effect, and the vault refuses what it
// cannot record. Values are SecretValues, which never print and are wiped
// by Destroy. docs/vault.md is the user guide.
package vault
