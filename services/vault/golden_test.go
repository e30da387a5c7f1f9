package vault

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"
)

// The golden tests pin every stored record's encoding byte for byte, field
// by field as record.go and seal.go document them: a vault must keep
// reading what it wrote before, so a change here is a format change, not
// a refactoring.

func sampleDelegation() *delegationRecord {
	return &delegationRecord{
		id: delegationID{1, 2, 3}, delegator: "a", delegatee: "b", refs: []SecretRef{ref("agents/a", "X"), ref("agents/a", "Y")},
		created: 10, expires: 20, restrictions: DelegationRestrictions{BoundSandbox: "sb", SingleUse: true, MemoryOnly: true, MaxUses: 1}, uses: 1, revoked: 15,
	}
}

func sampleEvent() *AccessEvent {
	return &AccessEvent{Time: time.Unix(5, 6).UTC(), Agent: "a", Operation: OpDelegatedGet, Ref: ref("agents/a", "X"), Version: 2,
		DelegationID: "00112233445566778899aabbccddeeff", SandboxID: "sb", Outcome: OutcomeFailed, Reason: "delegation_expired"}
}

func sampleSeals() (shamir, backend *sealRecord) {
	shamir = &sealRecord{mode: modeShamir, initID: [initIDSize]byte{9}, threshold: 2, shares: 3, digests: make([][digestSize]byte, 3), wrapped: []byte("wrapped"), created: 7}
	backend = &sealRecord{mode: modeBackend, wrapped: []byte("w"), created: 1}
	return shamir, backend
}

// str is the hex of a string field: a 2-byte length, then the bytes.
func str(s string) string { return fmt.Sprintf("%04x", len(s)) + hex.EncodeToString([]byte(s)) }

func TestRecordGolden(t *testing.T) {
	shamir, backend := sampleSeals()
	zero := func(n int) string { return strings.Repeat("00", n) }
	for _, c := range []struct {
		name   string
		enc    []byte
		want   string
		decode func([]byte) (any, error)
		orig   any
	}{
		{
			name: "meta", enc: encodeMeta(sampleMeta()), orig: sampleMeta(),
			decode: func(b []byte) (any, error) { return decodeMeta(b) },
			want: "01" + str("agents/a/db") + str("PASSWORD") + str("a") +
				"02" + str("d") + // type password, description
				"0002" + str("a") + str("") + str("env") + str("prod") + // labels, sorted
				"0000034630b8a000" + // rotation interval, 1h in ns
				"00000003" + "0000000000000001" + "0000000000000009" + // current, created, updated
				"0002" +
				"00000002" + "0000000000000005" + str("a") + zero(8) + "0000000000000007" + str("b") + "00" +
				"00000003" + "0000000000000009" + str("vault scheduler") + "0000000000000063" + zero(8) + str("") + "01",
		},
		{
			name: "delegation", enc: encodeDelegation(sampleDelegation()), orig: sampleDelegation(),
			decode: func(b []byte) (any, error) { return decodeDelegation(b) },
			want: "01" + "010203" + zero(13) + str("a") + str("b") +
				"0002" + str("agents/a") + str("X") + str("agents/a") + str("Y") +
				"000000000000000a" + "0000000000000014" + // created, expires
				str("sb") + "01" + "01" + "00000001" + // sandbox, single use, memory only, max uses
				"00000001" + "000000000000000f", // uses, revoked
		},
		{
			name: "event", enc: encodeEvent(sampleEvent()), orig: sampleEvent(),
			decode: func(b []byte) (any, error) { return decodeEvent(b) },
			want: "01" + "000000012a05f206" + str("a") + "0d" + str("agents/a") + str("X") + "00000002" +
				str("00112233445566778899aabbccddeeff") + str("sb") + "03" + str("delegation_expired"),
		},
		{
			name: "shamir seal", enc: encodeSealRecord(shamir), orig: shamir,
			decode: func(b []byte) (any, error) { return decodeSealRecord(b) },
			want: "01" + "02" + "09" + zero(15) + "02" + "03" + zero(3*32) +
				"00000007" + hex.EncodeToString([]byte("wrapped")) + "0000000000000007",
		},
		{
			name: "backend seal", enc: encodeSealRecord(backend), orig: backend,
			decode: func(b []byte) (any, error) { return decodeSealRecord(b) },
			want:   "01" + "01" + zero(16) + "00" + "00" + "00000001" + "77" + "0000000000000001",
		},
	} {
		if got := hex.EncodeToString(c.enc); got != c.want {
			t.Errorf("%s\n got %s\nwant %s", c.name, got, c.want)
			continue
		}
		back, err := c.decode(c.enc)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
		} else if !reflect.DeepEqual(back, c.orig) {
			t.Errorf("%s decodes to %+v", c.name, back)
		}
	}
}
