package audio

import (
	"encoding/binary"
	"fmt"
	"io"
	"math"
)

// Gain returns the linear amplitude factor for a volume of 0..100 percent.
// The curve is quadratic, (volume/100)², which approximates how loudness is
// perceived: 100 is unity, 50 is a quarter of the amplitude (-12 dB), 10 is
// -40 dB and 0 is silence. Out-of-range volumes are clamped.
func Gain(volume int) float64 {
	v := float64(min(max(volume, 0), 100)) / 100
	return v * v
}

// Decode returns a stream of PCM for the audio file in r (format "mp3" or
// "wav"): interleaved signed 16-bit little-endian stereo at outRate, with
// mono input duplicated to both channels. The audio is resampled by linear
// interpolation (which does not low-pass filter, so downsampling from rates
// above outRate can alias) and scaled by Gain(volume).
//
// Decode checks the headers but decodes lazily as the stream is read, and
// reads r no further ahead than it decodes, so a file still arriving plays
// from its start (an MP3 is checked frame by frame as it goes); call Probe
// first to reject a damaged file before playing it. A WAV cut short
// plays what is there. An MP3 with LAME gapless information is trimmed to
// exactly the source audio.
func Decode(r io.ReadSeeker, format string, outRate int, volume int) (io.Reader, error) {
	if outRate < minRate || outRate > maxRate {
		return nil, fmt.Errorf("decode: output rate %d Hz out of range (%d..%d Hz)", outRate, minRate, maxRate)
	}
	if volume < 0 || volume > 100 {
		return nil, fmt.Errorf("decode: volume %d out of range (0..100)", volume)
	}
	size, err := r.Seek(0, io.SeekEnd)
	if err != nil {
		return nil, fmt.Errorf("decode: seek: %w", err)
	}
	var (
		src            io.Reader
		inRate, inChan int
	)
	switch format {
	case "wav":
		l, err := parseWAV(r, size, false)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		s, err := newSection(r, l.dataOffset, l.dataOffset+l.frames()*int64(2*l.channels))
		if err != nil {
			return nil, fmt.Errorf("decode: WAV: %w", err)
		}
		src, inRate, inChan = s, l.rate, l.channels
	case "mp3":
		if _, err := r.Seek(0, io.SeekStart); err != nil {
			return nil, fmt.Errorf("decode: seek: %w", err)
		}
		// Frame by frame as the file is read, so that a file still
		// arriving plays from its first frames (terminal/stream.go).
		frames := newMP3Frames(r, size)
		if err := frames.next(); err != nil { // the first: rate, and the encoder's delay and padding
			return nil, fmt.Errorf("decode: %w", err)
		}
		dec, err := newMP3Decoder(frames)
		if err != nil {
			return nil, fmt.Errorf("decode: %w", err)
		}
		l := frames.l
		src = &trimReader{r: dec, skip: 4 * l.skip(), tail: 4 * l.tail()}
		inRate, inChan = l.rate, 2
	default:
		return nil, fmt.Errorf("decode: unknown format %q (want \"mp3\" or \"wav\")", format)
	}
	return &converter{
		src: src, inChan: inChan, inRate: int64(inRate), outRate: int64(outRate),
		gain: Gain(volume), in: make([]float32, 0, 8192),
	}, nil
}

// converter turns 16-bit PCM with inChan channels at inRate into s16le
// stereo at outRate, scaled by gain.
//
// Output frame n sits at input position n·inRate/outRate, computed exactly
// in integers so long streams do not drift; it is interpolated between the
// two input frames around that position. The stream ends after
// ceil(inputFrames·outRate/inRate) frames, preserving the duration.
type converter struct {
	src             io.Reader
	inChan          int
	inRate, outRate int64
	gain            float64

	raw     []byte // input bytes not yet forming a whole frame
	readBuf []byte
	in      []float32 // pending input frames, stereo interleaved
	base    int64     // absolute index of the frame at in[0:2]
	n       int64     // next output frame
	eof     bool      // src is exhausted
	err     error
	out     []byte // rendered bytes not yet returned
	outBuf  []byte
}

// Read implements io.Reader.
func (c *converter) Read(p []byte) (int, error) {
	for stalls := 0; len(c.out) == 0; {
		if c.render() {
			break
		}
		if c.err != nil {
			return 0, c.err
		}
		if c.eof {
			return 0, io.EOF
		}
		if c.fill() == 0 {
			if stalls++; stalls > 100 {
				return 0, io.ErrNoProgress
			}
		}
	}
	n := copy(p, c.out)
	c.out = c.out[n:]
	return n, nil
}

// fill reads more input and returns how many frames it added.
func (c *converter) fill() int {
	frame := 2 * c.inChan
	if c.readBuf == nil {
		c.readBuf = make([]byte, 16384+frame)
	}
	k := copy(c.readBuf, c.raw)
	n, err := c.src.Read(c.readBuf[k:])
	buf := c.readBuf[:k+n]
	whole := len(buf) / frame * frame
	for i := 0; i < whole; i += frame {
		l := float32(int16(binary.LittleEndian.Uint16(buf[i:])))
		r := l
		if c.inChan == 2 {
			r = float32(int16(binary.LittleEndian.Uint16(buf[i+2:])))
		}
		c.in = append(c.in, l, r)
	}
	c.raw = append(c.raw[:0], buf[whole:]...)
	switch {
	case err == io.EOF:
		c.eof = true
	case err != nil:
		c.err = fmt.Errorf("decode: read audio: %w", err)
	}
	return whole / frame
}

// render converts as many output frames as the pending input allows (up to
// a chunk) into c.out and reports whether it produced any.
func (c *converter) render() bool {
	const chunk = 2048
	out := c.outBuf[:0]
	avail := c.base + int64(len(c.in)/2)
	for k := 0; k < chunk; k++ {
		pos := c.n * c.inRate
		i, rem := pos/c.outRate, pos%c.outRate
		j := i + 1
		if j >= avail {
			if !c.eof || i >= avail {
				break
			}
			j = i // the very last input frame
		}
		t := float32(rem) / float32(c.outRate)
		a, b := c.in[2*(i-c.base):], c.in[2*(j-c.base):]
		for ch := 0; ch < 2; ch++ {
			v := float64(a[ch]+(b[ch]-a[ch])*t) * c.gain
			out = binary.LittleEndian.AppendUint16(out, uint16(int16(math.Round(min(max(v, -32768), 32767)))))
		}
		c.n++
	}
	c.outBuf, c.out = out, out
	// Forget input frames no later output frame needs.
	if drop := c.n*c.inRate/c.outRate - c.base; drop > 0 {
		drop = min(drop, int64(len(c.in)/2))
		c.in = append(c.in[:0], c.in[2*drop:]...)
		c.base += drop
	}
	return len(out) > 0
}
