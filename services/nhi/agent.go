package nhi

import (
	"encoding/json"
	"fmt"
	"maps"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/creto-systems/creto/internal/agentid"
)

// AgentType says what kind of agent an identity belongs to.
type AgentType string

// Agent types.
const (
	// AgentTypeAutonomous acts on its own schedule toward a goal.
	AgentTypeAutonomous AgentType = "autonomous"
	// AgentTypeAssistant acts in a conversation with a human.
	AgentTypeAssistant AgentType = "assistant"
	// AgentTypeService is a non-AI workload: a job, a daemon, a pipeline.
	AgentTypeService AgentType = "service"
	// AgentTypeWorkflow is a step of an orchestrated multi-agent workflow.
	AgentTypeWorkflow AgentType = "workflow"
)

func (t AgentType) valid() bool {
	switch t {
	case AgentTypeAutonomous, AgentTypeAssistant, AgentTypeService, AgentTypeWorkflow:
		return true
	}
	return false
}

// AgentStatus is where an identity is in its lifecycle.
type AgentStatus string

// Agent statuses. Active and suspended may alternate; revoked is final.
const (
	StatusActive    AgentStatus = "active"
	StatusSuspended AgentStatus = "suspended"
	StatusRevoked   AgentStatus = "revoked"
)

// Input limits. They keep a single identity small enough that every agent
// of a node fits in memory and every id fits a one-byte length prefix.
const (
	MaxIDLength             = 128
	MaxNameLength           = 256
	MaxAttributes           = 64
	MaxAttributeKeyLength   = 64
	MaxAttributeValueLength = 1024
)

// ExtensionIDPrefix starts the identities the node gives Wasm extensions
// ("extension:quota") when they act in other services, such as the vault
// and storage. Register refuses it and only RegisterExtension creates such
// ids, so no agent can pass for an extension.
const ExtensionIDPrefix = "extension:"

// reservedAttributes are the attribute names the entity provider fills in
// itself; an agent attribute of the same name would shadow them.
var reservedAttributes = map[string]bool{
	"name": true, "type": true, "owner": true, "status": true,
	"created_at": true, "expires_at": true,
}

// AgentIdentity is a registered agent (seed §6.2 AgentIdentity). Values
// returned by the service are copies: changing one changes nothing stored.
type AgentIdentity struct {
	// ID is unique on the node and never reused, even after revocation.
	ID string
	// Name is for humans; it need not be unique.
	Name string
	Type AgentType
	// OwnerID is the human or organisation accountable for the agent.
	OwnerID string
	// Status is set by the service: Register makes an agent active.
	Status    AgentStatus
	CreatedAt time.Time
	// ExpiresAt is when the identity stops being valid; zero means never.
	ExpiresAt time.Time
	// Attributes are free-form facts policies can read, such as a team or
	// an environment. Keys are Cedar identifiers.
	Attributes map[string]string
}

// AgentUpdate changes an agent. Nil fields are left as they are; the id,
// type, owner and creation time never change.
type AgentUpdate struct {
	Name *string
	// Status may move between active and suspended; revocation is Revoke.
	Status *AgentStatus
	// ExpiresAt replaces the expiry; a pointer to the zero time removes it.
	ExpiresAt *time.Time
	// Attributes, when not nil, replace every attribute.
	Attributes map[string]string
}

// ListOptions filters and pages List.
type ListOptions struct {
	// OwnerID, when set, keeps only agents of this owner.
	OwnerID string
	// Status, when set, keeps only agents in this status.
	Status AgentStatus
	// After starts the listing after this agent id (the last id of the
	// previous page).
	After string
	// Limit caps the page size; 0 means 100, and at most 1000 are returned.
	Limit int
}

func (a *AgentIdentity) clone() AgentIdentity {
	c := *a
	c.Attributes = maps.Clone(a.Attributes)
	return c
}

// expiredAt reports whether the identity has expired at ms (unix millis).
func (a *AgentIdentity) expiredAt(ms int64) bool {
	return !a.ExpiresAt.IsZero() && ms >= a.ExpiresAt.UnixMilli()
}

// usableAt returns nil if the agent may act at ms, or the reason it may
// not: ErrRevoked, ErrSuspended or ErrExpired.
func (a *AgentIdentity) usableAt(ms int64) error {
	switch {
	case a.Status == StatusRevoked:
		return ErrRevoked
	case a.Status == StatusSuspended:
		return ErrSuspended
	case a.expiredAt(ms):
		return ErrExpired
	}
	return nil
}

// validateID checks an agent id: printable UTF-8 without spaces, so ids
// are safe in store keys, error messages and Cedar entity ids alike.
func validateID(what, id string) error {
	if err := agentid.Check(id, MaxIDLength); err != nil {
		return detail(ErrInvalidArgument, "%s %v", what, err)
	}
	return nil
}

func validateName(name string) error {
	switch {
	case len(name) > MaxNameLength:
		return detail(ErrInvalidArgument, "name is %d bytes, limit %d", len(name), MaxNameLength)
	case !utf8.ValidString(name):
		return detail(ErrInvalidArgument, "name is not valid UTF-8")
	}
	for _, r := range name {
		if unicode.IsControl(r) {
			return detail(ErrInvalidArgument, "name contains a control character")
		}
	}
	return nil
}

func validateAttributes(attrs map[string]string) error {
	if len(attrs) > MaxAttributes {
		return detail(ErrInvalidArgument, "%d attributes, limit %d", len(attrs), MaxAttributes)
	}
	for k, v := range attrs {
		if err := validateAttributeKey(k); err != nil {
			return err
		}
		if len(v) > MaxAttributeValueLength || !utf8.ValidString(v) {
			return detail(ErrInvalidArgument, "attribute %s: value must be valid UTF-8 of at most %d bytes", quote(k), MaxAttributeValueLength)
		}
	}
	return nil
}

// validateAttributeKey requires a Cedar identifier, so a policy can read
// every attribute as principal.<key>.
func validateAttributeKey(k string) error {
	if k == "" || len(k) > MaxAttributeKeyLength {
		return detail(ErrInvalidArgument, "attribute name must be 1 to %d bytes", MaxAttributeKeyLength)
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		letter := c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')
		if !letter && (i == 0 || c < '0' || c > '9') {
			return detail(ErrInvalidArgument, "attribute name %s is not an identifier ([A-Za-z_][A-Za-z0-9_]*)", quote(k))
		}
	}
	if reservedAttributes[k] {
		return detail(ErrInvalidArgument, "attribute name %s is reserved", quote(k))
	}
	return nil
}

// validateNew checks everything a caller supplies to Register.
func (a *AgentIdentity) validateNew(nowMS int64) error {
	if err := validateID("agent id", a.ID); err != nil {
		return err
	}
	if err := validateID("owner id", a.OwnerID); err != nil {
		return err
	}
	if !a.Type.valid() {
		return detail(ErrInvalidArgument, "unknown agent type %s", quote(string(a.Type)))
	}
	if a.Status != "" && a.Status != StatusActive {
		return detail(ErrInvalidArgument, "a new agent is active; status %s cannot be registered", quote(string(a.Status)))
	}
	if err := validateName(a.Name); err != nil {
		return err
	}
	if !a.ExpiresAt.IsZero() && a.ExpiresAt.UnixMilli() <= nowMS {
		return detail(ErrInvalidArgument, "expiry is in the past")
	}
	return validateAttributes(a.Attributes)
}

// agentRecord is the stored form of an identity. JSON keeps the record
// readable in a store dump; times are unix milliseconds.
type agentRecord struct {
	V          int               `json:"v"`
	ID         string            `json:"id"`
	Name       string            `json:"name,omitempty"`
	Type       AgentType         `json:"type"`
	OwnerID    string            `json:"owner"`
	Status     AgentStatus       `json:"status"`
	CreatedAt  int64             `json:"created_ms"`
	ExpiresAt  int64             `json:"expires_ms,omitempty"`
	Attributes map[string]string `json:"attrs,omitempty"`
}

const agentRecordVersion = 1

func encodeAgent(a *AgentIdentity) []byte {
	r := agentRecord{
		V: agentRecordVersion, ID: a.ID, Name: a.Name, Type: a.Type, OwnerID: a.OwnerID,
		Status: a.Status, CreatedAt: a.CreatedAt.UnixMilli(), Attributes: a.Attributes,
	}
	if !a.ExpiresAt.IsZero() {
		r.ExpiresAt = a.ExpiresAt.UnixMilli()
	}
	b, err := json.Marshal(r)
	if err != nil {
		// Every field is a string, an int or a string map.
		panic(fmt.Sprintf("nhi: encode agent: %v", err))
	}
	return b
}

func decodeAgent(b []byte) (*AgentIdentity, error) {
	var r agentRecord
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, err
	}
	if r.V != agentRecordVersion {
		return nil, fmt.Errorf("agent record version %d, want %d", r.V, agentRecordVersion)
	}
	a := &AgentIdentity{
		ID: r.ID, Name: r.Name, Type: r.Type, OwnerID: r.OwnerID, Status: r.Status,
		CreatedAt: time.UnixMilli(r.CreatedAt).UTC(), Attributes: r.Attributes,
	}
	if r.ExpiresAt != 0 {
		a.ExpiresAt = time.UnixMilli(r.ExpiresAt).UTC()
	}
	return a, nil
}
