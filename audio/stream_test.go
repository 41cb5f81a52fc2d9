package audio

import (
	"encoding/binary"
	"io"
	"math"
	"testing"
	"time"
)

// monoTone is n samples of a sine at freq as s16le mono at rate.
func monoTone(freq float64, rate, n int) []byte {
	b := make([]byte, 0, 2*n)
	for i := range n {
		b = binary.LittleEndian.AppendUint16(b, uint16(int16(0.5*32767*math.Sin(2*math.Pi*freq*float64(i)/float64(rate)))))
	}
	return b
}

// leftSamples returns the left channel of s16le stereo as floats.
func leftSamples(pcm []byte) []float32 {
	out := make([]float32, 0, len(pcm)/4)
	for i := 0; i+3 < len(pcm); i += 4 {
		out = append(out, float32(int16(binary.LittleEndian.Uint16(pcm[i:])))/32768)
	}
	return out
}

func TestStreamResamplesAndEnds(t *testing.T) {
	s := NewStream(16000, 48000, 100, 60*time.Millisecond, time.Hour)
	pcm := monoTone(1000, 16000, 16000) // 1 s
	for i := 0; i < 4*640; i += 640 {   // a little over the 60 ms prebuffer
		s.Write(pcm[i : i+640])
	}
	first := make([]byte, 1<<16)
	n, err := s.Read(first) // playing from now on: nothing more is trimmed
	if err != nil {
		t.Fatal(err)
	}
	for i := 4 * 640; i < len(pcm); i += 640 {
		s.Write(pcm[i : i+640])
	}
	s.Close()
	rest, err := io.ReadAll(s)
	if err != nil {
		t.Fatal(err)
	}
	out := append(first[:n], rest...)
	// Every input sample but the last yields three output frames; at the
	// start only the newest 60 ms of the 80 ms queued were kept.
	dropped, _ := s.Stats()
	if want := (16000-1)*3*4 - 3828; len(out) != want || dropped != 19937500 {
		t.Fatalf("%d bytes out, %v dropped; want %d and 19.9375ms", len(out), dropped, want)
	}
	segs := ToneSegments(leftSamples(out), 48000, 1000)
	if len(segs) != 1 || segs[0].End-segs[0].Start < 950*time.Millisecond {
		t.Fatalf("tone segments %v, want one of about 1 s", segs)
	}
	if got := ToneSegments(leftSamples(out), 48000, 3000); len(got) != 0 {
		t.Fatalf("a 1 kHz tone came out with 3 kHz in it: %v", got)
	}
}

func TestStreamKeepsOnlyTheNewestPrebufferBeforeStarting(t *testing.T) {
	s := NewStream(16000, 16000, 100, 60*time.Millisecond, time.Hour)
	// 1 s arrives while the sink is not reading yet (the amplifier warms up).
	for i := range 50 {
		frame := make([]byte, 640)
		for j := 0; j < 640; j += 2 {
			binary.LittleEndian.PutUint16(frame[j:], uint16(i+1)) // the frame's number as its samples
		}
		s.Write(frame)
	}
	buf := make([]byte, 1<<16)
	n, err := s.Read(buf)
	if err != nil {
		t.Fatal(err)
	}
	// 60 ms at 16 kHz stereo: the last three frames.
	if want := 960 * 4; n != want {
		t.Fatalf("first read %d bytes, want %d (the newest 60 ms)", n, want)
	}
	if first := int16(binary.LittleEndian.Uint16(buf)); first < 47 {
		t.Fatalf("first sample from frame %d, want 47 or 48: older audio must be dropped", first)
	}
	if dropped, _ := s.Stats(); dropped < 900*time.Millisecond {
		t.Fatalf("dropped %v, want the 940 ms that came before", dropped)
	}
}

func TestStreamAbortAndEmpty(t *testing.T) {
	s := NewStream(16000, 48000, 100, 60*time.Millisecond, time.Second)
	buf := make([]byte, 4096)
	if n, err := s.Read(buf); n != 0 || err != nil {
		t.Fatalf("empty stream read %d, %v; want 0, nil (the sink plays silence)", n, err)
	}
	s.Write(monoTone(440, 16000, 3200))
	s.Abort()
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("aborted stream read %d, %v; want EOF at once", n, err)
	}
	s.Write(monoTone(440, 16000, 320)) // ignored
	if n, err := s.Read(buf); n != 0 || err != io.EOF {
		t.Fatalf("write after abort: read %d, %v", n, err)
	}
}
