package protocol

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

// A file's pieces: the first of first_chunk bytes, each after it as large
// as all before it, up to chunk_size; without first_chunk, all of
// chunk_size. ChunkAt walks them end to end, knows no other offsets, and
// ChunkCount agrees with the walk.
func TestMediaChunks(t *testing.T) {
	const k = 1 << 10
	cases := []struct {
		size         int64
		first, chunk int
		want         []int64 // piece lengths, in KiB
	}{
		{167 * k, 16 * k, 64 * k, []int64{16, 16, 32, 64, 39}},
		{167 * k, 0, 64 * k, []int64{64, 64, 39}},
		{167 * k, 64 * k, 64 * k, []int64{64, 64, 39}},
		{10 * k, 16 * k, 64 * k, []int64{10}},
		{16 * k, 16 * k, 64 * k, []int64{16}},
		{17 * k, 16 * k, 64 * k, []int64{16, 1}},
		{40 * k, 16 * k, 64 * k, []int64{16, 16, 8}},
		{64 * k, 16 * k, 64 * k, []int64{16, 16, 32}},
		{65 * k, 16 * k, 64 * k, []int64{16, 16, 32, 1}},
		{300 * k, 4 * k, 32 * k, []int64{4, 4, 8, 16, 32, 32, 32, 32, 32, 32, 32, 32, 12}},
	}
	for _, c := range cases {
		m := Media{Size: c.size, FirstChunk: c.first, ChunkSize: c.chunk}
		t.Run(fmt.Sprintf("%d bytes from %d up to %d", c.size, c.first, c.chunk), func(t *testing.T) {
			var got []int64
			starts := map[int64]bool{}
			for off := int64(0); off < m.Size; {
				i, n, ok := m.ChunkAt(off)
				if !ok || i != len(got) || n <= 0 {
					t.Fatalf("ChunkAt(%d) = %d, %d, %v; want piece %d", off, i, n, ok, len(got))
				}
				starts[off] = true
				got = append(got, n)
				off += n
			}
			want := slices.Clone(c.want)
			for i := range want {
				want[i] *= k
			}
			if !slices.Equal(got, want) {
				t.Fatalf("pieces %v, want %v", got, want)
			}
			var pieces []int64
			for _, n := range m.Pieces() {
				pieces = append(pieces, n)
			}
			if !slices.Equal(pieces, want) {
				t.Fatalf("Pieces yields %v, want %v", pieces, want)
			}
			if n := m.ChunkCount(); n != len(want) {
				t.Fatalf("ChunkCount = %d, want %d", n, len(want))
			}
			for off := int64(-1); off <= m.Size+1; off++ {
				if _, _, ok := m.ChunkAt(off); ok != starts[off] {
					t.Fatalf("ChunkAt(%d) ok = %v; a piece starts there: %v", off, ok, starts[off])
				}
			}
		})
	}
}

// FuzzMediaChunks: for any description that passes Validate's checks of
// its sizes, ChunkAt's pieces cover the file end to end, each where the
// walk expects it, no larger than chunk_size, and ChunkCount counts them.
func FuzzMediaChunks(f *testing.F) {
	f.Add(int64(167<<10), 16<<10, 64<<10)
	f.Add(int64(1), 4<<10, 4<<10)
	f.Add(int64(MaxMediaSize), 4<<10, 1<<20)
	f.Add(int64(40<<10), 0, 64<<10)
	f.Fuzz(func(t *testing.T, size int64, first, chunk int) {
		m := Media{SHA256: strings.Repeat("0", 64), Size: size, Format: "mp3", DurationMS: 1000, ChunkSize: chunk, FirstChunk: first}
		if err := m.Validate(); err != nil && !strings.Contains(err.Error(), "chunk hashes") {
			return // sizes refused: the pieces are not counted
		}
		want := m.ChunkCount()
		i := 0
		for off := int64(0); off < m.Size; i++ {
			j, l, ok := m.ChunkAt(off)
			if !ok || j != i || l <= 0 || l > int64(chunk) {
				t.Fatalf("%+v: ChunkAt(%d) = %d, %d, %v; want piece %d", m, off, j, l, ok, i)
			}
			if off > 0 {
				if _, _, ok := m.ChunkAt(off - 1); ok {
					t.Fatalf("%+v: a piece starts at %d, inside piece %d", m, off-1, i-1)
				}
			}
			off += l
		}
		if i != want {
			t.Fatalf("%+v: %d pieces walked, ChunkCount %d", m, i, want)
		}
	})
}
