// Package client is the Go client of a Creto node's services — authz,
// NHI, memory, vault, storage, audit and consensus — for the agent
// platforms that call them, with the integration rules of the seed (§2.5,
// §4.6, §8.4, §9.3, §13): per-attempt timeouts, retries with jittered
// backoff on retryable errors only, a circuit breaker per service that
// neither a caller's cancellation nor a denial trips, and each service's
// fallback — authz, NHI and crypto fail secure, memory degrades to an
// empty context, the vault to secrets read before, storage returns its
// errors uncached, audit events wait for the log (critical ones in a
// durable spool) and reach it once each, and a timestamp falls back to
// the process's own hybrid logical clock, flagged.
//
// Every client is built from the seed's TOML sections (LoadConfig, New)
// and speaks in typed Go requests and results, never protobuf messages.
// Errors are *Error values matching the package's sentinels with
// errors.Is. CheckHealth and HealthHandler aggregate the services' health
// (seed §14.1). docs/clients.md is the user guide.
package client
