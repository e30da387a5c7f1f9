package nhi

import (
	"context"
	"fmt"
	"testing"
)

// BenchmarkFindGrant is the cost of the memory service's cross-agent
// check: find the chain from an owner to a reader in the grant index and
// verify it. The anchor, in the same run, is VerifyDelegation of the same
// chain by id, which a caller that already knows the id would pay. Link
// signatures are in the verified-link cache in both, as they are after a
// chain's first use. "crowded" gives the reader 100 more grants from other
// owners, which the index skips by their root.
//
// go test -run '^$' -bench FindGrant -benchmem ./services/nhi/
func BenchmarkFindGrant(b *testing.B) {
	ctx := context.Background()
	e := newEnv(b)
	for _, id := range []string{"owner", "m1", "m2", "reader"} {
		e.register(id, "alice")
	}
	direct := e.delegate("owner", "reader", []string{"memory:read"}, nil)
	l1 := e.delegate("owner", "m1", []string{"memory:read", "memory:write"}, nil)
	l2 := e.delegate("m1", "m2", []string{"memory:read", "memory:write"}, l1)
	deep := e.delegate("m2", "reader", []string{"memory:write"}, l2)
	for hops, c := range map[int]struct {
		perm string
		last *Delegation
	}{1: {"memory:read", direct}, 3: {"memory:write", deep}} {
		b.Run(fmt.Sprintf("verify-delegation/%d-hop", hops), func(b *testing.B) {
			for b.Loop() {
				if _, err := e.s.VerifyDelegation(ctx, c.last.ID()); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("find-grant/%d-hop", hops), func(b *testing.B) {
			for b.Loop() {
				if _, err := e.s.FindGrant(ctx, "reader", "owner", c.perm); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	for i := range 100 {
		other := fmt.Sprintf("other-%d", i)
		e.register(other, "bob")
		e.delegate(other, "reader", []string{"memory:read"}, nil)
	}
	b.Run("find-grant/1-hop-crowded", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.s.FindGrant(ctx, "reader", "owner", "memory:read"); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("find-grant/none", func(b *testing.B) {
		for b.Loop() {
			if _, err := e.s.FindGrant(ctx, "reader", "nobody", "memory:read"); err == nil {
				b.Fatal("found a grant from nobody")
			}
		}
	})
}
