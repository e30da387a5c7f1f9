// Package frames is what the audit spools, the node's and the client's,
// share: their record format — length-prefixed, CRC-32C-checked frames
// appended to a file — and the loop of the goroutine that writes them. A crash can tear only the last frame, and a reader stops at the
// first frame that is short or fails its checksum, so what comes before a
// tear is always read back whole.
//
// A frame is a big-endian u32 payload length, the u32 CRC-32C of the
// payload, then the payload.
package frames

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"time"
)

// HeaderSize is the bytes a frame adds to its payload.
const HeaderSize = 8

// ErrDamaged marks a frame that is torn (short), fails its checksum or
// has an impossible length: what a crash leaves at the end of a file, which
// a reader may cut. Any other error from Read is the file's own (an I/O
// error), after which nothing may be cut.
var ErrDamaged = errors.New("damaged frame")

var crcTable = crc32.MakeTable(crc32.Castagnoli)

// Append appends to dst one frame whose payload is parts, concatenated.
func Append(dst []byte, parts ...[]byte) []byte {
	start := len(dst)
	dst = append(dst, make([]byte, HeaderSize)...)
	for _, p := range parts {
		dst = append(dst, p...)
	}
	payload := dst[start+HeaderSize:]
	binary.BigEndian.PutUint32(dst[start:], uint32(len(payload)))
	binary.BigEndian.PutUint32(dst[start+4:], crc32.Checksum(payload, crcTable))
	return dst
}

// Read reads the next frame and returns its payload and the frame's size.
// It returns io.EOF at a clean end; an error matching ErrDamaged for a
// frame that is torn, fails its checksum, or whose payload is not minSize
// to maxSize bytes; and the reader's own error otherwise.
func Read(r *bufio.Reader, minSize, maxSize int) (payload []byte, n int64, err error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		return nil, 0, readErr(err, true)
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size < uint32(minSize) || size > uint32(maxSize) {
		return nil, 0, fmt.Errorf("%w: frame length %d", ErrDamaged, size)
	}
	payload = make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, 0, readErr(err, false)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, 0, fmt.Errorf("%w: checksum mismatch", ErrDamaged)
	}
	return payload, int64(HeaderSize) + int64(size), nil
}

// readErr classifies a failed io.ReadFull: nothing at all where a header
// would start is a clean end, any other shortfall a tear.
func readErr(err error, header bool) error {
	switch {
	case header && err == io.EOF:
		return io.EOF
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("%w: short frame", ErrDamaged)
	}
	return fmt.Errorf("reading a frame: %w", err)
}

// retryAfter is how soon WriteLoop tries again after a failed flush.
const retryAfter = 100 * time.Millisecond

// WriteLoop runs a spool's writer: flush on every wake, again every 100 ms
// while flush reports a failure, and once more when stop is closed, after
// which it returns. Emitters only poke wake, so none waits on the disk.
func WriteLoop(wake, stop <-chan struct{}, flush func() bool) {
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	for {
		select {
		case <-wake:
		case <-retry.C:
		case <-stop:
			flush()
			return
		}
		if !flush() {
			retry.Reset(retryAfter)
		}
	}
}
