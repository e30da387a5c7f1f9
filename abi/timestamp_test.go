package abi_test

import (
	"bytes"
	"errors"
	"strings"
	"testing"

	"github.com/creto-systems/creto/abi"
)

func TestTimestampRecord(t *testing.T) {
	for _, ts := range []abi.Timestamp{
		{Logical: 1<<60 | 7, Physical: 1_750_000_000_123_000_000, Consensus: true, NodeID: "node-1"},
		{Logical: 1, Physical: 0, NodeID: ""},
		{Logical: ^uint64(0), Physical: -1, Consensus: true, NodeID: strings.Repeat("n", 256)},
	} {
		b := abi.AppendTimestamp(nil, ts)
		if len(b) != abi.TimestampHeaderSize+len(ts.NodeID) {
			t.Fatalf("%d bytes for %+v", len(b), ts)
		}
		got, err := abi.ParseTimestamp(b)
		if err != nil || got != ts {
			t.Fatalf("round trip of %+v: %+v, %v", ts, got, err)
		}
	}
	// The layout is the one SPEC.md §6.9 gives: little-endian, flags at 16.
	b := abi.AppendTimestamp(nil, abi.Timestamp{Logical: 0x0102030405060708, Physical: 0x1112131415161718, Consensus: true, NodeID: "n"})
	want := []byte{8, 7, 6, 5, 4, 3, 2, 1, 0x18, 0x17, 0x16, 0x15, 0x14, 0x13, 0x12, 0x11, 1, 0, 0, 0, 'n'}
	if !bytes.Equal(b, want) {
		t.Fatalf("layout % x, want % x", b, want)
	}
}

func TestTimestampRecordRejectsMalformed(t *testing.T) {
	good := abi.AppendTimestamp(nil, abi.Timestamp{Logical: 9, NodeID: "n"})
	flags := append([]byte(nil), good...)
	flags[16] = 2
	for name, b := range map[string][]byte{
		"empty":         nil,
		"short header":  good[:abi.TimestampHeaderSize-1],
		"long node id":  abi.AppendTimestamp(nil, abi.Timestamp{NodeID: strings.Repeat("n", 257)}),
		"unknown flags": flags,
	} {
		if _, err := abi.ParseTimestamp(b); !errors.Is(err, abi.ErrTimestamp) {
			t.Errorf("%s: %v", name, err)
		}
	}
}
