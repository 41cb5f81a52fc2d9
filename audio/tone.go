package audio

import (
	"encoding/binary"
	"math"
	"slices"
	"time"
)

// ToneWAV returns a complete 16-bit PCM mono WAV file holding a sine tone of
// freqHz lasting d at sampleRate, with peak amplitude (0..1, clamped) of full
// scale. The tone starts at phase zero and has no fade. A non-positive
// sampleRate or duration yields a WAV with no samples.
func ToneWAV(freqHz float64, d time.Duration, sampleRate int, amplitude float64) []byte {
	if !(amplitude > 0) {
		amplitude = 0
	}
	amplitude = min(amplitude, 1)
	var n int64
	if sampleRate > 0 && d > 0 {
		n = int64(math.Round(d.Seconds() * float64(sampleRate)))
	}
	n = min(n, (math.MaxUint32-36)/2) // keep the header's sizes valid
	rate := max(sampleRate, 0)
	out := make([]byte, 44, 44+2*n)
	copy(out, wavHeader(rate, 1, uint32(2*n)))
	w := 2 * math.Pi * freqHz / float64(max(rate, 1))
	for i := int64(0); i < n; i++ {
		v := int16(math.Round(amplitude * 32767 * math.Sin(w*float64(i))))
		out = binary.LittleEndian.AppendUint16(out, uint16(v))
	}
	return out
}

// Segment is a stretch of time during which a tone is present.
type Segment struct{ Start, End time.Duration }

// Tone detection parameters (see ToneSegments).
const (
	toneWindow   = 10 * time.Millisecond // analysis window
	toneHops     = 4                     // windows overlap: hop = window/toneHops
	toneShare    = 0.2                   // share of a window's energy the tone must carry
	toneFloorRMS = 3e-4                  // about -70 dBFS: quieter windows count as silence
	toneMaxGap   = 30 * time.Millisecond // shorter gaps are merged
	toneFaint    = 0.05                  // runs 26 dB below the loudest are ignored
)

// ToneSegments finds where a tone of freqHz is present in samples (mono, at
// rate). It measures the tone with the Goertzel algorithm over 10 ms windows
// sliding by 2.5 ms. A window holds the tone when the tone carries at least a
// fifth of the window's energy (so silence, noise and other tones more than
// about 200 Hz away do not count, while up to four simultaneous tones are each
// found) and the window is louder than about -70 dBFS.
//
// Each segment's edges are placed where the tone's measured amplitude crosses
// half of its median amplitude within the segment, interpolated between
// windows, which puts them within about a millisecond of the true onset and
// end. Stretches more than 26 dB quieter than the loudest stretch of the tone
// are ignored (codec ringing, echoes). Segments separated by less than 30 ms
// are merged.
func ToneSegments(samples []float32, rate int, freqHz float64) []Segment {
	if rate <= 0 || !(freqHz > 0) || freqHz >= float64(rate)/2 {
		return nil
	}
	n := int(int64(rate) * int64(toneWindow) / int64(time.Second))
	hop := max(n/toneHops, 1)
	if n < 8 || len(samples) < n {
		return nil
	}
	count := (len(samples)-n)/hop + 1
	amp := make([]float64, count)
	on := make([]bool, count)
	coeff := 2 * math.Cos(2*math.Pi*freqHz/float64(rate))
	for i := range count {
		w := samples[i*hop : i*hop+n]
		power, energy := goertzel(w, coeff)
		amp[i] = 2 * math.Sqrt(power) / float64(n)
		rms := math.Sqrt(energy / float64(n))
		on[i] = rms >= toneFloorRMS && 2*power >= toneShare*float64(n)*energy
	}

	centre := func(x float64) time.Duration { // window index -> time of its centre
		return time.Duration((x*float64(hop) + float64(n)/2) / float64(rate) * float64(time.Second))
	}
	total := time.Duration(float64(len(samples)) / float64(rate) * float64(time.Second))

	// Runs of consecutive windows holding the tone, with their median amplitude.
	type run struct {
		i, j int
		half float64
	}
	var runs []run
	loudest := 0.0
	for i := 0; i < count; i++ {
		if !on[i] {
			continue
		}
		j := i
		for j+1 < count && on[j+1] {
			j++
		}
		m := median(amp[i : j+1])
		runs = append(runs, run{i, j, m / 2})
		loudest = max(loudest, m)
		i = j
	}

	var segs []Segment
	for _, r := range runs {
		if 2*r.half < toneFaint*loudest {
			continue // codec ringing or an echo of a louder stretch
		}
		i, j, half := r.i, r.j, r.half
		// Find the half-amplitude crossings nearest the run's edges: inwards
		// past faint edges (codec ringing, noise), outwards past loud ones.
		a, b := i, j
		for a < j && amp[a] < half {
			a++
		}
		for a > 0 && amp[a-1] >= half {
			a--
		}
		for b > a && amp[b] < half {
			b--
		}
		for b+1 < count && amp[b+1] >= half {
			b++
		}
		seg := Segment{Start: 0, End: total}
		if a > 0 {
			seg.Start = centre(float64(a-1) + crossing(amp[a-1], amp[a], half))
		}
		if b+1 < count {
			seg.End = centre(float64(b) + 1 - crossing(amp[b+1], amp[b], half))
		}
		if k := len(segs) - 1; k >= 0 && seg.Start-segs[k].End < toneMaxGap {
			segs[k].End = max(segs[k].End, seg.End)
		} else {
			segs = append(segs, seg)
		}
	}
	return segs
}

// goertzel returns the squared magnitude of the DTFT of w at the frequency
// whose coefficient is coeff = 2cos(ω), and the energy of w.
func goertzel(w []float32, coeff float64) (power, energy float64) {
	var s1, s2 float64
	for _, v := range w {
		x := float64(v)
		energy += x * x
		s1, s2 = x+coeff*s1-s2, s1
	}
	power = s1*s1 + s2*s2 - coeff*s1*s2
	return max(power, 0), energy
}

// crossing returns where, between a low value lo (at 0) and a high value hi
// (at 1), the straight line between them reaches level.
func crossing(lo, hi, level float64) float64 {
	if hi <= lo {
		return 1
	}
	return min(max((level-lo)/(hi-lo), 0), 1)
}

// median returns the median of v (not modified).
func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}
