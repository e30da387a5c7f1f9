// Package hosts adapts Creto's services to the extension ABI: one file per
// capability, each an engine.HostModule that an operator grants to
// extensions by name. The logic lives in the services; these adapters only
// move bytes across the sandbox boundary (SPEC.md §6).
package hosts
