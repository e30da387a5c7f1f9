package nhi

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"
)

// Readers (tokens, signatures, chains, entity views) run against writers
// (registration, rotation, revocation); run with -race. A reader may see a
// state before or after each write, but never an error other than the
// typed ones those writes explain.
func TestConcurrentUse(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	links := chainOf(e, 3)
	tok := e.token("a3", 0)
	p := e.s.Entities(nil)
	var wg sync.WaitGroup
	stop := make(chan struct{})
	reader := func(name string, f func() error) {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				if err := f(); err != nil {
					t.Errorf("%s: %v", name, err)
					return
				}
			}
		})
	}
	reader("resolve", func() error {
		_, err := e.s.ResolveToken(ctx, tok)
		if errors.Is(err, ErrTokenRevoked) {
			return nil
		}
		return err
	})
	reader("sign", func() error {
		_, err := e.s.Sign(ctx, "a0", []byte("m"))
		return err
	})
	reader("verify chain", func() error {
		_, err := e.s.VerifyDelegation(ctx, links[2].ID())
		if errors.Is(err, ErrDelegationRevoked) {
			return nil
		}
		return err
	})
	reader("view", func() error {
		v := p.View()
		if _, ok := v.Get(agentUID("a0")); !ok {
			return errors.New("a0 missing from the view")
		}
		return nil
	})
	for i := range 5 {
		e.register(fmt.Sprintf("extra%d", i), "bob")
		if _, err := e.s.RotateKeys(ctx, "a0", time.Hour); err != nil {
			t.Error(err)
		}
	}
	if err := e.s.Revoke(ctx, "a3"); err != nil {
		t.Error(err)
	}
	if err := e.s.RevokeDelegation(ctx, links[1].ID()); err != nil {
		t.Error(err)
	}
	close(stop)
	wg.Wait()
}
