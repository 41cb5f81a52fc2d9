// Copyright 2026 the Dalaba authors. Licensed under the Apache License,
// Version 2.0, as the rest of this package.

package imdct

import (
	"math/rand/v2"
	"testing"
)

// TestWinSymmetry checks the symmetries Win relies on in the float32 table
// (so that mirroring gives exactly what summing would), and compares Win
// with go-mp3's direct sum for every block type.
func TestWinSymmetry(t *testing.T) {
	for m := range cosN36 {
		for p := 0; p < 9; p++ {
			if cosN36[m][17-p] != -cosN36[m][p] || cosN36[m][35-p] != cosN36[m][18+p] {
				t.Fatalf("cosN36[%d] lacks the symmetry at p = %d", m, p)
			}
		}
	}
	rng := rand.New(rand.NewPCG(5, 6))
	for _, bt := range []int{0, 1, 3} {
		for range 200 {
			var in [18]float32
			for m := range in {
				if rng.IntN(3) > 0 {
					in[m] = float32(rng.NormFloat64())
				}
			}
			var out [36]float32
			Win(&out, &in, bt)
			for p := range out {
				sum := float32(0)
				for m := range in {
					sum += in[m] * cosN36[m][p]
				}
				if want := sum * imdctWinData[bt][p]; out[p] != want {
					t.Fatalf("block type %d, out[%d] = %g, the direct sum %g", bt, p, out[p], want)
				}
			}
		}
	}
}
