package hosts

import (
	"context"
	"errors"

	"github.com/tetratelabs/wazero/api"

	"github.com/creto-systems/creto/abi"
	"github.com/creto-systems/creto/engine"
	"github.com/creto-systems/creto/services/vault"
)

// SecretUser is the part of the vault creto:vault/v1 and
// creto:vault-reveal/v1 call; *vault.Service implements it.
type SecretUser interface {
	MAC(ctx context.Context, caller string, req vault.MACRequest) (*vault.MACResponse, error)
	GetSecret(ctx context.Context, caller string, req vault.GetSecretRequest) (*vault.Secret, error)
}

// Vault is creto:vault/v1 (capability "vault", SPEC.md §6.7): an extension
// uses a secret by reference — today, as an HMAC-SHA256 key — and gets only
// the result; the value stays in the vault. The extension acts in the
// vault as vault.ExtensionAgent(name), "extension:<name>", so it may use
// the secrets that identity may read: those an operator provisioned under
// "agents/extension:<name>/…", and any the vault's Authorizer grants it.
// Every use is access-logged as operation "mac".
type Vault struct{ Secrets SecretUser }

// VaultReveal is creto:vault-reveal/v1 (capability "vault-reveal", SPEC.md
// §6.8): the plaintext of a secret, written into guest memory. It is a
// separate capability so that granting "vault" never implies it; an
// operator grants it only to an extension that must hand a secret on as
// is. Reads are access-logged as operation "get".
type VaultReveal struct{ Secrets SecretUser }

var (
	_ engine.HostModule = Vault{}
	_ engine.HostModule = VaultReveal{}
)

// Capability implements engine.HostModule.
func (Vault) Capability() string { return abi.CapabilityVault }

// Capability implements engine.HostModule.
func (VaultReveal) Capability() string { return abi.CapabilityVaultReveal }

// macSize is the length of an HMAC-SHA256, the one MAC offered.
const macSize = 32

// Functions implements engine.HostModule.
func (h Vault) Functions(ext string) []engine.HostFunction {
	agent := vault.ExtensionAgent(ext)
	i32 := api.ValueTypeI32
	return []engine.HostFunction{
		// mac(path_ptr, path_len, name_ptr, name_len, data_ptr, data_len,
		// out_ptr, out_cap i32) -> i32
		{Name: "mac", Params: []api.ValueType{i32, i32, i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				ref, code := secretRef(m, stack)
				if code < 0 {
					stack[0] = uint64(code)
					return
				}
				if uint32(stack[5]) > vault.MaxMACData {
					stack[0] = code64(abi.EInvalid)
					return
				}
				data, ok := engine.GuestBytes(m, uint32(stack[4]), uint32(stack[5]))
				if !ok {
					stack[0] = code64(abi.EInvalid)
					return
				}
				// A buffer too small gets the length without a use of the
				// secret.
				if uint32(stack[7]) < macSize {
					stack[0] = macSize
					return
				}
				if h.Secrets == nil {
					stack[0] = code64(abi.EUnavailable)
					return
				}
				r, err := h.Secrets.MAC(ctx, agent, vault.MACRequest{Ref: ref, Data: data})
				if err != nil {
					stack[0] = uint64(vaultCode(err))
					return
				}
				stack[0] = uint64(engine.PutResult(m, uint32(stack[6]), uint32(stack[7]), r.MAC))
			}},
	}
}

// Functions implements engine.HostModule.
func (h VaultReveal) Functions(ext string) []engine.HostFunction {
	agent := vault.ExtensionAgent(ext)
	i32 := api.ValueTypeI32
	return []engine.HostFunction{
		// reveal(path_ptr, path_len, name_ptr, name_len, out_ptr, out_cap
		// i32) -> i32
		{Name: "reveal", Params: []api.ValueType{i32, i32, i32, i32, i32, i32}, Results: []api.ValueType{i32},
			Func: func(ctx context.Context, m api.Module, stack []uint64) {
				ref, code := secretRef(m, stack)
				if code < 0 {
					stack[0] = uint64(code)
					return
				}
				if h.Secrets == nil {
					stack[0] = code64(abi.EUnavailable)
					return
				}
				sec, err := h.Secrets.GetSecret(ctx, agent, vault.GetSecretRequest{Ref: ref})
				if err != nil {
					stack[0] = uint64(vaultCode(err))
					return
				}
				defer sec.Destroy()
				stack[0] = uint64(engine.PutResult(m, uint32(stack[4]), uint32(stack[5]), sec.Value.Expose()))
			}},
	}
}

// code64 puts a negative ABI code on the stack.
func code64(code int64) uint64 { return uint64(code) }

// secretRef reads the (path_ptr, path_len, name_ptr, name_len) arguments
// at stack[0:4]. The vault validates the strings; here they are only
// bounded and copied out of guest memory.
func secretRef(m api.Module, stack []uint64) (vault.SecretRef, int64) {
	if uint32(stack[1]) > vault.MaxPathBytes || uint32(stack[3]) > vault.MaxNameBytes {
		return vault.SecretRef{}, abi.EInvalid
	}
	path, ok1 := engine.GuestBytes(m, uint32(stack[0]), uint32(stack[1]))
	name, ok2 := engine.GuestBytes(m, uint32(stack[2]), uint32(stack[3]))
	if !ok1 || !ok2 {
		return vault.SecretRef{}, abi.EInvalid
	}
	return vault.SecretRef{Path: string(path), Name: string(name)}, 0
}

// vaultCode is the ABI code for a vault error. A secret the extension may
// not use is EDENIED whether or not it exists, as the vault itself says.
func vaultCode(err error) int64 {
	switch {
	case errors.Is(err, vault.ErrAccessDenied):
		return abi.EDenied
	case errors.Is(err, vault.ErrNotFound), errors.Is(err, vault.ErrSecretExpired):
		return abi.ENotFound
	case errors.Is(err, vault.ErrInvalidArgument):
		return abi.EInvalid
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return abi.EDeadline
	}
	// Sealed, closed, an access that could not be recorded, a corrupt
	// record: the vault cannot serve now.
	return abi.EUnavailable
}
