package vault

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/creto-systems/creto/internal/kv"
)

func TestConfigDefaultsAndLimits(t *testing.T) {
	s, err := Config{}.resolve()
	must(t, err)
	if s.defaultTTL != time.Hour || s.maxTTL != 24*time.Hour || !s.memoryOnly || !s.auditAll || s.MaxVersions != 10 ||
		s.generators[TypePassword] == nil || s.generators[TypeCertificate] != nil {
		t.Fatalf("defaults: %+v", s)
	}
	if _, ok := s.Authorizer.(OwnerOnly); !ok {
		t.Fatal("the default authorizer is not OwnerOnly")
	}
	no := false
	if s, _ := (Config{RequireMemoryOnly: &no, AuditAllAccess: &no}).resolve(); s.memoryOnly || s.auditAll {
		t.Fatal("explicit false ignored")
	}
	store, err := kv.Open(t.TempDir())
	must(t, err)
	defer store.Close()
	for name, c := range map[string]Config{
		"max TTL under default": {DefaultDelegationTTLSeconds: 7200, MaxDelegationTTLSeconds: 3600},
		"negative TTL":          {DefaultDelegationTTLSeconds: -1},
		"negative max versions": {MaxVersions: -1},
		"too many versions":     {MaxVersions: 1001},
		"oversize values":       {MaxValueBytes: 2 << 20},
		"too many refs":         {MaxRefs: 1001},
		"negative labels":       {MaxLabels: -1},
		"rotation under 1s":     {MinRotationInterval: time.Millisecond},
		"scheduler too fast":    {SchedulerInterval: time.Millisecond},
		"negative retention":    {DelegationRetention: -time.Hour},
		"generator for nothing": {Generators: map[SecretType]Generator{TypeUnspecified: GeneratorFunc(randomToken)}},
		"nil generator":         {Generators: map[SecretType]Generator{TypeCertificate: nil}},
	} {
		if _, err := Open(context.Background(), store, c); err == nil {
			t.Errorf("%s: accepted", name)
		} else {
			wantErr(t, err, ErrInvalidArgument)
		}
	}
}

// The TOML keys of the seed's [vault] section are the Config's.
func TestConfigTOMLKeys(t *testing.T) {
	tags := map[string]bool{}
	ct := reflect.TypeFor[Config]()
	for i := range ct.NumField() {
		tags[ct.Field(i).Tag.Get("toml")] = true
	}
	for _, key := range []string{"default_delegation_ttl_seconds", "max_delegation_ttl_seconds", "require_memory_only", "audit_all_access"} {
		if !tags[key] {
			t.Errorf("no field for [vault] %s", key)
		}
	}
}
