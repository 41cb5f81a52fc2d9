package audio

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"
	"math/rand/v2"
	"testing"

	upstream "github.com/hajimehoshi/go-mp3"

	fork "dalaba/third_party/go-mp3"
)

// mp3Fixtures are every MP3 in testdata: pure tones (MPEG-1 and MPEG-2,
// mono, joint stereo, with and without a LAME tag) and the "varied" files,
// a chirp with clicks and gated noise bursts that make the encoder switch
// to short blocks and use mid/side stereo, at 44.1, 48 and 22.05 kHz (the
// last with CRC-protected frames).
var mp3Fixtures = []string{
	"tone440_mono_44k1.mp3",
	"tone1k_stereo_44k1.mp3",
	"tone1k_at200ms_mono_22k05.mp3",
	"tone1k_mono_44k1_notag.mp3",
	"tone1k_stereo_44k1_128k_notag.mp3",
	"varied_stereo_44k1_96k.mp3",
	"varied_stereo_22k05_32k_crc.mp3",
	"varied_mono_48k_64k.mp3",
}

// decodeWith decodes an MP3 to the end with one of the two decoders, turning
// a panic into an error as mp3Stream does, and returns the PCM it produced.
func decodeWith(data []byte, newDecoder func(io.Reader) (io.Reader, error)) (pcm []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("panic: %v", p)
		}
	}()
	d, err := newDecoder(bytes.NewReader(data))
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	buf := make([]byte, 1000) // not a multiple of a frame's PCM
	for {
		n, err := d.Read(buf)
		out.Write(buf[:n])
		if err == io.EOF {
			return out.Bytes(), nil
		}
		if err != nil {
			return out.Bytes(), err
		}
	}
}

func upstreamDecoder(r io.Reader) (io.Reader, error) { return upstream.NewDecoder(r) }
func forkDecoder(r io.Reader) (io.Reader, error)     { return fork.NewDecoder(r) }

// comparePCM reports how many 16-bit samples of want and got differ and by
// how much at most, failing if the lengths differ or any sample is off by
// more than tolerance.
func comparePCM(t *testing.T, name string, want, got []byte, tolerance int) (differ, worst int) {
	t.Helper()
	if len(want) != len(got) {
		t.Errorf("%s: fork gave %d bytes of PCM, go-mp3 %d", name, len(got), len(want))
		return 0, 0
	}
	for i := 0; i+1 < len(want); i += 2 {
		w := int(int16(binary.LittleEndian.Uint16(want[i:])))
		g := int(int16(binary.LittleEndian.Uint16(got[i:])))
		if d := max(w-g, g-w); d != 0 {
			differ++
			worst = max(worst, d)
			if d > tolerance && worst == d {
				t.Errorf("%s: sample %d (byte %d) is %d, go-mp3 gives %d", name, i/2, i, g, w)
			}
		}
	}
	return differ, worst
}

// TestForkMatchesGoMP3 decodes every fixture with the fork in
// third_party/go-mp3 and with go-mp3 v0.3.4 itself. The fork computes the
// synthesis filter bank with a fast 32-point DCT instead of a 64×32 matrix,
// which rounds in another order, so a sample may differ by 1 LSB (where the
// value lands on the other side of an integer before truncation) but never
// by more; the test logs how many do (about 0.1 %).
func TestForkMatchesGoMP3(t *testing.T) {
	for _, name := range mp3Fixtures {
		data := readFixture(t, name)
		want, err := decodeWith(data, upstreamDecoder)
		if err != nil {
			t.Fatalf("%s: go-mp3: %v", name, err)
		}
		got, err := decodeWith(data, forkDecoder)
		if err != nil {
			t.Fatalf("%s: fork: %v", name, err)
		}
		n, _ := comparePCM(t, name, want, got, 1)
		t.Logf("%s: %d samples, %d differ by 1 LSB", name, len(want)/2, n)
	}
}

// TestForkMatchesGoMP3OnDamagedFiles does the same for fixtures with bytes
// overwritten at random (frames with bad side information, reservoir
// references that cannot be met, Huffman codes that do not decode) and cut
// short: both decoders must stop (with or without an error) at the same
// point, having produced the same PCM. Damaged frames can drive the filter
// banks' intermediate values far above full scale, where float32 rounding
// in another order shows more than in real audio (up to 9 LSB was seen),
// so this allows 64 LSB (0.2 % of full scale).
func TestForkMatchesGoMP3OnDamagedFiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	differ, worst := 0, 0
	for _, name := range mp3Fixtures {
		orig := readFixture(t, name)
		for i := range 12 {
			data := bytes.Clone(orig)
			for range 1 + rng.IntN(20) {
				data[rng.IntN(len(data))] = byte(rng.Uint32())
			}
			if i%4 == 0 {
				data = data[:rng.IntN(len(data))]
			}
			want, werr := decodeWith(data, upstreamDecoder)
			got, gerr := decodeWith(data, forkDecoder)
			label := fmt.Sprintf("%s damaged #%d", name, i)
			if (werr == nil) != (gerr == nil) {
				t.Errorf("%s: go-mp3 ends with %v, the fork with %v", label, werr, gerr)
			}
			n, w := comparePCM(t, label, want, got, 64)
			differ, worst = differ+n, max(worst, w)
		}
	}
	t.Logf("%d samples differ, by at most %d LSB", differ, worst)
}
