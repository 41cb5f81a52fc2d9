package spool

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk layout. All integers are little-endian.
//
// The file starts with a header:
//
//	magic   [8]byte  "DLBSPL\x00\x01"
//	lastSeq uint64   highest Seq ever assigned when the file was written
//	acked   uint64   highest Seq acknowledged when the file was written
//	crc     uint32   CRC-32C of the 24 bytes above
//
// Frames follow, each:
//
//	length  uint32   len(data), or ackLength for an acknowledgement frame
//	seq     uint64   the record's Seq, or the acknowledged Seq for an ack frame
//	crc     uint32   CRC-32C of length, seq and data
//	data    [length]byte
const (
	headerSize      = 28
	frameHeaderSize = 16

	// maxRecordSize is the largest Data a record may carry.
	maxRecordSize = 1 << 20

	// ackLength marks a frame that records "every Seq <= seq is acknowledged".
	ackLength = ^uint32(0)

	// maxSeqGap bounds how far past the last good Seq a frame found while
	// resynchronising may lie; it keeps random bytes from passing as frames.
	maxSeqGap = 1 << 32
)

var (
	magic    = [8]byte{'D', 'L', 'B', 'S', 'P', 'L', 0, 1}
	castagno = crc32.MakeTable(crc32.Castagnoli)

	errShortFrame = errors.New("frame runs past end of file")
	errBadFrame   = errors.New("invalid frame")
)

// frame is one decoded frame.
type frame struct {
	ack  bool
	seq  uint64
	data []byte // aliases the scanned buffer
	size int64  // bytes on disk, header included
}

func encodeHeader(lastSeq, acked uint64) []byte {
	b := make([]byte, headerSize)
	copy(b, magic[:])
	binary.LittleEndian.PutUint64(b[8:], lastSeq)
	binary.LittleEndian.PutUint64(b[16:], acked)
	binary.LittleEndian.PutUint32(b[24:], crc32.Checksum(b[:24], castagno))
	return b
}

func decodeHeader(b []byte) (lastSeq, acked uint64, err error) {
	if len(b) < headerSize {
		return 0, 0, fmt.Errorf("header is %d bytes, want %d", len(b), headerSize)
	}
	if [8]byte(b[:8]) != magic {
		return 0, 0, fmt.Errorf("bad magic %q: not a spool file", b[:8])
	}
	if got, want := crc32.Checksum(b[:24], castagno), binary.LittleEndian.Uint32(b[24:]); got != want {
		return 0, 0, fmt.Errorf("header checksum %08x, want %08x", got, want)
	}
	lastSeq = binary.LittleEndian.Uint64(b[8:])
	acked = binary.LittleEndian.Uint64(b[16:])
	if acked > lastSeq {
		return 0, 0, fmt.Errorf("header acked %d beyond last seq %d", acked, lastSeq)
	}
	return lastSeq, acked, nil
}

// encodeFrame returns a data frame, or an ack frame when ack is true.
func encodeFrame(seq uint64, data []byte, ack bool) []byte {
	length := uint32(len(data))
	if ack {
		length, data = ackLength, nil
	}
	b := make([]byte, frameHeaderSize+len(data))
	binary.LittleEndian.PutUint32(b, length)
	binary.LittleEndian.PutUint64(b[4:], seq)
	copy(b[frameHeaderSize:], data)
	crc := crc32.Update(crc32.Checksum(b[:12], castagno), castagno, data)
	binary.LittleEndian.PutUint32(b[12:], crc)
	return b
}

// decodeFrame decodes the frame at the start of b.
func decodeFrame(b []byte) (frame, error) {
	if len(b) < frameHeaderSize {
		return frame{}, errShortFrame
	}
	length := binary.LittleEndian.Uint32(b)
	f := frame{seq: binary.LittleEndian.Uint64(b[4:]), ack: length == ackLength}
	n := 0
	if !f.ack {
		if length > maxRecordSize {
			return frame{}, fmt.Errorf("%w: length %d exceeds %d", errBadFrame, length, maxRecordSize)
		}
		n = int(length)
	}
	if len(b) < frameHeaderSize+n {
		return frame{}, errShortFrame
	}
	f.data = b[frameHeaderSize : frameHeaderSize+n]
	crc := crc32.Update(crc32.Checksum(b[:12], castagno), castagno, f.data)
	if want := binary.LittleEndian.Uint32(b[12:]); crc != want {
		return frame{}, fmt.Errorf("%w: checksum %08x, want %08x", errBadFrame, crc, want)
	}
	if f.seq == 0 {
		return frame{}, fmt.Errorf("%w: seq 0", errBadFrame)
	}
	f.size = int64(frameHeaderSize + n)
	return f, nil
}

// findFrame reports the offset of the first valid frame in buf at or after
// from whose Seq is plausible after lastSeq. Open uses it to tell a torn tail
// (nothing valid follows) from corruption in the middle (something does).
func findFrame(buf []byte, from int64, lastSeq uint64) (int64, bool) {
	for p := from; p+frameHeaderSize <= int64(len(buf)); p++ {
		seq := binary.LittleEndian.Uint64(buf[p+4:])
		if seq == 0 || seq > lastSeq+maxSeqGap {
			continue
		}
		if _, err := decodeFrame(buf[p:]); err == nil {
			return p, true
		}
	}
	return 0, false
}
