package main

import (
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// TestLiveSource: a WAV at another rate becomes 16 kHz mono PCM of the same
// length and tone; a file that is not audio is refused with what to do.
func TestLiveSource(t *testing.T) {
	dir := t.TempDir()
	wav := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(wav, audio.ToneWAV(1000, 500*time.Millisecond, 44100, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}
	src, err := liveSource(wav)
	if err != nil {
		t.Fatal(err)
	}
	pcm, err := io.ReadAll(src)
	if err != nil {
		t.Fatal(err)
	}
	if want := protocol.LiveRate / 2 * 2; len(pcm) < want-4 || len(pcm) > want+4 {
		t.Fatalf("%d bytes of PCM, want about %d (0.5 s of 16 kHz mono)", len(pcm), want)
	}
	samples := make([]float32, len(pcm)/2)
	for i := range samples {
		samples[i] = float32(int16(uint16(pcm[2*i])|uint16(pcm[2*i+1])<<8)) / 32768
	}
	if segs := audio.ToneSegments(samples, protocol.LiveRate, 1000); len(segs) != 1 || segs[0].End-segs[0].Start < 450*time.Millisecond {
		t.Fatalf("tone segments %v, want one of 0.5 s", segs)
	}
	text := filepath.Join(dir, "notes.txt")
	os.WriteFile(text, []byte("not audio at all"), 0o644)
	if _, err := liveSource(text); err == nil || !strings.Contains(err.Error(), "neither WAV nor MP3") || !strings.Contains(err.Error(), "give -") {
		t.Fatalf("text file as live source: %v", err)
	}
	if _, err := liveSource(filepath.Join(dir, "missing.wav")); err == nil {
		t.Fatal("a missing file was accepted")
	}
}
