package nhi

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"reflect"
	"testing"
)

// The golden tests pin the token, delegation, chain and grant-index
// encodings byte for byte, field by field as token.go and delegation.go
// document them. Tokens and links already issued must keep verifying, and
// the grant index must keep reading, so any change here is a format
// change, not a refactoring.

// goldenSig stands in for a signature: decoding checks only its length.
func goldenSig() []byte { return bytes.Repeat([]byte{0xab}, signatureSize) }

func TestTokenGolden(t *testing.T) {
	c := tokenClaims{
		keyVersion: 3,
		id:         tokenID{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
		issuedAt:   1_700_000_000_000,
		expiresAt:  1_700_000_600_000,
		agentID:    "mailer",
	}
	body := c.appendBody(nil)
	want := "01" + // version
		"0203" + // ed25519+ml-dsa-65
		"00000003" + // node key version
		"000102030405060708090a0b0c0d0e0f" + // token id
		"0000018bcfe56800" + // issued at, ms
		"0000018bcfee8fc0" + // expires at, ms
		"06" + hex.EncodeToString([]byte("mailer"))
	if got := hex.EncodeToString(body); got != want {
		t.Fatalf("token body\n got %s\nwant %s", got, want)
	}
	got, gotBody, sig, err := parseToken(append(bytes.Clone(body), goldenSig()...))
	if err != nil {
		t.Fatal(err)
	}
	if got != c || !bytes.Equal(gotBody, body) || !bytes.Equal(sig, goldenSig()) {
		t.Fatalf("decoded %+v, body %x", got, gotBody)
	}
}

// goldenLinks is a two-link chain: planner → mailer → helper.
func goldenLinks() []*Delegation {
	root := &Delegation{
		id:    DelegationID{0x10, 0x11, 0x12, 0x13, 0x14, 0x15, 0x16, 0x17, 0x18, 0x19, 0x1a, 0x1b, 0x1c, 0x1d, 0x1e, 0x1f},
		depth: 1, keyVersion: 2, createdAt: 1_700_000_000_000, expiresAt: 1_700_003_600_000,
		delegator: "planner", delegatee: "mailer", permissions: []string{"read", "send_email"},
	}
	child := &Delegation{
		id:     DelegationID{0x20, 0x21, 0x22, 0x23, 0x24, 0x25, 0x26, 0x27, 0x28, 0x29, 0x2a, 0x2b, 0x2c, 0x2d, 0x2e, 0x2f},
		parent: root.id, hasParent: true, depth: 2, keyVersion: 1, createdAt: 1_700_000_001_000, expiresAt: 1_700_000_601_000,
		delegator: "mailer", delegatee: "helper", permissions: []string{"send_email"},
	}
	for _, d := range []*Delegation{root, child} {
		d.enc = append(d.appendBody(nil), goldenSig()...)
	}
	return []*Delegation{root, child}
}

func TestDelegationGolden(t *testing.T) {
	links := goldenLinks()
	want := []string{
		"01" + "0203" + // version, algorithm
			"101112131415161718191a1b1c1d1e1f" + // id
			"00" + "00000000000000000000000000000000" + // no parent
			"01" + "00000002" + // depth, key version
			"0000018bcfe56800" + "0000018bd01c5680" + // created, expires
			"07" + hex.EncodeToString([]byte("planner")) + "06" + hex.EncodeToString([]byte("mailer")) +
			"02" + "04" + hex.EncodeToString([]byte("read")) + "0a" + hex.EncodeToString([]byte("send_email")),
		"01" + "0203" +
			"202122232425262728292a2b2c2d2e2f" +
			"01" + "101112131415161718191a1b1c1d1e1f" + // parent
			"02" + "00000001" +
			"0000018bcfe56be8" + "0000018bcfee93a8" +
			"06" + hex.EncodeToString([]byte("mailer")) + "06" + hex.EncodeToString([]byte("helper")) +
			"01" + "0a" + hex.EncodeToString([]byte("send_email")),
	}
	for i, d := range links {
		if got := hex.EncodeToString(d.body()); got != want[i] {
			t.Fatalf("link %d body\n got %s\nwant %s", i+1, got, want[i])
		}
		back, err := DecodeDelegation(d.Encode())
		if err != nil {
			t.Fatalf("link %d: %v", i+1, err)
		}
		if !reflect.DeepEqual(back, d) {
			t.Fatalf("link %d decodes to %+v", i+1, back)
		}
	}

	// The chain: version, link count, each link behind a 2-byte length.
	chain := &DelegationChain{links: links}
	wantChain := []byte{chainVersion, 2}
	for _, d := range links {
		wantChain = binary.BigEndian.AppendUint16(wantChain, uint16(len(d.enc)))
		wantChain = append(wantChain, d.enc...)
	}
	if !bytes.Equal(chain.Encode(), wantChain) {
		t.Fatalf("chain encoding differs")
	}
	back, err := DecodeDelegationChain(wantChain)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(back.links, links) {
		t.Fatal("chain decodes to other links")
	}
}

func TestGrantValueGolden(t *testing.T) {
	child := goldenLinks()[1]
	val := grantValue(child, "planner")
	want := "0000018bcfee93a8" + // expires at
		"07" + hex.EncodeToString([]byte("planner")) + // the chain's root delegator
		"0a" + hex.EncodeToString([]byte("send_email"))
	if got := hex.EncodeToString(val); got != want {
		t.Fatalf("grant value\n got %s\nwant %s", got, want)
	}
	prefix := grantPrefix(child.delegatee)
	g, ok, err := decodeGrantEntry(prefix, grantKey(child.delegatee, child.id), val, "planner")
	if err != nil || !ok {
		t.Fatalf("decode: %v, %v", ok, err)
	}
	if g.id != child.id || g.expiresAt != child.expiresAt || g.root != "planner" || !reflect.DeepEqual(g.permissions, child.permissions) {
		t.Fatalf("decoded %+v", g)
	}
	if _, ok, err := decodeGrantEntry(prefix, grantKey(child.delegatee, child.id), val, "other"); ok || err != nil {
		t.Fatalf("an entry of another root: %v, %v", ok, err)
	}
}
