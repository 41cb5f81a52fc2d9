// Copyright 2026 the Dalaba authors. Licensed under the Apache License,
// Version 2.0, as the rest of this package.

package frame

import "math"

// dctCoef[N] holds 1/(2·cos(π(2n+1)/(2N))), n < N/2, for the split of an
// N-point DCT-II into two of N/2 points (Byeong Gi Lee's algorithm, as in
// mpg123 and most fast MP3 decoders).
var dctCoef = func() (c [33][]float32) {
	for n := 4; n <= 32; n *= 2 {
		c[n] = make([]float32, n/2)
		for i := range c[n] {
			c[n][i] = float32(1 / (2 * math.Cos(math.Pi*float64(2*i+1)/float64(2*n))))
		}
	}
	return c
}()

var cosQuarterPi = float32(math.Cos(math.Pi / 4))

// dct computes x's DCT-II in place, X[k] = Σ x[n]·cos(π(2n+1)k/(2N)), for
// N = len(x) a power of two from 2 to 32; tmp is scratch of N values.
func dct(x, tmp []float32) {
	n := len(x)
	if n == 2 {
		a, b := x[0], x[1]
		x[0] = a + b
		x[1] = (a - b) * cosQuarterPi
		return
	}
	h := n / 2
	c := dctCoef[n][:h]
	x = x[:n]
	tmp = tmp[:n]
	for i := 0; i < h; i++ {
		a, b := x[i], x[n-1-i]
		tmp[i] = a + b
		tmp[h+i] = (a - b) * c[i]
	}
	// Even outputs are the DCT of the sums, odd ones the sums of
	// neighbouring outputs of the DCT of the scaled differences.
	dct(tmp[:h], x[:h])
	dct(tmp[h:], x[h:])
	for k := 0; k < h-1; k++ {
		x[2*k] = tmp[k]
		x[2*k+1] = tmp[h+k] + tmp[h+k+1]
	}
	x[n-2] = tmp[h-1]
	x[n-1] = tmp[n-1]
}

// matrix computes the synthesis filter bank's V from 32 subband samples s,
// V[i] = Σ s[k]·cos((16+i)(2k+1)π/64), i < 64, with one 32-point DCT-II X
// (go-mp3 multiplied by the 64×32 matrix): V[i] = X[i+16] for i < 16,
// V[16] = 0, V[i] = -X[48-i] for 16 < i ≤ 48 and V[i] = -X[i-48] above.
func matrix(v *[64]float32, s *[32]float32) {
	var tmp [32]float32
	x := *s
	dct(x[:], tmp[:])
	for i := 0; i < 16; i++ {
		v[i] = x[i+16]
	}
	v[16] = 0
	for i := 17; i <= 48; i++ {
		v[i] = -x[48-i]
	}
	for i := 49; i < 64; i++ {
		v[i] = -x[i-48]
	}
}
