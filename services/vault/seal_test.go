package vault

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/creto-systems/creto/internal/kv"
	"github.com/creto-systems/creto/services/nhi"
)

var bg = context.Background()

func TestUninitializedVaultServesNothing(t *testing.T) {
	f := newSealedFixture(t, Config{})
	st, err := f.svc.Status(bg)
	must(t, err)
	if st.Initialized || !st.Sealed {
		t.Fatalf("status %+v", st)
	}
	_, err = f.svc.GetSecret(bg, "a", GetSecretRequest{Ref: ref("agents/a", "K")})
	wantErr(t, err, ErrSealed, ErrNotInitialized)
	_, err = f.svc.SubmitUnsealShares(bg, "x")
	wantErr(t, err, ErrNotInitialized)
	wantErr(t, f.svc.Seal(bg), ErrNotInitialized)
	wantErr(t, f.svc.UnsealWithBackend(bg, downHSM{}), ErrNotInitialized)
	for _, bad := range [][2]int{{0, 3}, {4, 3}, {2, 256}} {
		_, err := f.svc.InitShamir(bg, bad[0], bad[1])
		wantErr(t, err, ErrInvalidArgument)
	}
	if len(f.dump("vault/")) != 0 {
		t.Fatal("failed calls wrote to the store")
	}
}

func TestShamirInitAndUnseal(t *testing.T) {
	f := newSealedFixture(t, Config{})
	shares, err := f.svc.InitShamir(bg, 3, 5)
	must(t, err)
	if len(shares) != 5 {
		t.Fatalf("%d shares", len(shares))
	}
	seen := map[string]bool{}
	for _, s := range shares {
		if seen[s] || len(s) != 88 {
			t.Fatalf("share %d chars or repeated", len(s))
		}
		seen[s] = true
	}
	// Shares are handed out once: a second Init of either kind fails and
	// changes nothing.
	before := f.dump("vault/")
	_, err = f.svc.InitShamir(bg, 3, 5)
	wantErr(t, err, ErrAlreadyInitialized)
	wantErr(t, f.svc.InitWithBackend(bg, downHSM{}), ErrAlreadyInitialized)
	if after := f.dump("vault/"); len(after) != len(before) || string(after[keySeal]) != string(before[keySeal]) {
		t.Fatal("a second Init changed the seal record")
	}

	st, _ := f.svc.Status(bg)
	if !st.Initialized || !st.Sealed || st.Mode != "shamir" || st.Threshold != 3 || st.Shares != 5 || st.Progress != 0 {
		t.Fatalf("status %+v", st)
	}
	_, err = f.svc.CreateSecret(bg, "a", CreateSecretRequest{Ref: ref("agents/a", "K"), Value: val("v"), Metadata: SecretMetadata{Type: TypeGeneric}})
	wantErr(t, err, ErrSealed)

	st, err = f.svc.SubmitUnsealShares(bg, shares[0])
	must(t, err)
	if !st.Sealed || st.Progress != 1 {
		t.Fatalf("after one share: %+v", st)
	}
	// The share held in memory never prints, whatever prints the service.
	_, _, held, err := f.svc.decodeShare(shares[0])
	must(t, err)
	for _, verb := range []string{"%v", "%+v", "%s", "%x", "%d"} {
		out := fmt.Sprintf(verb, f.svc)
		if strings.Contains(out, fmt.Sprintf("%x", held.Value())) || strings.Contains(out, strings.Trim(fmt.Sprint(held.Value()), "[]")) {
			t.Fatalf("%s of the service prints an unseal share", verb)
		}
	}

	other := newSealedFixture(t, Config{})
	foreign, err := other.svc.InitShamir(bg, 3, 5)
	must(t, err)
	typo := []byte(shares[1])
	typo[40] = map[bool]byte{true: 'b', false: 'a'}[typo[40] == 'a']
	for name, tc := range map[string]struct {
		shares []string
		reason error
		pos    int
	}{
		"duplicate of a given share":   {[]string{shares[0]}, ErrShareDuplicate, 0},
		"duplicate within the call":    {[]string{shares[1], shares[1]}, ErrShareDuplicate, 1},
		"typo":                         {[]string{string(typo)}, ErrShareMalformed, 0},
		"truncated":                    {[]string{shares[1][:80]}, ErrShareMalformed, 0},
		"empty":                        {[]string{""}, ErrShareMalformed, 0},
		"garbage":                      {[]string{strings.Repeat("!", 88)}, ErrShareMalformed, 0},
		"another vault's share":        {[]string{foreign[1]}, ErrShareForeign, 0},
		"altered, checksum recomputed": {[]string{alterShare(t, f.svc, shares[1])}, ErrShareWrong, 0},
		"good then bad":                {[]string{shares[1], foreign[2]}, ErrShareForeign, 1},
	} {
		st, err := f.svc.SubmitUnsealShares(bg, tc.shares...)
		wantErr(t, err, ErrInvalidShare, tc.reason)
		var se *ShareError
		if !errors.As(err, &se) || se.Position != tc.pos {
			t.Fatalf("%s: %v", name, err)
		}
		if !st.Sealed || st.Progress != 1 {
			t.Fatalf("%s: a refused call counted shares: %+v", name, st)
		}
		if strings.Contains(err.Error(), tc.shares[0]) && tc.shares[0] != "" {
			t.Fatalf("%s: the error carries the share", name)
		}
	}

	// Case, spaces and dashes do not matter; two more shares unseal.
	spaced := strings.ToUpper(shares[3][:40]) + " - " + shares[3][40:]
	st, err = f.svc.SubmitUnsealShares(bg, spaced, shares[4])
	must(t, err)
	if st.Sealed || st.Progress != 0 {
		t.Fatalf("after the quorum: %+v", st)
	}
	f.create("a", ref("agents/a", "K"), "v1")

	// Seal wipes the key: everything fails until another quorum unseals.
	must(t, f.svc.Seal(bg))
	_, err = f.get("a", ref("agents/a", "K"))
	wantErr(t, err, ErrSealed)
	if f.svc.root != nil || len(f.svc.progress) != 0 {
		t.Fatal("Seal left key material")
	}
	must(t, f.svc.Seal(bg)) // sealing twice is harmless
	for _, i := range []int{4, 1, 2} {
		st, err = f.svc.SubmitUnsealShares(bg, shares[i])
		must(t, err)
	}
	if st.Sealed {
		t.Fatal("a second quorum did not unseal")
	}
	if v, err := f.get("a", ref("agents/a", "K")); err != nil || v != "v1" {
		t.Fatalf("after reseal: %q %v", v, err)
	}

	// ResetUnseal discards partial progress.
	must(t, f.svc.Seal(bg))
	_, err = f.svc.SubmitUnsealShares(bg, shares[0])
	must(t, err)
	f.svc.ResetUnseal()
	st, _ = f.svc.Status(bg)
	if st.Progress != 0 {
		t.Fatalf("progress %d after reset", st.Progress)
	}
}

// alterShare changes a share's value and recomputes its checksum: well
// formed, names this vault, but not a share Init made.
func alterShare(t *testing.T, s *Service, text string) string {
	initID, threshold, sh, err := s.decodeShare(text)
	must(t, err)
	sh.Value()[5] ^= 0x10
	return encodeShare(initID, threshold, sh)
}

func TestRestartStartsSealed(t *testing.T) {
	f := newFixture(t, Config{})
	f.create("a", ref("agents/a", "K"), "v1")
	f.close()
	f.open()
	st, _ := f.svc.Status(bg)
	if !st.Initialized || !st.Sealed {
		t.Fatalf("after restart: %+v", st)
	}
	_, err := f.get("a", ref("agents/a", "K"))
	wantErr(t, err, ErrSealed)
	f.unseal()
	if v, err := f.get("a", ref("agents/a", "K")); err != nil || v != "v1" {
		t.Fatalf("%q %v", v, err)
	}
}

// The node's key file (nhi.FileSealer) is the software key backend.
func TestKeyFileBackend(t *testing.T) {
	f := newSealedFixture(t, Config{})
	key, err := nhi.CreateFileSealer(filepath.Join(t.TempDir(), "vault.key"))
	must(t, err)
	defer key.Close()
	must(t, f.svc.InitWithBackend(bg, key))
	st, _ := f.svc.Status(bg)
	if !st.Sealed || st.Mode != "backend" {
		t.Fatalf("after init: %+v", st)
	}
	_, err = f.svc.SubmitUnsealShares(bg, "whatever")
	wantErr(t, err, ErrUnsealFailed)

	other, err := nhi.CreateFileSealer(filepath.Join(t.TempDir(), "other.key"))
	must(t, err)
	defer other.Close()
	wantErr(t, f.svc.UnsealWithBackend(bg, other), ErrUnsealFailed)
	if st, _ := f.svc.Status(bg); !st.Sealed {
		t.Fatal("the wrong key file unsealed")
	}
	must(t, f.svc.UnsealWithBackend(bg, key))
	must(t, f.svc.UnsealWithBackend(bg, key)) // no-op when unsealed
	f.create("a", ref("agents/a", "K"), "v1")

	// A Shamir vault is not opened by a backend.
	g := newFixture(t, Config{})
	must(t, g.svc.Seal(bg))
	wantErr(t, g.svc.UnsealWithBackend(bg, key), ErrUnsealFailed)
}

// downHSM is a KeyBackend whose device is unreachable.
type downHSM struct{}

func (downHSM) Seal(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errors.Join(ErrHSMUnavailable, errors.New("pkcs11: C_OpenSession: CKR_DEVICE_REMOVED"))
}

func (downHSM) Unseal(context.Context, []byte, []byte) ([]byte, error) {
	return nil, errors.Join(ErrHSMUnavailable, errors.New("pkcs11: C_OpenSession: CKR_DEVICE_REMOVED"))
}

// flakyHSM is a real key (a key file) behind a device that can go away.
type flakyHSM struct {
	*nhi.FileSealer
	mu   sync.Mutex
	down bool
}

func (h *flakyHSM) Unseal(ctx context.Context, sealed, label []byte) ([]byte, error) {
	h.mu.Lock()
	down := h.down
	h.mu.Unlock()
	if down {
		return downHSM{}.Unseal(ctx, sealed, label)
	}
	return h.FileSealer.Unseal(ctx, sealed, label)
}

func TestHSMUnavailable(t *testing.T) {
	f := newSealedFixture(t, Config{})
	wantErr(t, f.svc.InitWithBackend(bg, downHSM{}), ErrHSMUnavailable)
	if st, _ := f.svc.Status(bg); st.Initialized {
		t.Fatal("an Init whose backend failed initialized the vault")
	}
	key, err := nhi.CreateFileSealer(filepath.Join(t.TempDir(), "hsm.key"))
	must(t, err)
	defer key.Close()
	hsm := &flakyHSM{FileSealer: key}
	must(t, f.svc.InitWithBackend(bg, hsm))
	hsm.down = true
	err = f.svc.UnsealWithBackend(bg, hsm)
	wantErr(t, err, ErrHSMUnavailable)
	if errors.Is(err, ErrUnsealFailed) {
		t.Fatal("an unreachable device reads as a wrong key")
	}
	if st, _ := f.svc.Status(bg); !st.Sealed {
		t.Fatal("unsealed without the device")
	}
	hsm.down = false
	must(t, f.svc.UnsealWithBackend(bg, hsm))
}

func TestTamperedSealRecord(t *testing.T) {
	f := newFixture(t, Config{})
	rec := f.dump(keySeal)[keySeal]
	write := func(b []byte) {
		var batch kv.Batch
		batch.Set([]byte(keySeal), b)
		must(t, f.store.Apply(bg, &batch))
	}

	// A flipped byte in the wrapped root key: the shares still match
	// their digests, but do not open the key.
	bad := append([]byte(nil), rec...)
	bad[len(bad)-12] ^= 1
	f.close()
	f.open()
	write(bad)
	f.close()
	f.open()
	_, err := f.svc.SubmitUnsealShares(bg, f.shares[0], f.shares[1])
	wantErr(t, err, ErrUnsealFailed)
	if st, _ := f.svc.Status(bg); !st.Sealed || st.Progress != 0 {
		t.Fatalf("status %+v", st)
	}

	// A flipped share digest: that share is refused as wrong.
	bad = append([]byte(nil), rec...)
	bad[1+1+initIDSize+2] ^= 1 // first byte of share 1's digest
	write(bad)
	f.close()
	f.open()
	_, err = f.svc.SubmitUnsealShares(bg, f.shares[0])
	wantErr(t, err, ErrShareWrong)

	// A truncated record fails Open.
	write(rec[:10])
	f.close()
	store, err := kv.Open(f.dir)
	must(t, err)
	defer store.Close()
	_, err = Open(bg, store, Config{})
	wantErr(t, err, ErrCorrupt)
}

// Operations racing Seal and unseal either succeed or fail with
// ErrSealed; none sees a half-wiped key (run with -race).
func TestSealRacesOperations(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/a", "K")
	f.create("a", r, "v1")
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 4 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				v, err := f.get("a", r)
				if err != nil && !errors.Is(err, ErrSealed) {
					t.Errorf("get: %v", err)
					return
				}
				if err == nil && v != "v1" {
					t.Errorf("got %q", v)
					return
				}
			}
		})
	}
	for range 20 {
		must(t, f.svc.Seal(bg))
		f.unseal()
	}
	close(stop)
	wg.Wait()
}
