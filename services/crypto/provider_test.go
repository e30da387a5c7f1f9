package crypto

import (
	"bytes"
	"fmt"
	"sync"
	"testing"
)

// One parsed key serves many requests at once; run with -race to prove the
// keys are only read.
func TestConcurrentUseOfSharedKeys(t *testing.T) {
	p := New()
	var sigKeys, kemKeys []*PrivateKey
	for _, alg := range signatureAlgorithms {
		k, err := p.GenerateKey(alg)
		mustNoErr(t, err)
		sigKeys = append(sigKeys, k)
	}
	for _, alg := range kemAlgorithms {
		k, err := p.GenerateKey(alg)
		mustNoErr(t, err)
		kemKeys = append(kemKeys, k)
	}
	sym, err := p.GenerateSymmetricKey(DefaultAEAD)
	mustNoErr(t, err)

	const workers, rounds = 8, 4
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for r := range rounds {
				msg := fmt.Appendf(nil, "worker %d round %d", w, r)
				for _, k := range sigKeys {
					sig, err := p.Sign(k, msg, nil)
					if err == nil {
						err = p.Verify(k.Public(), msg, nil, sig)
					}
					if err != nil {
						errs <- err
						return
					}
				}
				for _, k := range kemKeys {
					ss, ct, err := p.Encapsulate(k.Public())
					if err != nil {
						errs <- err
						return
					}
					got, err := p.Decapsulate(k, ct)
					if err != nil || !bytes.Equal(got, ss) {
						errs <- fmt.Errorf("%v: decapsulation mismatch (%v)", k.Algorithm(), err)
						return
					}
				}
				ct, err := p.Encrypt(sym, msg, nil)
				if err == nil {
					_, err = p.Decrypt(sym, ct, nil)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}
