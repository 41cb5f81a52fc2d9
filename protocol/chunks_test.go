package protocol

import (
	"fmt"
	"slices"
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
