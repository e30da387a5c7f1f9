// Package frames is the record format of the audit spools, the node's and
// the client's: length-prefixed, CRC-32C-checked frames appended to a
// file. A crash can tear only the last frame, and a reader stops at the
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
)

// HeaderSize is the bytes a frame adds to its payload.
const HeaderSize = 8

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
// It returns io.EOF at a clean end, and an error for a frame that is torn,
// fails its checksum, or whose payload is not minSize to maxSize bytes.
func Read(r *bufio.Reader, minSize, maxSize int) (payload []byte, n int64, err error) {
	var hdr [HeaderSize]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, 0, io.EOF
		}
		return nil, 0, fmt.Errorf("short frame header: %v", err)
	}
	size := binary.BigEndian.Uint32(hdr[:4])
	if size < uint32(minSize) || size > uint32(maxSize) {
		return nil, 0, fmt.Errorf("frame length %d", size)
	}
	payload = make([]byte, size)
	if _, err := io.ReadFull(r, payload); err != nil {
		return nil, 0, fmt.Errorf("short frame: %v", err)
	}
	if crc32.Checksum(payload, crcTable) != binary.BigEndian.Uint32(hdr[4:]) {
		return nil, 0, errors.New("checksum mismatch")
	}
	return payload, int64(HeaderSize) + int64(size), nil
}
