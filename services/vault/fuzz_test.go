package vault

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/creto-systems/creto/services/crypto"
)

// The decoders of stored records. A record is authenticated before it is
// decoded, but the decoders must hold on their own: `go test` runs each
// seed corpus; `go test -fuzz FuzzDecodeMeta -fuzztime 1m
// ./services/vault/` explores. Every target checks the same contract: no
// panic, failures match ErrCorrupt, and whatever decodes re-encodes to
// exactly the input.

func fuzzRoundTrip[T any](f *testing.F, seeds [][]byte, decode func([]byte) (T, error), encode func(T) []byte) {
	for _, s := range seeds {
		f.Add(s)
		f.Add(s[:len(s)-1])
		f.Add(append(bytes.Clone(s), 0))
	}
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		v, err := decode(b)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("error %v does not match ErrCorrupt", err)
			}
			return
		}
		if again := encode(v); !bytes.Equal(again, b) {
			t.Fatalf("re-encoding differs:\n%x\n%x", b, again)
		}
	})
}

func sampleMeta() *metaRecord {
	return &metaRecord{
		ref: ref("agents/a/db", "PASSWORD"), owner: "a",
		meta:    SecretMetadata{Type: TypePassword, Description: "d", Labels: map[string]string{"env": "prod", "a": ""}, Rotation: RotationPolicy{Interval: time.Hour}},
		current: 3, created: 1, updated: 9,
		versions: []versionRecord{{version: 2, created: 5, createdBy: "a", deleted: 7, deletedBy: "b"}, {version: 3, created: 9, createdBy: SchedulerAgent, expires: 99, destroyed: true}},
	}
}

func FuzzDecodeMeta(f *testing.F) {
	plain := sampleMeta()
	plain.meta.Labels, plain.versions = nil, plain.versions[1:]
	fuzzRoundTrip(f, [][]byte{encodeMeta(sampleMeta()), encodeMeta(plain)}, decodeMeta, encodeMeta)
}

func FuzzDecodeDelegation(f *testing.F) {
	fuzzRoundTrip(f, [][]byte{encodeDelegation(sampleDelegation())}, decodeDelegation, encodeDelegation)
}

func FuzzDecodeEvent(f *testing.F) {
	fuzzRoundTrip(f, [][]byte{encodeEvent(sampleEvent())}, decodeEvent, encodeEvent)
}

func FuzzDecodeSealRecord(f *testing.F) {
	shamir, backend := sampleSeals()
	fuzzRoundTrip(f, [][]byte{encodeSealRecord(shamir), encodeSealRecord(backend)}, decodeSealRecord, encodeSealRecord)
}

// FuzzDecodeShare: shares are typed in by operators. A share decodes only
// if its checksum holds, and then re-encodes to the input up to case,
// spaces and dashes.
func FuzzDecodeShare(f *testing.F) {
	sh, err := crypto.NewKeyShare(2, bytes.Repeat([]byte{7}, crypto.KeyShareSize))
	if err != nil {
		f.Fatal(err)
	}
	good := encodeShare([initIDSize]byte{1, 2}, 2, sh)
	f.Add(good)
	f.Add(strings.ToUpper(good[:30]) + " - " + good[30:])
	f.Add(good[:87])
	f.Add("")
	s := &Service{p: crypto.New()}
	f.Fuzz(func(t *testing.T, text string) {
		initID, threshold, sh, err := s.decodeShare(text)
		if err != nil {
			if !errors.Is(err, ErrShareMalformed) {
				t.Fatalf("error %v", err)
			}
			return
		}
		norm := strings.Map(func(r rune) rune {
			if strings.ContainsRune(" -\n\t\r", r) {
				return -1
			}
			return r
		}, strings.ToLower(text))
		if again := encodeShare(initID, threshold, sh); again != norm {
			t.Fatalf("re-encoding differs: %q vs %q", again, norm)
		}
	})
}
