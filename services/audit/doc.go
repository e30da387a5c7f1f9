// Package audit is Creto's verifiable audit log (seed §9): an append-only
// RFC 6962 Merkle tree of audit records over SHA-256, durable in the
// node's store (internal/kv) under "audit/", with signed checkpoints in
// the C2SP tlog-checkpoint format, inclusion and consistency proofs, and
// queries.
//
// Service is the log. Log and LogBatch return once the records and their
// tree hashes are fsync'd; concurrent appends share one commit. Each
// checkpoint carries two signed-note signature lines: a standard Ed25519
// line that golang.org/x/mod/sumdb/note and other tlog tools verify, and
// a hybrid Ed25519+ML-DSA-65 line that this package's Verifier also
// requires. The signing keys are generated on first open and sealed at
// rest by a Sealer.
//
// Logger is the asynchronous front (seed §9.3) the engine, the services
// and Wasm host functions emit into: it never blocks its caller, batches
// into the log, buffers while the log is unavailable and replays in
// order; when its buffer is full it drops the oldest ordinary events but
// spools critical ones (vault, NHI) to a durable local file.
//
// VerifyStore and VerifyExport check a whole log offline (`creto audit
// verify`) and name the first entry or checkpoint that does not verify.
// docs/audit.md is the user guide and documents the leaf encoding byte by
// byte.
package audit
