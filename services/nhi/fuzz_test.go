package nhi

import (
	"bytes"
	"context"
	"errors"
	"testing"
)

// fuzzEnv is a service with one agent, one token and a two-link chain,
// whose encodings seed the fuzzers.
func fuzzEnv(f *testing.F) (*testEnv, string, *DelegationChain) {
	e := newEnv(f)
	links := chainOf(e, 2)
	tok := e.token("a0", 0)
	chain, err := e.s.VerifyDelegation(context.Background(), links[1].ID())
	if err != nil {
		f.Fatal(err)
	}
	return e, tok, chain
}

// FuzzResolveToken feeds arbitrary strings to ResolveToken: nothing but the
// genuine token may resolve, and every failure is one of the token errors.
func FuzzResolveToken(f *testing.F) {
	e, tok, _ := fuzzEnv(f)
	raw, _ := tokenEncoding.DecodeString(tok)
	f.Add(tok)
	f.Add(tok[:len(tok)-4])
	f.Add(tok + "AAAA")
	f.Add(tokenEncoding.EncodeToString(raw[:tokenFixedSize+2]))
	f.Add("")
	f.Add("AQIDBA")
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, s string) {
		a, err := e.s.ResolveToken(ctx, s)
		if err == nil {
			if s != tok || a.ID != "a0" {
				t.Fatalf("accepted a token other than the one issued")
			}
			return
		}
		for _, want := range []error{ErrTokenMalformed, ErrTokenForged, ErrTokenExpired, ErrTokenRevoked} {
			if errors.Is(err, want) {
				return
			}
		}
		t.Fatalf("untyped error: %v", err)
	})
}

// FuzzParseToken checks the binary decoder alone, at full speed: it never
// panics, and whatever it accepts re-encodes to the same bytes.
func FuzzParseToken(f *testing.F) {
	_, tok, _ := fuzzEnv(f)
	raw, _ := tokenEncoding.DecodeString(tok)
	f.Add(raw)
	f.Add(raw[:tokenFixedSize])
	f.Add([]byte{tokenVersion, 0x02, 0x03})
	f.Fuzz(func(t *testing.T, b []byte) {
		c, body, sig, err := parseToken(b)
		if err != nil {
			return
		}
		if !bytes.Equal(append(c.appendBody(nil), sig...), b) || !bytes.Equal(body, b[:len(body)]) {
			t.Fatal("parsed token does not re-encode to its input")
		}
	})
}

// FuzzDecodeDelegation: no panics, typed errors, canonical re-encoding.
func FuzzDecodeDelegation(f *testing.F) {
	_, _, chain := fuzzEnv(f)
	for _, l := range chain.Links() {
		enc := l.Encode()
		f.Add(enc)
		f.Add(enc[:len(enc)-signatureSize])
	}
	f.Add([]byte{delegationVersion})
	f.Fuzz(func(t *testing.T, b []byte) {
		d, err := DecodeDelegation(b)
		if err != nil {
			if !errors.Is(err, ErrDelegationMalformed) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !bytes.Equal(d.Encode(), b) || !bytes.Equal(append(d.appendBody(nil), d.signature()...), b) {
			t.Fatal("decoded delegation does not re-encode to its input")
		}
	})
}

// FuzzVerifyChain decodes arbitrary chains and verifies what decodes: only
// the genuine chain, byte for byte, may verify.
func FuzzVerifyChain(f *testing.F) {
	e, _, chain := fuzzEnv(f)
	good := chain.Encode()
	f.Add(good)
	f.Add(good[:len(good)/2])
	f.Add([]byte{chainVersion, 1, 0, 0})
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := DecodeDelegationChain(b)
		if err != nil {
			if !errors.Is(err, ErrDelegationMalformed) {
				t.Fatalf("untyped error: %v", err)
			}
			return
		}
		if !bytes.Equal(c.Encode(), b) {
			t.Fatal("decoded chain does not re-encode to its input")
		}
		if _, err := e.s.VerifyChain(ctx, c); err == nil && !bytes.Equal(b, good) {
			t.Fatal("verified a chain other than the one created")
		}
	})
}
