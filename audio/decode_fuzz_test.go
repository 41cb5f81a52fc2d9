package audio

import (
	"bytes"
	"io"
	"testing"
	"time"
)

// shortMP3 cuts an MP3 fixture after its last whole frame within max bytes,
// so that Probe accepts it: a small seed that fuzzes quickly.
func shortMP3(tb testing.TB, name string, max int) []byte {
	tb.Helper()
	b := readFixture(tb, name)
	for n := min(max, len(b)); n > 0; n-- {
		if _, err := Probe(b[:n]); err == nil {
			return b[:n]
		}
	}
	tb.Fatalf("no prefix of %s up to %d bytes is a valid MP3", name, max)
	return nil
}

// FuzzDecode checks that a file Probe accepts plays in full: Decode takes
// it, the stream ends without an error, and it lasts what Probe measured.
// (FuzzProbe checks that no input, accepted or not, makes them panic.)
func FuzzDecode(f *testing.F) {
	f.Add(ToneWAV(1000, 20*time.Millisecond, 8000, 0.5), uint8(0), uint8(80))
	f.Add(stereoWAV(440, 10*time.Millisecond, 22050), uint8(1), uint8(100))
	f.Add(rawWAV(1, 1, 16000, 16, 0xFFFFFFFF, make([]byte, 3200)), uint8(2), uint8(0))
	f.Add(shortMP3(f, "tone1k_stereo_44k1.mp3", 2000), uint8(0), uint8(80))
	f.Add(shortMP3(f, "tone1k_at200ms_mono_22k05.mp3", 2000), uint8(1), uint8(50))
	f.Add(shortMP3(f, "tone1k_mono_44k1_notag.mp3", 1500), uint8(2), uint8(80))
	rates := []int{48000, 44100, 8000, 192000}
	f.Fuzz(func(t *testing.T, data []byte, rateIndex, volume uint8) {
		info, err := Probe(data)
		if err != nil {
			return
		}
		outRate, vol := rates[int(rateIndex)%len(rates)], int(volume)%101
		r, err := Decode(bytes.NewReader(data), info.Format, outRate, vol)
		if err != nil {
			t.Fatalf("Probe accepted %+v but Decode refused it: %v", info, err)
		}
		// The output frames Probe's duration means at outRate.
		ns := int64(info.Duration)
		samples := (ns*int64(info.SampleRate) + int64(time.Second) - 1) / int64(time.Second)
		want := (samples*int64(outRate) + int64(info.SampleRate) - 1) / int64(info.SampleRate)
		limit := 4*want + 1<<16
		n, err := io.Copy(io.Discard, io.LimitReader(r, limit))
		if err != nil {
			t.Fatalf("decoding %+v failed after %d bytes: %v", info, n, err)
		}
		if n%4 != 0 {
			t.Fatalf("%d bytes of output: not whole s16le stereo frames", n)
		}
		if got := n / 4; got < want-1 || got > want+1 {
			t.Fatalf("%+v at %d Hz: %d output frames, want %d (%d samples in)", info, outRate, got, want, samples)
		}
	})
}
