package audio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"
	"time"
)

// rawWAV builds a WAV file with the given fmt fields; declared is the size
// written in the data chunk header, data what actually follows.
func rawWAV(code, channels uint16, rate uint32, bits uint16, declared uint32, data []byte) []byte {
	var b bytes.Buffer
	b.WriteString("RIFF")
	binary.Write(&b, binary.LittleEndian, uint32(36+len(data)))
	b.WriteString("WAVEfmt ")
	blockAlign := channels * bits / 8
	for _, v := range []any{uint32(16), code, channels, rate, rate * uint32(blockAlign), blockAlign, bits} {
		binary.Write(&b, binary.LittleEndian, v)
	}
	b.WriteString("data")
	binary.Write(&b, binary.LittleEndian, declared)
	b.Write(data)
	return b.Bytes()
}

// stereoWAV returns a 16-bit stereo WAV with a tone on both channels.
func stereoWAV(freq float64, d time.Duration, rate int) []byte {
	mono := ToneWAV(freq, d, rate, 0.5)[44:]
	data := make([]byte, 0, 2*len(mono))
	for i := 0; i+1 < len(mono); i += 2 {
		data = append(data, mono[i], mono[i+1], mono[i], mono[i+1])
	}
	return rawWAV(1, 2, uint32(rate), 16, uint32(len(data)), data)
}

func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestSniff(t *testing.T) {
	tests := []struct {
		name string
		head []byte
		want string
	}{
		{"wav", ToneWAV(440, time.Millisecond, 8000, 1)[:12], "wav"},
		{"id3 tagged mp3", []byte("ID3\x04\x00\x00"), "mp3"},
		{"mpeg1 layer III frame", []byte{0xFF, 0xFB, 0x50, 0xC4}, "mp3"},
		{"mpeg2 layer III frame", []byte{0xFF, 0xF3, 0x40, 0xC4}, "mp3"},
		{"layer II frame", []byte{0xFF, 0xFD, 0x50, 0xC4}, ""},
		{"riff but avi", []byte("RIFF\x00\x00\x00\x00AVI "), ""},
		{"text", []byte("hello world, not audio"), ""},
		{"short", []byte{0xFF}, ""},
		{"empty", nil, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sniff(tt.head); got != tt.want {
				t.Errorf("Sniff(% x) = %q, want %q", tt.head, got, tt.want)
			}
		})
	}
}

func TestProbeGood(t *testing.T) {
	tests := []struct {
		name     string
		data     []byte
		want     Info
		tolerate time.Duration
	}{
		{"wav mono 48k", ToneWAV(1000, time.Second, 48000, 0.5), Info{"wav", 48000, 1, time.Second}, 0},
		{"wav mono 22.05k", ToneWAV(1000, 500*time.Millisecond, 22050, 0.5), Info{"wav", 22050, 1, 500 * time.Millisecond}, 0},
		{"wav stereo 44.1k", stereoWAV(440, 1500*time.Millisecond, 44100), Info{"wav", 44100, 2, 1500 * time.Millisecond}, 0},
		{"wav 8k minimum rate", ToneWAV(400, 100*time.Millisecond, 8000, 0.5), Info{"wav", 8000, 1, 100 * time.Millisecond}, 0},
		{"wav 192k maximum rate", ToneWAV(400, 100*time.Millisecond, 192000, 0.5), Info{"wav", 192000, 1, 100 * time.Millisecond}, 0},
		{"wav streaming placeholder size", rawWAV(1, 1, 16000, 16, 0xFFFFFFFF, make([]byte, 32000)), Info{"wav", 16000, 1, time.Second}, 0},
		{"mp3 mono 44.1k LAME tag", readFixture(t, "tone440_mono_44k1.mp3"), Info{"mp3", 44100, 1, time.Second}, 3 * time.Millisecond},
		{"mp3 stereo 44.1k LAME tag", readFixture(t, "tone1k_stereo_44k1.mp3"), Info{"mp3", 44100, 2, time.Second}, 3 * time.Millisecond},
		{"mp3 mpeg2 mono 22.05k", readFixture(t, "tone1k_at200ms_mono_22k05.mp3"), Info{"mp3", 22050, 1, time.Second}, 3 * time.Millisecond},
		// Without gapless information the duration counts whole frames: 40 × 1152 samples.
		{"mp3 without LAME tag", readFixture(t, "tone1k_mono_44k1_notag.mp3"), Info{"mp3", 44100, 1, 40 * 1152 * time.Second / 44100}, time.Millisecond},
		{"mp3 with ID3v2 and ID3v1 tags", withID3(readFixture(t, "tone1k_stereo_44k1.mp3")), Info{"mp3", 44100, 2, time.Second}, 3 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Probe(tt.data)
			if err != nil {
				t.Fatalf("Probe: %v", err)
			}
			d := got.Duration - tt.want.Duration
			if got.Format != tt.want.Format || got.SampleRate != tt.want.SampleRate ||
				got.Channels != tt.want.Channels || d > tt.tolerate || d < -tt.tolerate {
				t.Errorf("Probe = %+v, want %+v (±%v)", got, tt.want, tt.tolerate)
			}
		})
	}
}

// withID3 wraps an MP3 in a 1000-byte ID3v2 tag and a 128-byte ID3v1 tag.
func withID3(mp3 []byte) []byte {
	tag := append([]byte("ID3\x03\x00\x00\x00\x00\x07\x5e"), make([]byte, 990)...) // 0x3de = 990
	out := append(tag, mp3...)
	return append(out, append([]byte("TAG"), make([]byte, 125)...)...)
}

func TestProbeBad(t *testing.T) {
	tone := ToneWAV(1000, 100*time.Millisecond, 48000, 0.5)
	mp3 := readFixture(t, "tone1k_stereo_44k1.mp3")
	corrupt, at := bytes.Clone(mp3), 0
	for range 10 { // find the 11th frame header and overwrite it
		h, _, _ := parseMP3Header(mp3[at:])
		at += h.frameLen()
	}
	copy(corrupt[at:], "garbage!")
	pcm := make([]byte, 400)
	tests := []struct {
		name    string
		data    []byte
		wantErr string
	}{
		{"empty", nil, "file is empty"},
		{"garbage", []byte("this is certainly not audio data at all"), "not a WAV or MP3 file"},
		{"riff avi", []byte("RIFF\x04\x00\x00\x00AVI LIST"), "not a WAV or MP3 file"},
		{"wav riff header only", tone[:12], "WAV: no fmt chunk"},
		{"wav truncated in fmt", tone[:30], "WAV: truncated"},
		{"wav truncated data", tone[:len(tone)/2], "WAV: truncated: the data chunk declares 9600 bytes but only 4778 are present"},
		{"wav huge declared data", rawWAV(1, 1, 48000, 16, 2_000_000_000, pcm), "WAV: truncated: the data chunk declares 2000000000 bytes"},
		{"wav huge declared chunk", append(append(bytes.Clone(tone[:36]), "LIST\xf0\xff\xff\xff"...), pcm...), `WAV: truncated "LIST" chunk at byte 36`},
		{"wav no data chunk", tone[:36], "WAV: no data chunk"},
		{"wav empty data", rawWAV(1, 1, 48000, 16, 0, nil), "WAV: no audio samples"},
		{"wav 8-bit", rawWAV(1, 1, 8000, 8, 400, pcm), "WAV: unsupported sample size of 8 bits (only 16-bit PCM is supported)"},
		{"wav 24-bit", rawWAV(1, 1, 48000, 24, 399, pcm[:399]), "WAV: unsupported sample size of 24 bits"},
		{"wav float", rawWAV(3, 1, 48000, 32, 400, pcm), "WAV: unsupported encoding 3 (IEEE float; only 16-bit PCM is supported)"},
		{"wav a-law", rawWAV(6, 1, 8000, 8, 400, pcm), "WAV: unsupported encoding 6 (A-law"},
		{"wav zero channels", rawWAV(1, 0, 48000, 16, 400, pcm), "WAV: zero channels"},
		{"wav six channels", rawWAV(1, 6, 48000, 16, 396, pcm[:396]), "WAV: 6 channels not supported"},
		{"wav zero rate", rawWAV(1, 1, 0, 16, 400, pcm), "WAV: sample rate is 0 Hz"},
		{"wav rate too low", rawWAV(1, 1, 4000, 16, 400, pcm), "WAV: sample rate 4000 Hz out of range (8000..192000 Hz)"},
		{"wav rate absurd", rawWAV(1, 1, 4_000_000_000, 16, 400, pcm), "WAV: sample rate 4000000000 Hz out of range"},
		{"wav big-endian", append([]byte("RIFX"), tone[4:]...), "WAV: big-endian"},
		{"mp3 truncated", mp3[:len(mp3)-100], "MP3: truncated frame at byte"},
		{"mp3 corrupt frame header", corrupt, fmt.Sprintf("MP3: invalid frame header at byte %d (corrupt data)", at)},
		{"mp3 id3 only", []byte("ID3\x03\x00\x00\x00\x00\x00\x0a0123456789"), "MP3: no audio frames"},
		{"mp3 junk after id3", []byte("ID3\x03\x00\x00\x00\x00\x00\x0a0123456789junkjunk"), "MP3: no MPEG audio frame at byte 20"},
		{"mp3 id3 huge declared", append([]byte("ID3\x03\x00\x00\x7f\x7f\x7f\x7f"), mp3...), "MP3: truncated ID3v2 tag (declares 268435465 bytes"},
		{"mp3 info frame only", mp3[:208], "MP3: no audio frames"},
		{"mpeg layer II", []byte{0xFF, 0xFD, 0x50, 0xC4, 0, 0, 0, 0}, "MP3: MPEG layer 2 audio is not supported"},
		{"mpeg-2.5", []byte{0xFF, 0xE3, 0x50, 0xC4, 0, 0, 0, 0}, "MP3: MPEG-2.5 audio (11025 Hz) is not supported"},
		{"mp3 free format", []byte{0xFF, 0xFB, 0x00, 0xC4, 0, 0, 0, 0}, "MP3: free-format bitrate is not supported"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			info, err := Probe(tt.data)
			if err == nil {
				t.Fatalf("Probe = %+v, want error %q", info, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Probe error = %q, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestProbeDoesNotTrustDeclaredSizes checks that headers declaring huge
// sizes do not make Probe allocate them.
func TestProbeDoesNotTrustDeclaredSizes(t *testing.T) {
	inputs := map[string][]byte{
		"wav data":  rawWAV(1, 1, 48000, 16, 0xFFFFFFF0, make([]byte, 64)),
		"wav chunk": append(append(bytes.Clone(ToneWAV(1, 0, 8000, 0)[:36]), "junk\xf0\xff\xff\x7f"...), make([]byte, 64)...),
		"id3 tag":   append([]byte("ID3\x03\x00\x00\x7f\x7f\x7f\x7f"), readFixture(t, "tone1k_stereo_44k1.mp3")...),
	}
	for name, data := range inputs {
		t.Run(name, func(t *testing.T) {
			var before, after runtime.MemStats
			runtime.ReadMemStats(&before)
			_, err := Probe(data)
			runtime.ReadMemStats(&after)
			if err == nil {
				t.Error("Probe accepted the file")
			}
			if grew := after.TotalAlloc - before.TotalAlloc; grew > 1<<20 {
				t.Errorf("Probe allocated %d bytes for a %d-byte file", grew, len(data))
			}
		})
	}
}

// FuzzProbe checks that no input makes Probe, ReadWAV or Decode panic.
func FuzzProbe(f *testing.F) {
	f.Add(ToneWAV(1000, 20*time.Millisecond, 8000, 0.5))
	f.Add(stereoWAV(440, 10*time.Millisecond, 22050))
	for _, name := range []string{"tone1k_stereo_44k1.mp3", "tone1k_at200ms_mono_22k05.mp3"} {
		b, err := os.ReadFile("testdata/" + name)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b[:min(len(b), 1500)])
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		Probe(data)
		ReadWAV(data)
		for _, format := range []string{"wav", "mp3"} {
			if r, err := Decode(bytes.NewReader(data), format, 48000, 80); err == nil {
				buf := make([]byte, 4096)
				for range 1000 {
					if _, err := r.Read(buf); err != nil {
						break
					}
				}
			}
		}
	})
}
