package audio

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// mp3DecoderDelay is the delay, in samples, that the MPEG layer III synthesis
// filter bank adds in front of the audio. LAME's gapless information (encoder
// delay and padding) assumes decoders remove it, as mpg123 and ffmpeg do.
const mp3DecoderDelay = 529

// mp3Header is a parsed MPEG audio frame header.
type mp3Header struct {
	mpeg     int // 1, 2 or 25 (MPEG-2.5)
	layer    int
	crc      bool
	bitrate  int // bits per second, 0 for "free format"
	rate     int
	padding  int
	channels int
}

var (
	mp3Rates    = map[int][3]int{1: {44100, 48000, 32000}, 2: {22050, 24000, 16000}, 25: {11025, 12000, 8000}}
	mp3Bitrates = map[bool][15]int{ // layer III, kbit/s, keyed by "is MPEG-1"
		true:  {0, 32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320},
		false: {0, 8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160},
	}
)

// parseMP3Header decodes the 4 bytes of a frame header. ok is false when b is
// not a frame header at all; a nil error with ok means Dalaba can decode it.
func parseMP3Header(b []byte) (h mp3Header, ok bool, err error) {
	if len(b) < 4 || b[0] != 0xFF || b[1]&0xE0 != 0xE0 {
		return h, false, nil
	}
	ver, layer, brIdx, srIdx := (b[1]>>3)&3, (b[1]>>1)&3, b[2]>>4, (b[2]>>2)&3
	if ver == 1 || layer == 0 || brIdx == 15 || srIdx == 3 || b[3]&3 == 2 {
		return h, false, nil // reserved values: not a header
	}
	h.mpeg = map[byte]int{0: 25, 2: 2, 3: 1}[ver]
	h.layer = 4 - int(layer)
	h.crc = b[1]&1 == 0
	h.rate = mp3Rates[h.mpeg][srIdx]
	h.padding = int(b[2]>>1) & 1
	h.channels = 2
	if b[3]>>6 == 3 {
		h.channels = 1
	}
	switch {
	case h.layer != 3:
		return h, true, fmt.Errorf("MPEG layer %d audio is not supported (only layer III, i.e. MP3)", h.layer)
	case h.mpeg == 25:
		return h, true, fmt.Errorf("MPEG-2.5 audio (%d Hz) is not supported", h.rate)
	case brIdx == 0:
		return h, true, errors.New("free-format bitrate is not supported")
	}
	h.bitrate = mp3Bitrates[h.mpeg == 1][brIdx] * 1000
	return h, true, nil
}

// frameLen returns the frame's length in bytes, header included.
func (h mp3Header) frameLen() int {
	if h.mpeg == 1 {
		return 144*h.bitrate/h.rate + h.padding
	}
	return 72*h.bitrate/h.rate + h.padding
}

// samplesPerFrame returns the number of samples (per channel) a frame holds.
func (h mp3Header) samplesPerFrame() int {
	if h.mpeg == 1 {
		return 1152
	}
	return 576
}

// sideInfoLen returns the size of the side information after the header.
func (h mp3Header) sideInfoLen() int {
	switch {
	case h.mpeg == 1 && h.channels == 1:
		return 17
	case h.mpeg == 1:
		return 32
	case h.channels == 1:
		return 9
	default:
		return 17
	}
}

// mp3Layout is what a scan of an MP3 file's frames found.
type mp3Layout struct {
	start, end      int64 // byte range of the MPEG frames (tags excluded)
	rate, channels  int
	samplesPerFrame int
	frames          int64 // audio frames, not counting an encoder info frame
	infoFrame       bool  // the first frame is a Xing/Info/VBRI frame that decodes to silence
	gapless         bool  // a LAME tag gave the encoder delay and padding
	delay, padding  int
}

// skip returns how many decoded samples precede the first real one.
func (l mp3Layout) skip() int64 {
	var n int64
	if l.infoFrame {
		n += int64(l.samplesPerFrame)
	}
	if l.gapless {
		n += int64(l.delay + mp3DecoderDelay)
	}
	return n
}

// tail returns how many decoded samples follow the last real one: LAME's
// padding, less the decoder's delay that skip dropped at the start.
func (l mp3Layout) tail() int64 {
	if !l.gapless {
		return 0
	}
	return int64(max(l.padding-mp3DecoderDelay, 0))
}

// samples returns the number of real samples (per channel) in the file.
func (l mp3Layout) samples() int64 {
	n := l.frames * int64(l.samplesPerFrame)
	if l.gapless {
		n -= int64(l.delay + l.padding)
	}
	return max(n, 0)
}

// scanMP3 walks the frames of an MP3 file of the given size read from r,
// which must be positioned at its start. It validates every frame header and
// that every frame is complete, without decoding audio and without allocating
// according to sizes declared in the file.
func scanMP3(r io.Reader, size int64) (mp3Layout, error) {
	f := newMP3Frames(r, size)
	for {
		if err := f.next(); err == io.EOF {
			return f.l, nil
		} else if err != nil {
			return f.l, err
		}
	}
}

// mp3Frames reads the MPEG frames of an MP3 file, each whole and checked
// as scanMP3 checks them, from r positioned at the file's start: tags
// before them are skipped, and the frames end (io.EOF) where what follows
// is a tag or zero padding. It reads no further ahead than the frame it
// returns, so a decoder reading through it can start on a file that is
// still arriving. Its layout is complete at io.EOF; after the first frame
// it holds everything else (rate, channels, the encoder's delay and
// padding).
type mp3Frames struct {
	br    *bufio.Reader
	size  int64
	pos   int64
	l     mp3Layout
	first mp3Header
	begun bool   // the leading tags are skipped
	buf   []byte // the current frame
	cur   []byte // what of it Read has not returned
	err   error  // sticky: io.EOF, or what was wrong
}

// maxMP3Frame is the longest layer III frame: 320 kbit/s at 32 kHz, padded.
const maxMP3Frame = 144*320000/32000 + 1

func newMP3Frames(r io.Reader, size int64) *mp3Frames {
	return &mp3Frames{br: bufio.NewReaderSize(r, 4096), size: size} // larger than any layer III frame
}

// Read implements io.Reader.
func (f *mp3Frames) Read(p []byte) (int, error) {
	if len(f.cur) == 0 {
		if err := f.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, f.cur)
	f.cur = f.cur[n:]
	return n, nil
}

// next reads the next frame into cur.
func (f *mp3Frames) next() error {
	if f.err == nil {
		f.err = f.frame()
	}
	return f.err
}

func (f *mp3Frames) frame() error {
	if !f.begun {
		if err := f.skipTags(); err != nil {
			return err
		}
		f.l.start, f.begun = f.pos, true
	}
	l := &f.l
	l.end = f.pos
	b, _ := f.br.Peek(4)
	if len(b) == 0 {
		return f.ended()
	}
	h, ok, err := parseMP3Header(b)
	if !ok {
		if l.frames == 0 && !l.infoFrame {
			return fmt.Errorf("MP3: no MPEG audio frame at byte %d", f.pos)
		}
		if err := checkMP3Trailer(f.br, f.pos); err != nil {
			return err
		}
		return f.ended()
	}
	if err != nil {
		return fmt.Errorf("MP3: %w", err)
	}
	n := h.frameLen()
	if f.pos+int64(n) > f.size {
		return fmt.Errorf("MP3: truncated frame at byte %d (needs %d bytes, %d left)", f.pos, n, f.size-f.pos)
	}
	frame, err := f.br.Peek(n)
	if err != nil {
		return fmt.Errorf("MP3: read frame at byte %d: %w", f.pos, err)
	}
	switch {
	case l.frames == 0 && !l.infoFrame: // the first frame
		f.first = h
		l.rate, l.channels, l.samplesPerFrame = h.rate, h.channels, h.samplesPerFrame()
		if l.readInfoFrame(h, frame); !l.infoFrame {
			l.frames = 1
		}
	case h.mpeg != f.first.mpeg || h.rate != f.first.rate:
		return fmt.Errorf("MP3: sample rate changes from %d to %d Hz at byte %d (corrupt or concatenated file)", f.first.rate, h.rate, f.pos)
	default:
		l.frames++
	}
	if f.buf == nil {
		f.buf = make([]byte, maxMP3Frame)
	}
	f.cur = f.buf[:copy(f.buf, frame)]
	f.br.Discard(n)
	f.pos += int64(n)
	return nil
}

// ended checks the whole file's frames once they have ended.
func (f *mp3Frames) ended() error {
	switch {
	case f.l.frames == 0:
		return errors.New("MP3: no audio frames")
	case f.l.samples() == 0:
		return errors.New("MP3: no audio samples")
	}
	return io.EOF
}

// skipTags skips leading ID3v2 tags, checking their sizes against the file.
func (f *mp3Frames) skipTags() error {
	for {
		b, _ := f.br.Peek(10)
		if len(b) < 10 || string(b[:3]) != "ID3" {
			return nil
		}
		if b[6]|b[7]|b[8]|b[9] >= 0x80 {
			return errors.New("MP3: corrupt ID3v2 tag size")
		}
		n := int64(b[6])<<21 | int64(b[7])<<14 | int64(b[8])<<7 | int64(b[9]) + 10
		if b[5]&0x10 != 0 {
			n += 10 // footer
		}
		if f.pos+n > f.size {
			return fmt.Errorf("MP3: truncated ID3v2 tag (declares %d bytes, file has %d)", n, f.size-f.pos)
		}
		for n > 0 { // Discard takes an int; stay in range on 32-bit boards
			k, err := f.br.Discard(int(min(n, 1<<20)))
			n -= int64(k)
			f.pos += int64(k)
			if err != nil {
				return fmt.Errorf("MP3: read at byte %d: %w", f.pos, err)
			}
		}
	}
}

// readInfoFrame looks for a Xing/Info or VBRI header in the first frame and
// for LAME's gapless information (encoder delay and padding) after it.
func (l *mp3Layout) readInfoFrame(h mp3Header, frame []byte) {
	off := 4 + h.sideInfoLen()
	if h.crc {
		off += 2
	}
	if len(frame) >= 36+4 && string(frame[36:40]) == "VBRI" {
		l.infoFrame = true
		return
	}
	if len(frame) < off+8 {
		return
	}
	if tag := string(frame[off : off+4]); tag != "Xing" && tag != "Info" {
		return
	}
	l.infoFrame = true
	flags := binary.BigEndian.Uint32(frame[off+4:])
	p := off + 8
	for _, f := range []struct {
		bit  uint32
		size int
	}{{1, 4}, {2, 4}, {4, 100}, {8, 4}} { // frames, bytes, TOC, quality
		if flags&f.bit != 0 {
			p += f.size
		}
	}
	if len(frame) < p+24 {
		return
	}
	if enc := string(frame[p : p+4]); enc != "LAME" && enc != "Lavf" && enc != "Lavc" {
		return
	}
	d := frame[p+21 : p+24]
	l.gapless = true
	l.delay = int(d[0])<<4 | int(d[1])>>4
	l.padding = int(d[1]&0x0F)<<8 | int(d[2])
}

// checkMP3Trailer accepts what may follow the last frame: ID3v1, APE or
// Lyrics3 tags, an appended ID3v2 tag, or zero padding.
func checkMP3Trailer(br *bufio.Reader, pos int64) error {
	head, _ := br.Peek(11)
	for _, tag := range []string{"TAG", "APETAGEX", "LYRICSBEGIN", "ID3"} {
		if bytes.HasPrefix(head, []byte(tag)) {
			return nil
		}
	}
	for off := pos; ; {
		b, err := br.Peek(1)
		if err != nil {
			return nil // end of file: only zeros followed the frames
		}
		if b[0] != 0 {
			return fmt.Errorf("MP3: invalid frame header at byte %d (corrupt data)", off)
		}
		br.Discard(1)
		off++
	}
}
