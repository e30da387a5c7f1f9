package authz

import (
	"testing"

	"github.com/cedar-policy/cedar-go/types"

	"github.com/creto-systems/creto/engine"
)

// TestParseRefAgreesWithCedar holds the fast path of parseRef to Cedar's
// own parser on every form, plain and escaped.
func TestParseRefAgreesWithCedar(t *testing.T) {
	for _, s := range []string{
		`Document::"q3"`, `Acme::Doc::"a b"`, `A::"x::y"`, `T::""`, `T1::"é"`,
		`T::"a\"b"`, `T::"a\\b"`, `T::"\u{e9}"`, `1T::"x"`, `T ::"x"`, `::"x"`, `T::x`, `T::"x`, `T::"x" `,
	} {
		got, err := parseRef(s, "Resource")
		var uid types.EntityUID
		cerr := uid.UnmarshalCedar([]byte(s))
		if (err != nil) != (cerr != nil) {
			t.Errorf("%s: parseRef error %v, Cedar error %v", s, err, cerr)
			continue
		}
		if err == nil && got != (engine.EntityRef{Type: string(uid.Type), ID: string(uid.ID)}) {
			t.Errorf("%s: parseRef %+v, Cedar %v", s, got, uid)
		}
	}
	if got, err := parseRef("plain", "Resource"); err != nil || got != (engine.EntityRef{Type: "Resource", ID: "plain"}) {
		t.Errorf("bare id: %+v %v", got, err)
	}
	if _, err := parseRef("", "Resource"); err == nil {
		t.Error("empty reference accepted")
	}
}
