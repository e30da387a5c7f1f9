// Package storage is Creto's encrypted object storage (seed §3): objects
// of up to a gigabyte, stored and retrieved as streams in constant memory,
// each version encrypted under its own data key and readable only through
// its owner's identity key.
//
// Every version gets a fresh 256-bit data key. The data is encrypted with
// AES-256-GCM (or ChaCha20-Poly1305) in chunks under a segmented streaming
// AEAD (crypto.StreamSealer), which detects reordered, truncated, extended
// and spliced chunks. The data key is wrapped with HPKE (RFC 9180) to the
// owner's X-Wing (X25519 + ML-KEM-768) key from NHI; only NHI holds the
// private key, and it unwraps on request (nhi.Service.UnwrapKey). The
// envelope — a header with everything needed to open it, then the
// chunks — is versioned and documented byte by byte in docs/storage.md.
//
// Metadata lives in the node's store (internal/kv) under "storage/";
// envelopes live in files under the service's directory, or in the store
// itself when small. A version becomes visible in one atomic commit after
// its envelope is durable, so a crash never leaves a readable partial
// object; Open deletes the files a crash orphaned.
//
// Every call names its Caller. The owner may do anything its objects'
// rules allow; another agent needs an NHI delegation chain from the owner
// granting storage:read, storage:write or storage:delete. Quotas are
// reserved as data streams in, TTLs hide expired versions at once, and
// Compliance versions cannot be deleted, shortened or changed by anyone
// until their retention ends. Presign and Handler serve time-limited GET
// and PUT URLs.
package storage
