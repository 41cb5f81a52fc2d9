package seen

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"time"
)

// On-disk layout: an 8-byte magic, then one frame per admitted id:
//
//	idLen   uint8    1..maxIDLen
//	expires int64    little-endian Unix nanoseconds
//	crc     uint32   little-endian CRC-32C of idLen, expires and id
//	id      [idLen]byte
const (
	frameHeaderSize = 13
	maxIDLen        = 128
)

var (
	magic    = []byte("DLBSEEN\x01")
	castagno = crc32.MakeTable(crc32.Castagnoli)

	errShortFrame = errors.New("frame runs past end of file")
)

// checkID reports whether id is 1 to 128 bytes of printable ASCII.
func checkID(id string) error {
	if len(id) == 0 || len(id) > maxIDLen {
		return fmt.Errorf("command id %q is %d bytes, want 1 to %d", id, len(id), maxIDLen)
	}
	for i := range len(id) {
		if id[i] < 0x20 || id[i] > 0x7e {
			return fmt.Errorf("command id %q: byte %d is %#x, want printable ASCII", id, i, id[i])
		}
	}
	return nil
}

func encodeFrame(id string, expires time.Time) []byte {
	b := make([]byte, frameHeaderSize+len(id))
	b[0] = byte(len(id))
	binary.LittleEndian.PutUint64(b[1:], uint64(expires.UnixNano()))
	copy(b[frameHeaderSize:], id)
	crc := crc32.Update(crc32.Checksum(b[:9], castagno), castagno, b[frameHeaderSize:])
	binary.LittleEndian.PutUint32(b[9:], crc)
	return b
}

// decodeFrame decodes the frame at the start of b and returns its size.
func decodeFrame(b []byte) (id string, expires time.Time, size int, err error) {
	if len(b) < frameHeaderSize {
		return "", time.Time{}, 0, errShortFrame
	}
	n := int(b[0])
	if len(b) < frameHeaderSize+n {
		return "", time.Time{}, 0, errShortFrame
	}
	raw := b[frameHeaderSize : frameHeaderSize+n]
	crc := crc32.Update(crc32.Checksum(b[:9], castagno), castagno, raw)
	if want := binary.LittleEndian.Uint32(b[9:]); crc != want {
		return "", time.Time{}, 0, fmt.Errorf("checksum %08x, want %08x", crc, want)
	}
	id = string(raw)
	if err := checkID(id); err != nil {
		return "", time.Time{}, 0, err
	}
	expires = time.Unix(0, int64(binary.LittleEndian.Uint64(b[1:])))
	return id, expires, frameHeaderSize + n, nil
}

// findFrame reports the offset of the first valid frame in buf at or after
// from. Open uses it to tell a torn tail (nothing valid follows) from
// corruption in the middle (something does).
func findFrame(buf []byte, from int) (int, bool) {
	for p := from; p+frameHeaderSize <= len(buf); p++ {
		if _, _, _, err := decodeFrame(buf[p:]); err == nil {
			return p, true
		}
	}
	return 0, false
}
