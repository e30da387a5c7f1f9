package feed

import (
	"strconv"
	"strings"

	"github.com/creto-systems/creto/services/audit"
	"github.com/creto-systems/creto/services/vault"
)

// SourceVault is the Source of the vault's records.
const SourceVault = "vault"

// Vault returns the record of one vault access (vault.AccessRecorder's
// event), to append synchronously: the vault does not serve what it
// cannot record. Source is "vault", Who the agent, What
// "vault.<operation>" ("vault.get", "vault.delegated_get", …), Resource
// VaultResource(ref), Outcome success, denied or failure, Why the reason
// code ("delegation_expired", …), Timestamp the access's time; Context
// holds what VaultAccess needs to give the event back: operation, path,
// name, and the version, delegation and sandbox when set. An access event
// never holds a value, so neither does its record.
func Vault(ev vault.AccessEvent) audit.Record {
	r := audit.Record{
		Timestamp: ev.Time, Source: SourceVault, Who: id(ev.Agent, audit.MaxIDLen),
		What: "vault." + ev.Operation.String(), Resource: VaultResource(ev.Ref), Why: text(ev.Reason),
		Outcome: vaultOutcomes[ev.Outcome],
		Context: map[string]string{"operation": ev.Operation.String(), "path": ev.Ref.Path, "name": ev.Ref.Name},
	}
	if ev.Version != 0 {
		r.Context["version"] = strconv.FormatUint(uint64(ev.Version), 10)
	}
	if ev.DelegationID != "" {
		r.Context["delegation_id"] = ev.DelegationID
	}
	if ev.SandboxID != "" {
		r.Context["sandbox_id"] = ev.SandboxID
	}
	return r
}

// vaultOutcomes maps the vault's outcomes to the log's; an outcome the
// vault never records maps to failure.
var vaultOutcomes = map[vault.Outcome]audit.Outcome{
	vault.OutcomeAllowed: audit.Success,
	vault.OutcomeDenied:  audit.Denied,
	vault.OutcomeFailed:  audit.Failure,
}

// VaultResource is a secret's Resource in the vault's records,
// Secret::"<path>/<name>", or SecretPath::"<path>" for the listings of a
// path (an empty name). The parts go in as they are: the vault refuses
// control characters in them, so they are valid identifiers, and a name
// holds no slash, so one form names one secret. A query by Resource finds
// one secret's accesses through the log's index.
func VaultResource(ref vault.SecretRef) string {
	if ref.Name == "" {
		return `SecretPath::"` + ref.Path + `"`
	}
	return `Secret::"` + ref.Path + "/" + ref.Name + `"`
}

// VaultAccess gives back the access event a Vault record was made from,
// or false for a record that is not the vault's.
func VaultAccess(r *audit.Record) (vault.AccessEvent, bool) {
	op, ok := vaultOperations[r.Context["operation"]]
	if r.Source != SourceVault || !ok {
		return vault.AccessEvent{}, false
	}
	ev := vault.AccessEvent{
		Time: r.Timestamp, Agent: r.Who, Operation: op, Reason: r.Why,
		Ref:          vault.SecretRef{Path: r.Context["path"], Name: r.Context["name"]},
		DelegationID: r.Context["delegation_id"], SandboxID: r.Context["sandbox_id"],
	}
	for o, a := range vaultOutcomes {
		if a == r.Outcome {
			ev.Outcome = o
		}
	}
	if v, err := strconv.ParseUint(r.Context["version"], 10, 32); err == nil {
		ev.Version = uint32(v)
	}
	return ev, true
}

// vaultOperations names every operation the vault defines.
var vaultOperations = func() map[string]vault.Operation {
	m := map[string]vault.Operation{}
	for op := vault.Operation(1); op != 0; op++ {
		if name := op.String(); !strings.HasPrefix(name, "operation(") {
			m[name] = op
		}
	}
	return m
}()
