package audio

import (
	"encoding/binary"
	"math"
	"math/rand/v2"
	"testing"
	"time"
)

// signal builds test audio at 48 kHz: a sum of tone bursts over silence.
type burst struct {
	freq, amp float64
	from, to  time.Duration
}

func signal(total time.Duration, bursts ...burst) []float32 {
	const rate = 48000
	s := make([]float32, int(total.Seconds()*rate))
	for _, b := range bursts {
		for i := int(b.from.Seconds() * rate); i < int(b.to.Seconds()*rate) && i < len(s); i++ {
			s[i] += float32(b.amp * math.Sin(2*math.Pi*b.freq*float64(i)/rate))
		}
	}
	return s
}

func noise(s []float32, amp float64) []float32 {
	r := rand.New(rand.NewPCG(1, 2))
	for i := range s {
		s[i] += float32(amp * (2*r.Float64() - 1))
	}
	return s
}

func TestToneSegments(t *testing.T) {
	ms := time.Millisecond
	tests := []struct {
		name    string
		samples []float32
		freq    float64
		want    []Segment
	}{
		{"1 kHz burst in silence", signal(time.Second, burst{1000, 0.5, 250 * ms, 750 * ms}), 1000, []Segment{{250 * ms, 750 * ms}}},
		{"1 kHz at odd onset", signal(time.Second, burst{1000, 0.5, 333 * ms, 517 * ms}), 1000, []Segment{{333 * ms, 517 * ms}}},
		{"quiet 1 kHz", signal(time.Second, burst{1000, 0.01, 100 * ms, 600 * ms}), 1000, []Segment{{100 * ms, 600 * ms}}},
		{"440 Hz is not 1 kHz", signal(time.Second, burst{440, 0.5, 0, time.Second}), 1000, nil},
		{"1.2 kHz is not 1 kHz", signal(time.Second, burst{1200, 0.5, 0, time.Second}), 1000, nil},
		{"440 Hz then 1 kHz", signal(time.Second, burst{440, 0.5, 0, 500 * ms}, burst{1000, 0.5, 500 * ms, time.Second}), 1000, []Segment{{500 * ms, time.Second}}},
		{"1 kHz mixed with 1.5 kHz", signal(time.Second, burst{1500, 0.4, 0, time.Second}, burst{1000, 0.4, 200 * ms, 400 * ms}), 1000, []Segment{{200 * ms, 400 * ms}}},
		{"gap of 20 ms merged", signal(time.Second, burst{1000, 0.5, 100 * ms, 300 * ms}, burst{1000, 0.5, 320 * ms, 500 * ms}), 1000, []Segment{{100 * ms, 500 * ms}}},
		{"gap of 100 ms kept", signal(time.Second, burst{1000, 0.5, 100 * ms, 300 * ms}, burst{1000, 0.5, 400 * ms, 500 * ms}), 1000, []Segment{{100 * ms, 300 * ms}, {400 * ms, 500 * ms}}},
		{"tone from the first sample", signal(500*ms, burst{1000, 0.5, 0, 200 * ms}), 1000, []Segment{{0, 200 * ms}}},
		{"tone to the last sample", signal(500*ms, burst{1000, 0.5, 300 * ms, 500 * ms}), 1000, []Segment{{300 * ms, 500 * ms}}},
		{"white noise", noise(signal(time.Second), 0.1), 1000, nil},
		{"tone in noise", noise(signal(time.Second, burst{1000, 0.3, 400 * ms, 900 * ms}), 0.05), 1000, []Segment{{400 * ms, 900 * ms}}},
		{"silence", signal(time.Second), 1000, nil},
		{"too short", signal(5 * ms), 1000, nil},
		{"frequency above Nyquist", signal(time.Second, burst{1000, 0.5, 0, time.Second}), 30000, nil},
		{"zero frequency", signal(time.Second, burst{1000, 0.5, 0, time.Second}), 0, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := ToneSegments(tt.samples, 48000, tt.freq)
			if len(got) != len(tt.want) {
				t.Fatalf("ToneSegments = %v, want %v", got, tt.want)
			}
			for i := range got {
				if absDur(got[i].Start-tt.want[i].Start) > 3*ms || absDur(got[i].End-tt.want[i].End) > 3*ms {
					t.Errorf("segment %d = %v, want %v (±3 ms)", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestToneSegmentsBadRate(t *testing.T) {
	s := signal(time.Second, burst{1000, 0.5, 0, time.Second})
	for _, rate := range []int{0, -48000} {
		if got := ToneSegments(s, rate, 1000); got != nil {
			t.Errorf("rate %d: got %v, want nil", rate, got)
		}
	}
}

func TestToneWAV(t *testing.T) {
	tests := []struct {
		name      string
		freq      float64
		d         time.Duration
		rate      int
		amp       float64
		wantLen   int
		wantPeak  float64
		wantProbe bool
	}{
		{"1 kHz 500 ms 48k", 1000, 500 * time.Millisecond, 48000, 0.5, 24000, 0.5, true},
		{"440 Hz 1 s 22.05k", 440, time.Second, 22050, 1, 22050, 1, true},
		{"amplitude clamped", 1000, 10 * time.Millisecond, 8000, 7, 80, 1, true},
		{"negative amplitude is silence", 1000, 10 * time.Millisecond, 8000, -1, 80, 0, true},
		{"zero rate gives no samples", 1000, time.Second, 0, 0.5, 0, 0, false},
		{"negative duration gives no samples", 1000, -time.Second, 48000, 0.5, 0, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wav := ToneWAV(tt.freq, tt.d, tt.rate, tt.amp)
			if got := int(binary.LittleEndian.Uint32(wav[40:])); got != 2*tt.wantLen || len(wav) != 44+2*tt.wantLen {
				t.Fatalf("data size %d, file %d bytes; want %d samples", got, len(wav), tt.wantLen)
			}
			info, err := Probe(wav)
			if (err == nil) != tt.wantProbe {
				t.Fatalf("Probe: %+v, %v", info, err)
			}
			if !tt.wantProbe {
				return
			}
			samples, rate, err := ReadWAV(wav)
			if err != nil || rate != tt.rate || len(samples) != tt.wantLen {
				t.Fatalf("ReadWAV: %d samples at %d Hz, %v", len(samples), rate, err)
			}
			if p := peak(samples); math.Abs(p-tt.wantPeak) > 0.001 {
				t.Errorf("peak %.4f, want %.4f", p, tt.wantPeak)
			}
			if tt.wantPeak > 0 && zeroCrossings(samples) != int(math.Round(tt.freq*tt.d.Seconds()))-1 {
				t.Errorf("%d periods, want %v", zeroCrossings(samples), tt.freq*tt.d.Seconds())
			}
		})
	}
}

func TestReadWAV(t *testing.T) {
	stereo := rawWAV(1, 2, 8000, 16, 8, []byte{0x00, 0x40, 0x00, 0x20, 0x00, 0xC0, 0x00, 0x00}) // (0.5, 0.25), (-0.5, 0)
	tests := []struct {
		name    string
		data    []byte
		want    []float32
		wantErr bool
	}{
		{"stereo is mixed to mono", stereo, []float32{0.375, -0.25}, false},
		{"header never finished (size 0)", rawWAV(1, 1, 8000, 16, 0, []byte{0x00, 0x40, 0x00, 0xC0}), []float32{0.5, -0.5}, false},
		{"placeholder size", rawWAV(1, 1, 8000, 16, 0xFFFFFFFF, []byte{0x00, 0x40}), []float32{0.5}, false},
		{"recording cut short", rawWAV(1, 1, 8000, 16, 1000, []byte{0x00, 0x40, 0x00}), []float32{0.5}, false},
		{"float is rejected", rawWAV(3, 1, 8000, 32, 4, make([]byte, 4)), nil, true},
		{"garbage", []byte("garbage garbage garbage garbage garbage garbage"), nil, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, rate, err := ReadWAV(tt.data)
			if (err != nil) != tt.wantErr {
				t.Fatalf("ReadWAV error = %v, want error %v", err, tt.wantErr)
			}
			if !tt.wantErr && (rate != 8000 || !equalSamples(got, tt.want)) {
				t.Errorf("ReadWAV = %v at %d Hz, want %v at 8000 Hz", got, rate, tt.want)
			}
		})
	}
}
