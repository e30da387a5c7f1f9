package vault

import (
	"crypto/hmac"
	"crypto/sha256"
	"strings"
	"testing"
)

// hmacSHA256 is the reference the vault's MAC must equal, computed here
// with the standard library independently of services/crypto.
func hmacSHA256(key, data string) []byte {
	m := hmac.New(sha256.New, []byte(key))
	m.Write([]byte(data))
	return m.Sum(nil)
}

func TestMACUsesTheSecretWithoutRevealingIt(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/hook/signing", "STRIPE")
	f.create("hook", r, "whsec-1")
	_, err := f.svc.UpdateSecret(bg, "hook", UpdateSecretRequest{Ref: r, Value: val("whsec-2")})
	must(t, err)

	out, err := f.svc.MAC(bg, "hook", MACRequest{Ref: r, Data: []byte("payload")})
	must(t, err)
	if !hmac.Equal(out.MAC, hmacSHA256("whsec-2", "payload")) || out.Version != 2 || out.Algorithm != "hmac-sha256" {
		t.Fatalf("current version: %+v", out)
	}
	out, err = f.svc.MAC(bg, "hook", MACRequest{Ref: r, Version: 1, Algorithm: "hmac-sha256", Data: nil})
	must(t, err)
	if !hmac.Equal(out.MAC, hmacSHA256("whsec-1", "")) || out.Version != 1 {
		t.Fatalf("version 1, empty data: %+v", out)
	}

	// Another agent is refused, and learns nothing about existence.
	_, err = f.svc.MAC(bg, "intruder", MACRequest{Ref: r, Data: []byte("x")})
	wantErr(t, err, ErrAccessDenied)
	_, err = f.svc.MAC(bg, "intruder", MACRequest{Ref: ref("agents/hook/signing", "NONE"), Data: []byte("x")})
	wantErr(t, err, ErrAccessDenied)
	_, err = f.svc.MAC(bg, "hook", MACRequest{Ref: ref("agents/hook/signing", "NONE")})
	wantErr(t, err, ErrNotFound)

	// Every use is in the access log as "mac", allowed or not.
	var macs []string
	for _, ev := range f.events("hook", r) {
		if ev.Operation == OpMAC {
			macs = append(macs, ev.Agent+":"+ev.Outcome.String())
		}
	}
	if strings.Join(macs, ",") != "hook:allowed,hook:allowed,intruder:denied" {
		t.Fatalf("mac events %v", macs)
	}
}

func TestMACRefusesBadInputAndSealedVault(t *testing.T) {
	f := newFixture(t, Config{})
	r := ref("agents/hook/signing", "K")
	f.create("hook", r, "k")
	before := f.dump("vault/")
	for name, req := range map[string]MACRequest{
		"bad ref":       {Ref: ref("agents/hook/../x", "K")},
		"sign alg":      {Ref: r, Algorithm: "ed25519"},
		"unknown alg":   {Ref: r, Algorithm: "hmac-md5"},
		"data too long": {Ref: r, Data: make([]byte, MaxMACData+1)},
	} {
		_, err := f.svc.MAC(bg, "hook", req)
		wantErr(t, err, ErrInvalidArgument)
		if after := f.dump("vault/"); len(after) != len(before) {
			t.Fatalf("%s: the store changed", name)
		}
	}
	_, err := f.svc.MAC(bg, "bad caller", MACRequest{Ref: r})
	wantErr(t, err, ErrInvalidArgument)
	must(t, f.svc.Seal(bg))
	_, err = f.svc.MAC(bg, "hook", MACRequest{Ref: r})
	wantErr(t, err, ErrSealed)
}
