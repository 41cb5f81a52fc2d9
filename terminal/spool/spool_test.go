package spool

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
)

func openT(t testing.TB, path string) *Spool {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func payload(seq uint64) []byte { return []byte(fmt.Sprintf("receipt-%03d", seq)) }

// appendN appends n records and checks each gets the expected Seq.
func appendN(t *testing.T, s *Spool, first uint64, n int) {
	t.Helper()
	for i := range uint64(n) {
		seq, err := s.Append(payload(first + i))
		if err != nil {
			t.Fatalf("Append: %v", err)
		}
		if seq != first+i {
			t.Fatalf("Append seq = %d, want %d", seq, first+i)
		}
	}
}

// checkPending asserts Pending holds exactly seqs, each with payload(seq).
func checkPending(t *testing.T, s *Spool, seqs ...uint64) {
	t.Helper()
	got := s.Pending(0)
	if len(got) != len(seqs) {
		t.Fatalf("Pending has %d records, want %d (%v)", len(got), len(seqs), got)
	}
	for i, r := range got {
		if r.Seq != seqs[i] || !bytes.Equal(r.Data, payload(seqs[i])) {
			t.Fatalf("Pending[%d] = {%d %q}, want {%d %q}", i, r.Seq, r.Data, seqs[i], payload(seqs[i]))
		}
	}
}

func seqRange(from, to uint64) []uint64 {
	var out []uint64
	for s := from; s <= to; s++ {
		out = append(out, s)
	}
	return out
}

func TestAppendAckReopen(t *testing.T) {
	tests := []struct {
		name    string
		appends int
		ack     uint64
		want    []uint64
	}{
		{"no ack", 5, 0, seqRange(1, 5)},
		{"ack some", 5, 3, seqRange(4, 5)},
		{"ack all", 5, 5, nil},
		{"ack first", 1, 1, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool")
			s := openT(t, path)
			appendN(t, s, 1, tt.appends)
			if err := s.Ack(tt.ack); err != nil {
				t.Fatalf("Ack(%d): %v", tt.ack, err)
			}
			checkPending(t, s, tt.want...)
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}

			s = openT(t, path)
			checkPending(t, s, tt.want...)
			appendN(t, s, uint64(tt.appends)+1, 1)
			checkPending(t, s, append(tt.want, uint64(tt.appends)+1)...)
		})
	}
}

func TestSeqMonotonicAcrossCompaction(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	s := openT(t, path)
	for range 3 {
		if _, err := s.Append(bytes.Repeat([]byte("y"), compactIdleBytes/2)); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	if err := s.Ack(3); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	if fi, _ := os.Stat(path); fi.Size() != headerSize {
		t.Fatalf("after acking everything file is %d bytes, want compacted to %d", fi.Size(), headerSize)
	}
	s.Close()

	s = openT(t, path)
	appendN(t, s, 4, 2)
	if err := s.Ack(5); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	s.Close()
	s = openT(t, path)
	appendN(t, s, 6, 1)
	checkPending(t, s, 6)
}

// A small spool is not rewritten on every acknowledgement: the ack is a
// frame appended to the same file, and it holds across a reopen.
func TestSmallAckAppends(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	s := openT(t, path)
	appendN(t, s, 1, 3)
	before, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Ack(3); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	after, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if !os.SameFile(before, after) || after.Size() <= before.Size() {
		t.Fatalf("acking 3 small records replaced or shrank the file (%d → %d bytes); want an ack frame appended", before.Size(), after.Size())
	}
	checkPending(t, s)
	s.Close()
	s = openT(t, path)
	checkPending(t, s)
	appendN(t, s, 4, 1)
	checkPending(t, s, 4)
}

func TestCompactWhenAckedBytesLarge(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	s := openT(t, path)
	big := bytes.Repeat([]byte("x"), 700<<10)
	for range 2 {
		if _, err := s.Append(big); err != nil {
			t.Fatalf("Append: %v", err)
		}
	}
	appendN(t, s, 3, 1)
	if err := s.Ack(2); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	want := int64(headerSize + frameHeaderSize + len(payload(3)))
	if fi, _ := os.Stat(path); fi.Size() != want {
		t.Fatalf("file is %d bytes after acking 1.4 MiB, want compacted to %d", fi.Size(), want)
	}
	s.Close()
	s = openT(t, path)
	checkPending(t, s, 3)
	appendN(t, s, 4, 1)
}

func TestRecordSizeLimit(t *testing.T) {
	tests := []struct {
		name    string
		size    int
		wantErr bool
	}{
		{"empty", 0, false},
		{"exactly 1 MiB", 1 << 20, false},
		{"1 MiB plus one", 1<<20 + 1, true},
	}
	s := openT(t, filepath.Join(t.TempDir(), "spool"))
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Append(make([]byte, tt.size))
			if (err != nil) != tt.wantErr {
				t.Fatalf("Append(%d bytes) error = %v, want error %v", tt.size, err, tt.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "exceeds limit") {
				t.Fatalf("error %q does not explain the limit", err)
			}
		})
	}
}

// Pending(after) gives only the records after a sequence, as a sender
// that has sent up to it asks; Len counts every record not acknowledged.
func TestPendingAfter(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "spool"))
	appendN(t, s, 1, 5)
	if err := s.Ack(2); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		after uint64
		want  []uint64
	}{{0, []uint64{3, 4, 5}}, {3, []uint64{4, 5}}, {5, nil}, {9, nil}} {
		var got []uint64
		for _, r := range s.Pending(c.after) {
			if !bytes.Equal(r.Data, payload(r.Seq)) {
				t.Fatalf("record %d holds %q", r.Seq, r.Data)
			}
			got = append(got, r.Seq)
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("Pending(%d) = %v, want %v", c.after, got, c.want)
		}
	}
	if n := s.Len(); n != 3 {
		t.Errorf("Len = %d, want 3", n)
	}
}

func TestMisuse(t *testing.T) {
	s := openT(t, filepath.Join(t.TempDir(), "spool"))
	appendN(t, s, 1, 2)
	if err := s.Ack(3); err == nil {
		t.Fatal("Ack beyond the last seq succeeded")
	}
	if err := s.Ack(1); err != nil {
		t.Fatalf("Ack(1): %v", err)
	}
	if err := s.Ack(1); err != nil {
		t.Fatalf("repeated Ack(1): %v", err)
	}
	checkPending(t, s, 2)
	s.Close()
	if _, err := s.Append([]byte("late")); err == nil {
		t.Fatal("Append after Close succeeded")
	}
	if err := s.Ack(2); err == nil {
		t.Fatal("Ack after Close succeeded")
	}
}

func TestLeftoverTempRemoved(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	if err := os.WriteFile(tempPath(path), []byte("half a compaction"), 0o600); err != nil {
		t.Fatal(err)
	}
	openT(t, path)
	if _, err := os.Stat(tempPath(path)); !os.IsNotExist(err) {
		t.Fatalf("leftover temp file still there: %v", err)
	}
}

func TestConcurrentUse(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	s := openT(t, path)
	const workers, each = 8, 20
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for range each {
				if _, err := s.Append([]byte("fault")); err != nil {
					t.Errorf("Append: %v", err)
					return
				}
				if p := s.Pending(0); len(p) > 0 {
					if err := s.Ack(p[0].Seq); err != nil {
						t.Errorf("Ack: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	want := s.Pending(0)
	for i := 1; i < len(want); i++ {
		if want[i].Seq <= want[i-1].Seq {
			t.Fatalf("Pending out of order: %d after %d", want[i].Seq, want[i-1].Seq)
		}
	}
	s.Close()
	if got := openT(t, path).Pending(0); len(got) != len(want) {
		t.Fatalf("after reopen %d pending, want %d", len(got), len(want))
	}
}

func BenchmarkAppend(b *testing.B) {
	for _, size := range []int{64, 4 << 10} {
		b.Run(fmt.Sprintf("%dB", size), func(b *testing.B) {
			s := openT(b, filepath.Join(b.TempDir(), "spool"))
			data := make([]byte, size)
			b.SetBytes(int64(size))
			for b.Loop() {
				if _, err := s.Append(data); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkAppendAck is a receipt's life on the terminal's disk: spooled
// (synced), then acknowledged.
func BenchmarkAppendAck(b *testing.B) {
	s := openT(b, filepath.Join(b.TempDir(), "spool"))
	data := make([]byte, 200)
	for b.Loop() {
		seq, err := s.Append(data)
		if err != nil {
			b.Fatal(err)
		}
		if err := s.Ack(seq); err != nil {
			b.Fatal(err)
		}
	}
}
