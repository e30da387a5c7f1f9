package memory

import (
	"strings"
	"testing"

	memoryv1 "github.com/creto-systems/creto/api/creto/memory/v1"
)

// The adapter converts memory types by number; the numbers must name the
// same types on both sides.
func TestWireMemoryTypesAreTheServices(t *testing.T) {
	for n := range memoryv1.MemoryType_name {
		p := memoryv1.MemoryType(n)
		typ, err := typeFrom(p)
		if err != nil {
			t.Fatalf("%v: %v", p, err)
		}
		if want := "MEMORY_TYPE_" + strings.ToUpper(typ.String()); p.String() != want {
			t.Errorf("wire %v is the service's %v", p, typ)
		}
	}
	if _, err := typeFrom(memoryv1.MemoryType(len(memoryv1.MemoryType_name))); err == nil {
		t.Fatal("a type the wire does not define converted")
	}
	if _, err := typeFrom(-1); err == nil {
		t.Fatal("a negative type converted")
	}
}

func TestRelevanceScoreIsInTheUnitInterval(t *testing.T) {
	for cosine, want := range map[float32]float32{-1: 0, -0.2: 0, 0: 0, 0.35: 0.35, 1: 1, 1.0000001: 1} {
		if got := relevanceScore(cosine); got != want {
			t.Errorf("relevanceScore(%v) = %v, want %v", cosine, got, want)
		}
	}
}
