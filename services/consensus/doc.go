// Package consensus is Creto's consensus service (seed §8): a Raft group
// that gives the cluster one order for timestamps, events and replicated
// state.
//
// A Node is one member. It runs hashicorp/raft with a raft-wal log, a file
// snapshot store and raft traffic over TCP (or any StreamLayer, such as
// mutual TLS). Its state machine writes the node's kv store under
// "consensus/r/", with the applied index in the same atomic commit, so a
// restart never applies an entry twice; snapshots stream that prefix.
//
// Three services sit on the log:
//
//   - GetTimestamp: a TiDB-PD-style timestamp oracle. The leader persists
//     a high-water mark through raft a window ahead and serves timestamps
//     from memory under it while it holds a leadership lease, so
//     timestamps are strictly increasing across leader changes without a
//     raft round trip each. AllowLocal falls back to a local hybrid
//     logical clock, flagged Consensus false, when consensus is
//     unavailable (seed §8.4).
//   - OrderEvents: a batch of events gets consecutive sequence numbers and
//     increasing timestamps in one raft entry; every node stores the same
//     order (ReadEvents).
//   - Propose: commands of registered types (Handler) apply to replicated
//     state — the home of policies, the extension registry, vault use
//     counts and quotas in cluster mode — and return their handler's
//     result. Idempotency keys make retries after an indeterminate outcome
//     safe.
//
// Without a quorum, writes pause: they fail at once with ErrNoQuorum
// (seed §13, split brain). Membership follows the add-as-nonvoter, catch
// up, promote pattern (Join), and leadership can be handed over
// (TransferLeadership). Members publish their client (API) addresses
// through the log, so a follower names the leader's in NotLeaderError.
//
// Server and AdminServer are the gRPC face (creto.consensus.v1): a
// follower's NotLeaderError becomes FAILED_PRECONDITION with the leader's
// address in the details, which NotLeaderFromStatus reads back.
// docs/consensus.md is the user guide, docs/api.md the wire reference.
package consensus
