// Copyright 2026 the Dalaba authors. Licensed under the Apache License,
// Version 2.0, as the rest of this package.

package frame

import (
	"math"
	"math/rand/v2"
	"testing"
)

// TestMatrix compares the DCT-based matrixing with the definition, computed
// in float64, and with go-mp3's float32 64×32 matrix product: its error
// must stay at the same, rounding, level.
func TestMatrix(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	worst, worstNaive := 0.0, 0.0
	for range 1000 {
		var s [32]float32
		for k := range s {
			s[k] = float32(rng.NormFloat64())
		}
		var v [64]float32
		matrix(&v, &s)
		for i := range v {
			want := 0.0
			for k := range s {
				want += float64(s[k]) * math.Cos(float64((16+i)*(2*k+1))*math.Pi/64)
			}
			worst = max(worst, math.Abs(float64(v[i])-want))
			naive := float32(0)
			for k := range s {
				naive += synthNWin[i][k] * s[k]
			}
			worstNaive = max(worstNaive, math.Abs(float64(naive)-want))
		}
	}
	if worst > 4*worstNaive {
		t.Errorf("largest error %g, the 64×32 matrix's %g", worst, worstNaive)
	}
	t.Logf("largest error %g, the 64×32 matrix's %g", worst, worstNaive)
}

// synthNWin is go-mp3's matrix: synthNWin[i][k] = cos((16+i)(2k+1)π/64).
var synthNWin = [64][32]float32{}

func init() {
	for i := 0; i < 64; i++ {
		for j := 0; j < 32; j++ {
			synthNWin[i][j] =
				float32(math.Cos(float64((16+i)*(2*j+1)) * (math.Pi / 64.0)))
		}
	}
}
