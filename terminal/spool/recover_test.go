package spool

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// frameOffset is where the frame of seq starts in a file written by appendN
// from seq 1 with nothing acked.
func frameOffset(seq uint64) int64 {
	off := int64(headerSize)
	for s := uint64(1); s < seq; s++ {
		off += int64(frameHeaderSize + len(payload(s)))
	}
	return off
}

func TestTornTail(t *testing.T) {
	garbage := make([]byte, 300)
	rand.NewChaCha8([32]byte{1}).Read(garbage)
	lastFrame := int64(frameHeaderSize + len(payload(5)))
	tests := []struct {
		name  string
		cut   int64  // bytes removed from the end
		add   []byte // bytes then appended
		wantN uint64 // records that survive
	}{
		{"last byte missing", 1, nil, 4},
		{"a few bytes missing", 5, nil, 4},
		{"only part of the frame header", lastFrame - 7, nil, 4},
		{"garbage appended", 0, garbage, 5},
		{"zeros appended", 0, make([]byte, 4096), 5},
		{"cut then garbage", 3, garbage, 4},
		{"cut then zeros", 9, make([]byte, 64), 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool")
			s := openT(t, path)
			appendN(t, s, 1, 5)
			s.Close()
			fi, _ := os.Stat(path)
			if err := os.Truncate(path, fi.Size()-tt.cut); err != nil {
				t.Fatal(err)
			}
			f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
			f.Write(tt.add)
			f.Close()

			s = openT(t, path)
			checkPending(t, s, seqRange(1, tt.wantN)...)
			if fi, _ := os.Stat(path); fi.Size() != frameOffset(tt.wantN+1) {
				t.Fatalf("file is %d bytes after recovery, want %d", fi.Size(), frameOffset(tt.wantN+1))
			}
			appendN(t, s, tt.wantN+1, 1)
			s.Close()
			checkPending(t, openT(t, path), seqRange(1, tt.wantN+1)...)
		})
	}
}

func TestCorruptMiddle(t *testing.T) {
	at := frameOffset(2)
	tests := []struct {
		name   string
		mutate func(b []byte)
	}{
		{"length field", func(b []byte) { b[at] ^= 0x01 }},
		{"length too large", func(b []byte) { b[at+3] = 0x7f }},
		{"seq field", func(b []byte) { b[at+4] ^= 0x10 }},
		{"checksum", func(b []byte) { b[at+12] ^= 0xff }},
		{"data byte", func(b []byte) { b[at+frameHeaderSize+2] ^= 0x20 }},
		{"zeroed frame", func(b []byte) { clear(b[at : at+frameHeaderSize]) }},
		{"valid frame with repeated seq", func(b []byte) {
			copy(b[at:], encodeFrame(1, payload(2), false))
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool")
			s := openT(t, path)
			appendN(t, s, 1, 4)
			s.Close()
			b, _ := os.ReadFile(path)
			tt.mutate(b)
			os.WriteFile(path, b, 0o600)

			_, err := Open(path)
			if err == nil {
				t.Fatal("Open succeeded on a file corrupt in the middle")
			}
			for _, want := range []string{path, fmt.Sprintf("offset %d", at)} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not name %q", err, want)
				}
			}
			if after, _ := os.ReadFile(path); !bytes.Equal(after, b) {
				t.Error("failed Open modified the file")
			}
		})
	}
}

func TestCorruptHeader(t *testing.T) {
	tests := []struct {
		name   string
		mutate func(b []byte) []byte
	}{
		{"wrong magic", func(b []byte) []byte { b[0] = 'X'; return b }},
		{"bad checksum", func(b []byte) []byte { b[10] ^= 1; return b }},
		{"short header", func(b []byte) []byte { return b[:headerSize-1] }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool")
			s := openT(t, path)
			appendN(t, s, 1, 1)
			s.Close()
			b, _ := os.ReadFile(path)
			os.WriteFile(path, tt.mutate(b), 0o600)
			if _, err := Open(path); err == nil || !strings.Contains(err.Error(), path) {
				t.Fatalf("Open error = %v, want one naming %s", err, path)
			}
		})
	}
}
