package audio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math"
	"strings"
	"sync"
	"testing"
	"testing/iotest"
	"time"
)

// decodeAll decodes a file to 48 kHz and splits the result into channels.
func decodeAll(t *testing.T, data []byte, format string, volume int) (left, right []float32) {
	t.Helper()
	r, err := Decode(bytes.NewReader(data), format, 48000, volume)
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	pcm, err := io.ReadAll(r)
	if err != nil {
		t.Fatalf("read decoded PCM: %v", err)
	}
	if len(pcm)%4 != 0 {
		t.Fatalf("decoded %d bytes, not whole stereo frames", len(pcm))
	}
	return splitStereo(pcm)
}

func splitStereo(pcm []byte) (left, right []float32) {
	for i := 0; i+3 < len(pcm); i += 4 {
		left = append(left, float32(int16(binary.LittleEndian.Uint16(pcm[i:])))/32768)
		right = append(right, float32(int16(binary.LittleEndian.Uint16(pcm[i+2:])))/32768)
	}
	return left, right
}

// zeroCrossings counts sign changes upwards, i.e. whole periods of a tone.
func zeroCrossings(s []float32) int {
	n := 0
	for i := 1; i < len(s); i++ {
		if s[i-1] < 0 && s[i] >= 0 {
			n++
		}
	}
	return n
}

func peak(s []float32) float64 {
	var p float64
	for _, v := range s {
		p = max(p, math.Abs(float64(v)))
	}
	return p
}

func TestDecodeResample(t *testing.T) {
	tests := []struct {
		name       string
		data       []byte
		format     string
		freq       float64
		wantFrames int           // exact output length for WAV, 0 to skip
		start, end time.Duration // where the tone must be in the output
	}{
		{"wav 22050 to 48000", ToneWAV(1000, time.Second, 22050, 0.5), "wav", 1000, 48000, 0, time.Second},
		{"wav 44100 stereo to 48000", stereoWAV(1000, time.Second, 44100), "wav", 1000, 48000, 0, time.Second},
		{"wav 48000 unchanged", ToneWAV(1000, time.Second, 48000, 0.5), "wav", 1000, 48000, 0, time.Second},
		{"wav 8000 to 48000", ToneWAV(440, 700*time.Millisecond, 8000, 0.5), "wav", 440, 33600, 0, 700 * time.Millisecond},
		{"wav odd length 11025", ToneWAV(1000, 1103*time.Second/11025, 11025, 0.5), "wav", 1000, 4803, 0, 100 * time.Millisecond},
		{"mp3 44100 stereo to 48000", readFixture(t, "tone1k_stereo_44k1.mp3"), "mp3", 1000, 48000, 0, time.Second},
		{"mp3 44100 mono to 48000", readFixture(t, "tone440_mono_44k1.mp3"), "mp3", 440, 48000, 0, time.Second},
		{"mp3 22050 mono, tone at 200 ms", readFixture(t, "tone1k_at200ms_mono_22k05.mp3"), "mp3", 1000, 48000, 200 * time.Millisecond, 700 * time.Millisecond},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			left, right := decodeAll(t, tt.data, tt.format, 100)
			if tt.wantFrames != 0 && len(left) != tt.wantFrames {
				t.Errorf("decoded %d frames, want %d", len(left), tt.wantFrames)
			}
			// A wrong rate conversion shifts the tone's frequency and length.
			segs := ToneSegments(left, 48000, tt.freq)
			if len(segs) != 1 || absDur(segs[0].Start-tt.start) > 5*time.Millisecond || absDur(segs[0].End-tt.end) > 5*time.Millisecond {
				t.Errorf("tone of %v Hz found at %v, want one segment %v..%v (±5 ms)", tt.freq, segs, tt.start, tt.end)
			}
			// Count periods inside the tone, away from its edges.
			from, to := 48*int((tt.start/time.Millisecond)+10), 48*int((tt.end/time.Millisecond)-10)
			periods := zeroCrossings(left[from:to])
			want := tt.freq * float64(to-from) / 48000
			if math.Abs(float64(periods)-want) > 2 {
				t.Errorf("counted %d periods, want %.0f: frequency is off", periods, want)
			}
			if p := peak(left); math.Abs(p-0.5) > 0.05 {
				t.Errorf("peak %.3f, want 0.5", p)
			}
			if tt.format == "wav" {
				// Output frame n is the input at time n/48000 s, interpolated:
				// compare with the ideal tone. Linear interpolation errs by at
				// most A·(πf/fs)²/2 (1% of full scale at 22.05 kHz); holding
				// samples would err by up to A·2πf/fs (14%). The frames after
				// the last input sample (up to 6 at 8 kHz) hold it and are left out.
				_, inRate, _ := ReadWAV(tt.data)
				bound := 0.5*math.Pow(math.Pi*tt.freq/float64(inRate), 2)/2 + 0.001
				worst := 0.0
				for n, v := range left[:len(left)-7] {
					ideal := 0.5 * math.Sin(2*math.Pi*tt.freq*float64(n)/48000)
					worst = max(worst, math.Abs(float64(v)-ideal))
				}
				if worst > bound {
					t.Errorf("output departs from the ideal tone by up to %.4f, want under %.4f", worst, bound)
				}
			}
			if !equalSamples(left, right) && !strings.Contains(tt.name, "stereo") {
				t.Error("mono input not duplicated to both channels")
			}
		})
	}
}

func TestDecodePassThroughIsExact(t *testing.T) {
	data := ToneWAV(1234, 200*time.Millisecond, 48000, 0.9)
	left, _ := decodeAll(t, data, "wav", 100)
	in, rate, err := ReadWAV(data)
	if err != nil || rate != 48000 {
		t.Fatalf("ReadWAV: %v, rate %d", err, rate)
	}
	if !equalSamples(left, in) {
		t.Error("48 kHz input at volume 100 did not come out sample for sample")
	}
}

func TestDecodeSmallReads(t *testing.T) {
	for _, format := range []string{"wav", "mp3"} {
		t.Run(format, func(t *testing.T) {
			data := ToneWAV(1000, 300*time.Millisecond, 22050, 0.5)
			if format == "mp3" {
				data = readFixture(t, "tone1k_at200ms_mono_22k05.mp3")
			}
			r1, _ := Decode(bytes.NewReader(data), format, 48000, 70)
			r2, _ := Decode(bytes.NewReader(data), format, 48000, 70)
			big, err1 := io.ReadAll(r1)
			small, err2 := io.ReadAll(iotest.OneByteReader(r2))
			if err1 != nil || err2 != nil || !bytes.Equal(big, small) || len(big) == 0 {
				t.Errorf("one-byte reads gave %d bytes (%v), large reads %d (%v)", len(small), err2, len(big), err1)
			}
		})
	}
}

func TestDecodeVolume(t *testing.T) {
	data := ToneWAV(1000, 200*time.Millisecond, 48000, 0.8)
	tests := []struct {
		volume int
		want   float64
	}{
		{100, 0.8},
		{50, 0.2}, // quadratic curve: a quarter of the amplitude
		{10, 0.008},
		{0, 0},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprint("volume ", tt.volume), func(t *testing.T) {
			left, right := decodeAll(t, data, "wav", tt.volume)
			if p := peak(left); math.Abs(p-tt.want) > 0.002 {
				t.Errorf("volume %d: peak %.4f, want %.4f", tt.volume, p, tt.want)
			}
			if !equalSamples(left, right) {
				t.Error("channels differ")
			}
		})
	}
}

func TestDecodeErrors(t *testing.T) {
	wav := ToneWAV(1000, 10*time.Millisecond, 48000, 0.5)
	tests := []struct {
		name    string
		data    []byte
		format  string
		rate    int
		volume  int
		wantErr string
	}{
		{"unknown format", wav, "ogg", 48000, 100, `decode: unknown format "ogg"`},
		{"output rate zero", wav, "wav", 0, 100, "decode: output rate 0 Hz out of range"},
		{"volume too high", wav, "wav", 48000, 101, "decode: volume 101 out of range (0..100)"},
		{"volume negative", wav, "wav", 48000, -1, "decode: volume -1 out of range"},
		{"wav that is mp3", readFixture(t, "tone440_mono_44k1.mp3"), "wav", 48000, 100, "decode: WAV: missing RIFF/WAVE signature"},
		{"mp3 that is wav", wav, "mp3", 48000, 100, "decode: MP3: no MPEG audio frame at byte 0"},
		{"float wav", rawWAV(3, 1, 48000, 32, 8, make([]byte, 8)), "wav", 48000, 100, "decode: WAV: unsupported encoding 3"},
		{"empty", nil, "wav", 48000, 100, "decode: WAV: file too short"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Decode(bytes.NewReader(tt.data), tt.format, tt.rate, tt.volume)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Decode error = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestDecodeTruncatedWAV checks that a WAV cut short plays what it holds.
func TestDecodeTruncatedWAV(t *testing.T) {
	data := ToneWAV(1000, time.Second, 48000, 0.5)
	left, _ := decodeAll(t, data[:44+2*24000+1], "wav", 100)
	if len(left) != 24000 {
		t.Errorf("decoded %d frames of a file cut at 24000, want 24000", len(left))
	}
}

func TestGain(t *testing.T) {
	for _, tt := range []struct {
		volume int
		want   float64
	}{{-5, 0}, {0, 0}, {50, 0.25}, {100, 1}, {200, 1}} {
		if got := Gain(tt.volume); got != tt.want {
			t.Errorf("Gain(%d) = %v, want %v", tt.volume, got, tt.want)
		}
	}
}

func equalSamples(a, b []float32) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func absDur(d time.Duration) time.Duration {
	if d < 0 {
		return -d
	}
	return d
}

// readCounter counts the Read calls made on a ReadSeeker.
type readCounter struct {
	io.ReadSeeker
	reads int
}

func (r *readCounter) Read(p []byte) (int, error) {
	r.reads++
	return r.ReadSeeker.Read(p)
}

// TestDecodeMP3ReadsInBlocks: decoding reads the file in blocks, not in the
// three or four small reads per frame the MP3 decoder makes (each a system
// call on the terminal's media files).
func TestDecodeMP3ReadsInBlocks(t *testing.T) {
	data := bytes.Repeat(readFixture(t, "tone1k_mono_44k1_notag.mp3"), 5) // 200 frames
	r := &readCounter{ReadSeeker: bytes.NewReader(data)}
	pcm, err := Decode(r, "mp3", 48000, 100)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, pcm); err != nil {
		t.Fatal(err)
	}
	// The frames are read once, 4 KB at a time.
	if max := len(data)/4096 + 2; r.reads > max {
		t.Errorf("%d reads for %d bytes, want at most %d", r.reads, len(data), max)
	}
}

// TestDecodeMP3Length: an MP3 decodes to exactly the samples its frames and
// LAME tag say (the encoder's delay and padding dropped), as Probe counts
// them, though the decoder no longer reads the whole file first.
func TestDecodeMP3Length(t *testing.T) {
	for _, name := range []string{"tone1k_at200ms_mono_22k05.mp3", "tone1k_mono_44k1_notag.mp3", "tone1k_stereo_44k1.mp3",
		"tone1k_stereo_44k1_128k_notag.mp3", "tone440_mono_44k1.mp3", "varied_mono_48k_64k.mp3", "varied_stereo_22k05_32k_crc.mp3", "varied_stereo_44k1_96k.mp3"} {
		data := readFixture(t, name)
		l, err := scanMP3(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		r, err := Decode(bytes.NewReader(data), "mp3", l.rate, 100) // at its own rate: no resampling
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		pcm, err := io.ReadAll(r)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if got := int64(len(pcm) / 4); got != l.samples() {
			t.Errorf("%s: decoded %d samples, its frames and tag say %d", name, got, l.samples())
		}
	}
}

// arriving is a file of which only the first n bytes can be read yet: a
// read past them waits until more arrive (as terminal/stream.go's reader
// waits for verified bytes). Seek to the end gives the whole size.
type arriving struct {
	data []byte
	pos  int64
	mu   sync.Mutex
	cond *sync.Cond
	n    int64
}

func newArriving(data []byte, n int64) *arriving {
	a := &arriving{data: data, n: n}
	a.cond = sync.NewCond(&a.mu)
	return a
}

func (a *arriving) arrive(n int64) {
	a.mu.Lock()
	a.n = n
	a.mu.Unlock()
	a.cond.Broadcast()
}

func (a *arriving) Read(p []byte) (int, error) {
	if a.pos >= int64(len(a.data)) {
		return 0, io.EOF
	}
	a.mu.Lock()
	for a.pos >= a.n {
		a.cond.Wait()
	}
	n := copy(p, a.data[a.pos:a.n])
	a.mu.Unlock()
	a.pos += int64(n)
	return n, nil
}

func (a *arriving) Seek(off int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		off += a.pos
	case io.SeekEnd:
		off += int64(len(a.data))
	}
	a.pos = off
	return off, nil
}

// TestDecodeMP3AsItArrives: an MP3 plays from its first frames while the
// rest of it is still arriving, and in the end all of it plays.
func TestDecodeMP3AsItArrives(t *testing.T) {
	data := readFixture(t, "varied_stereo_44k1_96k.mp3")
	whole, _ := decodeAll(t, data, "mp3", 100)
	src := newArriving(data, 8<<10)
	got := make(chan []byte, 1)
	fail := make(chan error, 1)
	go func() {
		r, err := Decode(src, "mp3", 48000, 100)
		if err != nil {
			fail <- err
			return
		}
		head := make([]byte, 48000) // 0.25 s of PCM
		if _, err := io.ReadFull(r, head); err != nil {
			fail <- err
			return
		}
		got <- head
		rest, err := io.ReadAll(r)
		if err != nil {
			fail <- err
			return
		}
		got <- rest
	}()
	var head []byte
	select {
	case head = <-got:
	case err := <-fail:
		t.Fatal(err)
	case <-time.After(10 * time.Second):
		t.Fatalf("no PCM from the first 8 KB of a %d-byte MP3 while the rest had not arrived", len(data))
	}
	src.arrive(int64(len(data)))
	var rest []byte
	select {
	case rest = <-got:
	case err := <-fail:
		t.Fatal(err)
	}
	if left, _ := splitStereo(append(head, rest...)); len(left) != len(whole) {
		t.Fatalf("decoded %d samples as it arrived, %d whole", len(left), len(whole))
	}
}
