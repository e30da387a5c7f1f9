package abi

import (
	"errors"
	"fmt"
)

// Timestamp is the record creto:consensus/v1 timestamp() writes into guest
// memory (SPEC.md §6.11):
//
//	0   u64 logical   the position in the cluster's total order
//	8   i64 physical  Unix nanoseconds (millisecond precision)
//	16  u32 flags     bit 0: a consensus timestamp (0: a local fallback)
//	20  node id       the issuing node, to the end of the record
type Timestamp struct {
	Logical  uint64
	Physical int64
	// Consensus is false for a local timestamp of the node the guest runs
	// on, taken because the cluster could not give one (seed §8.4); it is
	// ordered only with that node's timestamps.
	Consensus bool
	NodeID    string
}

// Layout of a timestamp record.
const (
	// TimestampHeaderSize is the record's size before the node id.
	TimestampHeaderSize = 20
	// TimestampFlagConsensus marks a consensus timestamp.
	TimestampFlagConsensus = 1
	// MaxTimestampRecord is the largest record: the header and a node id
	// of the 256 bytes a node id may have. A buffer this large never needs
	// a second call.
	MaxTimestampRecord = TimestampHeaderSize + 256
)

// AppendTimestamp appends t's record to b.
func AppendTimestamp(b []byte, t Timestamp) []byte {
	var flags uint32
	if t.Consensus {
		flags |= TimestampFlagConsensus
	}
	b = le.AppendUint64(b, t.Logical)
	b = le.AppendUint64(b, uint64(t.Physical))
	b = le.AppendUint32(b, flags)
	return append(b, t.NodeID...)
}

// ErrTimestamp is returned for a record that is not a timestamp.
var ErrTimestamp = errors.New("abi: malformed timestamp record")

// ParseTimestamp reads a timestamp record.
func ParseTimestamp(b []byte) (Timestamp, error) {
	if len(b) < TimestampHeaderSize || len(b) > MaxTimestampRecord {
		return Timestamp{}, fmt.Errorf("%w: %d bytes", ErrTimestamp, len(b))
	}
	flags := le.Uint32(b[16:])
	if flags&^TimestampFlagConsensus != 0 {
		return Timestamp{}, fmt.Errorf("%w: unknown flags %#x", ErrTimestamp, flags)
	}
	return Timestamp{
		Logical:   le.Uint64(b),
		Physical:  int64(le.Uint64(b[8:])),
		Consensus: flags&TimestampFlagConsensus != 0,
		NodeID:    string(b[TimestampHeaderSize:]),
	}, nil
}
