package nhi

import (
	"testing"

	nhiv1 "github.com/creto-systems/creto/api/creto/nhi/v1"
)

// Every agent type and status the wire defines converts, and back.
func TestWireEnumsCoverTheService(t *testing.T) {
	for n := range nhiv1.AgentType_name {
		p := nhiv1.AgentType(n)
		typ, err := typeFrom(p)
		if p == nhiv1.AgentType_AGENT_TYPE_UNSPECIFIED {
			if err == nil {
				t.Fatal("an unspecified type converted")
			}
			continue
		}
		if err != nil || !typ.valid() || agentProto(AgentIdentity{Type: typ}).GetType() != p {
			t.Errorf("%v: %q %v", p, typ, err)
		}
	}
	for n := range nhiv1.AgentStatus_name {
		p := nhiv1.AgentStatus(n)
		st, err := statusFrom(p)
		if p == nhiv1.AgentStatus_AGENT_STATUS_UNSPECIFIED {
			if err == nil {
				t.Fatal("an unspecified status converted")
			}
			continue
		}
		if err != nil || agentProto(AgentIdentity{Status: st}).GetStatus() != p {
			t.Errorf("%v: %q %v", p, st, err)
		}
	}
}
