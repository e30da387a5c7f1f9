package abi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
)

// ManifestSection is the name of the custom section holding the manifest.
const ManifestSection = "creto.manifest"

// Manifest is an extension's static description (SPEC.md §2).
type Manifest struct {
	Name         string    `json:"name"`
	Version      string    `json:"version,omitempty"`
	Priority     *int      `json:"priority,omitempty"`
	Capabilities []string  `json:"capabilities,omitempty"`
	Prefilter    Prefilter `json:"prefilter,omitzero"`
	Limits       Limits    `json:"limits,omitzero"`
	OnError      string    `json:"on_error,omitempty"`
}

// Prefilter selects the requests an extension is called for.
type Prefilter struct {
	Actions        []string `json:"actions,omitempty"`
	PrincipalTypes []string `json:"principal_types,omitempty"`
	ResourceTypes  []string `json:"resource_types,omitempty"`
	// Bloom is "", "principal" or "principal_action".
	Bloom string `json:"bloom,omitempty"`
}

// Limits bound an extension's resources.
type Limits struct {
	MemoryPages uint32 `json:"memory_pages,omitempty"`
	Fuel        int64  `json:"fuel,omitempty"`
	// StartupFuel bounds an instance's start-up (its start function,
	// _initialize and creto_init): language runtimes need far more than
	// one evaluation.
	StartupFuel int64 `json:"startup_fuel,omitempty"`
}

// Defaults for fields a manifest leaves out.
const (
	DefaultPriority    = 100
	DefaultMemoryPages = 16
	DefaultFuel        = 1_000_000
	DefaultStartupFuel = 2_000_000_000
	MaxMemoryPages     = 16384 // 1 GiB
)

// Capabilities a manifest may request.
const (
	CapabilityState     = "state"
	CapabilityTime      = "time"
	CapabilityPrefilter = "prefilter"
	CapabilityNHI       = "nhi"
	// CapabilityVault uses secrets by handle (MACs), never seeing them.
	CapabilityVault = "vault"
	// CapabilityVaultReveal reads secrets' plaintext: a separate grant.
	CapabilityVaultReveal = "vault-reveal"
	// CapabilityAudit writes records to the node's audit log.
	CapabilityAudit = "audit"
	// CapabilityStorage keeps small objects in the node's encrypted
	// object storage, as the extension's own identity.
	CapabilityStorage = "storage"
	// CapabilityConsensus takes the cluster's consensus timestamps.
	CapabilityConsensus = "consensus"
)

// ErrManifest is returned for a missing or invalid manifest.
var ErrManifest = errors.New("abi: invalid manifest")

// validName reports whether s matches [a-z0-9_-]{1,64}. (No regexp:
// guests import this package, and regexp would add to their start-up.)
func validName(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ParseManifest decodes and validates a manifest and fills its defaults.
// Unknown fields are errors, so a typo is caught.
func ParseManifest(b []byte) (Manifest, error) {
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return Manifest{}, fmt.Errorf("%w: %v", ErrManifest, err)
	}
	if dec.More() {
		return Manifest{}, fmt.Errorf("%w: trailing data", ErrManifest)
	}
	if err := m.normalize(); err != nil {
		return Manifest{}, err
	}
	return m, nil
}

func (m *Manifest) normalize() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", ErrManifest, fmt.Sprintf(format, args...))
	}
	if !validName(m.Name) {
		return bad("name %q must match [a-z0-9_-]{1,64}", m.Name)
	}
	if m.Priority == nil {
		p := DefaultPriority
		m.Priority = &p
	}
	if *m.Priority < 0 {
		return bad("priority %d is negative", *m.Priority)
	}
	for _, c := range m.Capabilities {
		switch c {
		case CapabilityState, CapabilityTime, CapabilityPrefilter, CapabilityNHI, CapabilityVault, CapabilityVaultReveal,
			CapabilityAudit, CapabilityStorage, CapabilityConsensus:
		default:
			if c == "" || len(c) > 64 {
				return bad("capability %q", c)
			}
		}
	}
	switch m.Prefilter.Bloom {
	case "", "principal", "principal_action":
	default:
		return bad("prefilter.bloom %q (want principal or principal_action)", m.Prefilter.Bloom)
	}
	if m.Prefilter.Bloom != "" && !m.Has(CapabilityPrefilter) {
		return bad("prefilter.bloom needs the %q capability", CapabilityPrefilter)
	}
	if m.Limits.MemoryPages == 0 {
		m.Limits.MemoryPages = DefaultMemoryPages
	}
	if m.Limits.MemoryPages > MaxMemoryPages {
		return bad("limits.memory_pages %d is over %d", m.Limits.MemoryPages, MaxMemoryPages)
	}
	if m.Limits.Fuel == 0 {
		m.Limits.Fuel = DefaultFuel
	}
	if m.Limits.Fuel < 0 {
		return bad("limits.fuel %d is negative", m.Limits.Fuel)
	}
	if m.Limits.StartupFuel == 0 {
		m.Limits.StartupFuel = DefaultStartupFuel
	}
	if m.Limits.StartupFuel < 0 {
		return bad("limits.startup_fuel %d is negative", m.Limits.StartupFuel)
	}
	switch m.OnError {
	case "":
		// Quota-like extensions (they keep state) fail closed.
		m.OnError = "skip"
		if m.Has(CapabilityState) {
			m.OnError = "deny"
		}
	case "deny", "skip":
	default:
		return bad("on_error %q (want deny or skip)", m.OnError)
	}
	return nil
}

// Has reports whether the manifest requests a capability.
func (m *Manifest) Has(capability string) bool {
	for _, c := range m.Capabilities {
		if c == capability {
			return true
		}
	}
	return false
}

// ReadManifest finds and parses the manifest section of a module.
func ReadManifest(module []byte) (Manifest, error) {
	var found []byte
	n := 0
	err := walkSections(module, func(id byte, name string, body, _ []byte) {
		if id == 0 && name == ManifestSection {
			found = body
			n++
		}
	})
	if err != nil {
		return Manifest{}, err
	}
	switch n {
	case 0:
		return Manifest{}, fmt.Errorf("%w: the module has no %s custom section (write one with creto ext annotate)", ErrManifest, ManifestSection)
	case 1:
		return ParseManifest(found)
	default:
		return Manifest{}, fmt.Errorf("%w: the module has %d %s sections", ErrManifest, n, ManifestSection)
	}
}

// WriteManifest returns module with its manifest section (if any) replaced
// by one holding m, appended at the end (custom sections may go anywhere).
func WriteManifest(module []byte, m Manifest) ([]byte, error) {
	if err := m.normalize(); err != nil {
		return nil, err
	}
	body, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	out := append([]byte(nil), wasmHeader...)
	err = walkSections(module, func(id byte, name string, _, raw []byte) {
		if id != 0 || name != ManifestSection {
			out = append(out, raw...)
		}
	})
	if err != nil {
		return nil, err
	}
	payload := appendName(nil, ManifestSection)
	payload = append(payload, body...)
	out = append(out, 0)
	out = appendULEB(out, uint64(len(payload)))
	return append(out, payload...), nil
}

var wasmHeader = []byte{0x00, 'a', 's', 'm', 0x01, 0x00, 0x00, 0x00}

// walkSections calls fn for every section of a module, with the name of
// custom sections, the section's body and its raw bytes.
func walkSections(module []byte, fn func(id byte, name string, body, raw []byte)) error {
	if len(module) < 8 || !bytes.Equal(module[:8], wasmHeader) {
		return fmt.Errorf("%w: not a WebAssembly 1.0 binary", ErrManifest)
	}
	for pos := 8; pos < len(module); {
		id, name, body, next, err := readSection(module, pos)
		if err != nil {
			return err
		}
		fn(id, name, body, module[pos:next])
		pos = next
	}
	return nil
}

func readSection(b []byte, pos int) (id byte, name string, body []byte, next int, err error) {
	malformed := fmt.Errorf("%w: malformed section at byte %d", ErrManifest, pos)
	id = b[pos]
	size, n := readULEB(b[pos+1:])
	if n == 0 || size > uint64(len(b)-pos-1-n) {
		return 0, "", nil, 0, malformed
	}
	start := pos + 1 + n
	next = start + int(size)
	body = b[start:next]
	if id == 0 {
		nameLen, m := readULEB(body)
		if m == 0 || nameLen > uint64(len(body)-m) {
			return 0, "", nil, 0, malformed
		}
		name = string(body[m : m+int(nameLen)])
		body = body[m+int(nameLen):]
	}
	return id, name, body, next, nil
}

func readULEB(b []byte) (uint64, int) {
	var v uint64
	for i := 0; i < len(b) && i < 5; i++ {
		v |= uint64(b[i]&0x7f) << (7 * i)
		if b[i]&0x80 == 0 {
			return v, i + 1
		}
	}
	return 0, 0
}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			c |= 0x80
		}
		b = append(b, c)
		if v == 0 {
			return b
		}
	}
}

func appendName(b []byte, s string) []byte {
	return append(appendULEB(b, uint64(len(s))), s...)
}
