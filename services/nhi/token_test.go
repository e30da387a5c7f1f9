package nhi

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

func TestTokenIssueAndResolve(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	tok := e.token("a", 0)
	for i := range 2 { // the second resolution is a cache hit
		a, err := e.s.ResolveToken(ctx, tok)
		if err != nil {
			t.Fatalf("resolve %d: %v", i, err)
		}
		if a.ID != "a" || a.OwnerID != "alice" || a.Status != StatusActive {
			t.Fatalf("resolved %+v", a)
		}
	}
	raw, err := tokenEncoding.DecodeString(tok)
	if err != nil {
		t.Fatal(err)
	}
	c, _, _, err := parseToken(raw)
	if err != nil {
		t.Fatal(err)
	}
	nowMS := e.clock.Now().UnixMilli()
	if c.issuedAt != nowMS || c.expiresAt != nowMS+DefaultConfig().DefaultTokenTTL.Milliseconds() || c.agentID != "a" || c.keyVersion != 1 {
		t.Fatalf("claims %+v", c)
	}
	if tok2 := e.token("a", 0); tok2 == tok {
		t.Fatal("two tokens issued in the same millisecond are identical")
	}
}

func TestIssueTokenRules(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	for _, ttl := range []time.Duration{-time.Second, DefaultConfig().MaxTokenTTL + time.Millisecond, time.Microsecond} {
		_, err := e.s.IssueToken(ctx, "a", ttl)
		wantErr(t, "ttl "+ttl.String(), err, ErrInvalidArgument)
	}
	_, err := e.s.IssueToken(ctx, "nobody", 0)
	wantErr(t, "unknown agent", err, ErrNotFound)

	// A token never outlives its agent.
	exp := e.clock.Now().Add(time.Minute)
	if _, err := e.s.Register(ctx, AgentIdentity{ID: "short", Type: AgentTypeService, OwnerID: "alice", ExpiresAt: exp}); err != nil {
		t.Fatal(err)
	}
	tok := e.token("short", time.Hour)
	raw, _ := tokenEncoding.DecodeString(tok)
	if c, _, _, _ := parseToken(raw); c.expiresAt != exp.UnixMilli() {
		t.Fatalf("token expires at %d, agent at %d", c.expiresAt, exp.UnixMilli())
	}
	if err := e.s.Revoke(ctx, "short"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.IssueToken(ctx, "short", 0)
	wantErr(t, "revoked agent", err, ErrRevoked)
}

// Every single-byte change anywhere in a token is rejected with a typed
// error; none is accepted.
func TestTokenTampering(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("agent-1", "alice")
	e.register("agent-2", "alice")
	tok := e.token("agent-1", 0)
	raw, _ := tokenEncoding.DecodeString(tok)
	fields := map[string]int{
		"version": 0, "algorithm": 2, "key version": 6, "token id": 10, "issued at": 30,
		"expires at": 38, "agent id length": 39, "agent id": 46, "signature header": 47,
		"signature start": 52, "signature middle": 1500, "ed25519 half": len(raw) - 10, "last byte": len(raw) - 1,
	}
	for name, i := range fields {
		for _, x := range []byte{0x01, 0x80} {
			b := []byte(string(raw))
			b[i] ^= x
			_, err := e.s.ResolveToken(ctx, tokenEncoding.EncodeToString(b))
			if err == nil {
				t.Fatalf("%s (byte %d ^ %#x): accepted", name, i, x)
			}
			if !errors.Is(err, ErrTokenMalformed) && !errors.Is(err, ErrTokenForged) {
				t.Fatalf("%s: %v, want ErrTokenMalformed or ErrTokenForged", name, err)
			}
		}
	}
	// The id naming another agent is the attack that matters most.
	b := []byte(string(raw))
	b[tokenFixedSize+len("agent-")] = '2'
	_, err := e.s.ResolveToken(ctx, tokenEncoding.EncodeToString(b))
	wantErr(t, "agent id swapped", err, ErrTokenForged)

	for name, c := range map[string]struct {
		mutate func([]byte) []byte
		want   error
	}{
		"version 2":           {func(b []byte) []byte { b[0] = 2; return b }, ErrTokenMalformed},
		"ed25519 algorithm":   {func(b []byte) []byte { b[1], b[2] = 0x02, 0x01; return b }, ErrTokenMalformed},
		"unknown algorithm":   {func(b []byte) []byte { b[1], b[2] = 0xff, 0xff; return b }, ErrTokenMalformed},
		"unknown key":         {func(b []byte) []byte { b[6] = 9; return b }, ErrTokenForged},
		"expiry before issue": {func(b []byte) []byte { copy(b[31:39], make([]byte, 8)); return b }, ErrTokenMalformed},
		"empty agent id":      {func(b []byte) []byte { b[39] = 0; return b }, ErrTokenMalformed},
		"signature algorithm in signature header": {func(b []byte) []byte {
			i := tokenFixedSize + len("agent-1") + 2
			b[i], b[i+1] = 0x02, 0x02
			return b
		}, ErrTokenForged},
	} {
		_, err := e.s.ResolveToken(ctx, tokenEncoding.EncodeToString(c.mutate([]byte(string(raw)))))
		wantErr(t, name, err, c.want)
	}
}

func TestTokenEncodingErrors(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	tok := e.token("a", 0)
	raw, _ := tokenEncoding.DecodeString(tok)
	bad := map[string]string{
		"empty":             "",
		"truncated text":    tok[:len(tok)-1],
		"truncated bytes":   tokenEncoding.EncodeToString(raw[:len(raw)-1]),
		"one byte":          tokenEncoding.EncodeToString(raw[:1]),
		"header only":       tokenEncoding.EncodeToString(raw[:tokenFixedSize]),
		"trailing byte":     tokenEncoding.EncodeToString(append([]byte(string(raw)), 0)),
		"padding":           tok + "==",
		"standard alphabet": strings.NewReplacer("-", "+", "_", "/").Replace(tok) + "+",
		"whitespace":        tok[:10] + " " + tok[10:],
		"oversize":          strings.Repeat("A", maxTokenChars+1),
		"huge":              strings.Repeat("A", 1<<20),
		"not base64":        "definitely not a token!",
	}
	for name, s := range bad {
		_, err := e.s.ResolveToken(ctx, s)
		wantErr(t, name, err, ErrTokenMalformed)
	}
	// The last character of an unpadded encoding carries spare bits; a
	// token with them set is a second spelling of the same bytes, and
	// only the canonical one is accepted.
	last := strings.IndexByte(tokenAlphabet, tok[len(tok)-1])
	if spare := len(raw) % 3; spare != 0 {
		alt := tok[:len(tok)-1] + string(tokenAlphabet[last^1])
		_, err := e.s.ResolveToken(ctx, alt)
		wantErr(t, "non-canonical final character", err, ErrTokenMalformed)
	}
	// Every truncation of the binary form is rejected.
	for n := range len(raw) {
		if _, err := e.s.ResolveToken(ctx, tokenEncoding.EncodeToString(raw[:n])); !errors.Is(err, ErrTokenMalformed) {
			t.Fatalf("truncated to %d bytes: %v", n, err)
		}
	}
}

const tokenAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

func TestTokenExpiry(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	tok := e.token("a", time.Minute)
	if _, err := e.s.ResolveToken(ctx, tok); err != nil { // now cached
		t.Fatal(err)
	}
	e.clock.Advance(time.Minute - time.Millisecond)
	if _, err := e.s.ResolveToken(ctx, tok); err != nil {
		t.Fatalf("a millisecond before expiry: %v", err)
	}
	e.clock.Advance(time.Millisecond)
	_, err := e.s.ResolveToken(ctx, tok)
	wantErr(t, "at expiry (cached)", err, ErrTokenExpired)

	// An agent expiry ends its tokens too.
	exp := e.clock.Now().Add(time.Minute)
	if _, err := e.s.Update(ctx, "a", AgentUpdate{ExpiresAt: &exp}); err != nil {
		t.Fatal(err)
	}
	tok = e.token("a", time.Hour)
	e.clock.Advance(time.Minute)
	_, err = e.s.ResolveToken(ctx, tok)
	wantErr(t, "agent expired", err, ErrTokenExpired)
}

func TestTokenRevocation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	e.register("b", "alice")
	tokA, tokA2, tokB := e.token("a", 0), e.token("a", 0), e.token("b", 0)
	for _, tok := range []string{tokA, tokA2, tokB} {
		if _, err := e.s.ResolveToken(ctx, tok); err != nil { // cache them all
			t.Fatal(err)
		}
	}

	if err := e.s.RevokeToken(ctx, tokA); err != nil {
		t.Fatal(err)
	}
	_, err := e.s.ResolveToken(ctx, tokA)
	wantErr(t, "revoked token", err, ErrTokenRevoked)
	if _, err := e.s.ResolveToken(ctx, tokA2); err != nil {
		t.Fatalf("another token of the same agent: %v", err)
	}
	if err := e.s.RevokeToken(ctx, tokA); err != nil {
		t.Fatalf("revoking twice: %v", err)
	}
	forged, _ := tokenEncoding.DecodeString(tokB)
	forged[100] ^= 1 // inside the signature
	wantErr(t, "revoking a forged token", e.s.RevokeToken(ctx, tokenEncoding.EncodeToString(forged)), ErrTokenForged)

	suspended, active := StatusSuspended, StatusActive
	if _, err := e.s.Update(ctx, "b", AgentUpdate{Status: &suspended}); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.ResolveToken(ctx, tokB)
	wantErr(t, "suspended agent", err, ErrTokenRevoked, ErrSuspended)
	if _, err := e.s.Update(ctx, "b", AgentUpdate{Status: &active}); err != nil {
		t.Fatal(err)
	}
	if _, err := e.s.ResolveToken(ctx, tokB); err != nil {
		t.Fatalf("reactivated agent: %v", err)
	}
	if err := e.s.Revoke(ctx, "b"); err != nil {
		t.Fatal(err)
	}
	_, err = e.s.ResolveToken(ctx, tokB)
	wantErr(t, "revoked agent", err, ErrTokenRevoked, ErrRevoked)

	// Revocation-list entries go once their tokens have expired.
	e.clock.Advance(DefaultConfig().DefaultTokenTTL)
	e.restart()
	if n := len(e.s.revokedTokens); n != 0 {
		t.Fatalf("%d revocation entries kept past their tokens' expiry", n)
	}
}

func TestNodeKeyRotation(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	e.register("a", "alice")
	old := e.token("a", 0)
	if err := e.s.RotateNodeKey(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	fresh := e.token("a", 0)
	for _, tok := range []string{old, fresh} {
		if _, err := e.s.ResolveToken(ctx, tok); err != nil {
			t.Fatalf("during the overlap: %v", err)
		}
	}
	if err := e.s.RotateNodeKey(ctx, 0); err != nil {
		t.Fatal(err)
	}
	for _, tok := range []string{old, fresh} {
		_, err := e.s.ResolveToken(ctx, tok)
		wantErr(t, "after a rotation without overlap", err, ErrTokenRevoked)
	}
	if _, err := e.s.ResolveToken(ctx, e.token("a", 0)); err != nil {
		t.Fatalf("token of the newest key: %v", err)
	}
}

// After a restart the retired node key is not even parsed, and its tokens
// still fail as revoked, not as forged.
func TestRetiredNodeKeyAfterRestart(t *testing.T) {
	e := newEnv(t)
	e.register("a", "alice")
	tok := e.token("a", 0)
	if err := e.s.RotateNodeKey(context.Background(), 0); err != nil {
		t.Fatal(err)
	}
	e.restart()
	_, err := e.s.ResolveToken(context.Background(), tok)
	wantErr(t, "token of a retired key after restart", err, ErrTokenRevoked)
}
