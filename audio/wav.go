package audio

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Limits on the audio Dalaba accepts.
const (
	minRate = 8000
	maxRate = 192000
)

// placeholderSize is the data-chunk size streaming writers (sox, ffmpeg to a
// pipe) put in the header when they cannot go back and fix it.
const placeholderSize = 0xFFFFFFFF

// wavLayout describes where the samples of a 16-bit PCM WAV file are.
type wavLayout struct {
	channels   int
	rate       int
	dataOffset int64 // offset of the first sample byte
	dataLen    int64 // bytes of sample data actually present (never more than the file holds)
}

// frames returns the number of whole sample frames in the data chunk.
func (l wavLayout) frames() int64 { return l.dataLen / int64(2*l.channels) }

// parseWAV reads the RIFF chunk list of a WAV file of the given size from r
// and checks that it holds 16-bit PCM we can play. It never allocates
// according to a size declared in the file: chunks it does not need are
// skipped by seeking.
//
// When strict is set, a data chunk that declares more bytes than the file
// holds is an error (a truncated upload); otherwise the samples that are
// present are used (a recording cut short).
func parseWAV(r io.ReadSeeker, size int64, strict bool) (wavLayout, error) {
	var l wavLayout
	if _, err := r.Seek(0, io.SeekStart); err != nil {
		return l, fmt.Errorf("WAV: seek: %w", err)
	}
	var riff [12]byte
	if size < 12 {
		return l, fmt.Errorf("WAV: file too short for a RIFF header (%d bytes)", size)
	}
	if _, err := io.ReadFull(r, riff[:]); err != nil {
		return l, fmt.Errorf("WAV: read RIFF header: %w", err)
	}
	switch {
	case string(riff[0:4]) == "RIFX":
		return l, errors.New("WAV: big-endian (RIFX) files are not supported")
	case string(riff[0:4]) == "RF64":
		return l, errors.New("WAV: RF64 (larger than 4 GiB) files are not supported")
	case string(riff[0:4]) != "RIFF" || string(riff[8:12]) != "WAVE":
		return l, errors.New("WAV: missing RIFF/WAVE signature")
	}

	haveFmt := false
	pos := int64(12)
	for {
		if size-pos < 8 {
			if haveFmt {
				return l, errors.New("WAV: no data chunk (no audio samples)")
			}
			return l, errors.New("WAV: no fmt chunk (not a valid WAV file)")
		}
		var hdr [8]byte
		if _, err := io.ReadFull(r, hdr[:]); err != nil {
			return l, fmt.Errorf("WAV: read chunk header at byte %d: %w", pos, err)
		}
		id := string(hdr[0:4])
		declared := int64(binary.LittleEndian.Uint32(hdr[4:8]))
		body := pos + 8
		avail := size - body

		switch id {
		case "fmt ":
			if err := l.readFmt(r, declared, avail); err != nil {
				return l, err
			}
			haveFmt = true
		case "data":
			if !haveFmt {
				return l, errors.New("WAV: data chunk comes before the fmt chunk")
			}
			l.dataOffset = body
			l.dataLen = declared
			switch {
			case declared == placeholderSize:
				l.dataLen = avail
			case declared == 0 && !strict:
				l.dataLen = avail // a writer that never fixed its header
			case declared > avail && strict:
				return l, fmt.Errorf("WAV: truncated: the data chunk declares %d bytes but only %d are present", declared, avail)
			case declared > avail:
				l.dataLen = avail
			}
			if l.frames() == 0 {
				return l, errors.New("WAV: no audio samples (the data chunk is empty)")
			}
			return l, nil
		}

		next := body + declared + declared&1 // chunks are padded to even sizes
		if next > size {
			return l, fmt.Errorf("WAV: truncated %q chunk at byte %d (declares %d bytes, %d present)", id, pos, declared, avail)
		}
		if _, err := r.Seek(next, io.SeekStart); err != nil {
			return l, fmt.Errorf("WAV: seek to byte %d: %w", next, err)
		}
		pos = next
	}
}

// readFmt reads and validates a "fmt " chunk body of declared length.
func (l *wavLayout) readFmt(r io.Reader, declared, avail int64) error {
	if declared < 16 {
		return fmt.Errorf("WAV: fmt chunk too short (%d bytes, need 16)", declared)
	}
	n := min(declared, 40, avail) // 40 bytes covers WAVE_FORMAT_EXTENSIBLE
	if n < 16 {
		return errors.New("WAV: truncated fmt chunk")
	}
	var b [40]byte
	if _, err := io.ReadFull(r, b[:n]); err != nil {
		return fmt.Errorf("WAV: read fmt chunk: %w", err)
	}
	code := binary.LittleEndian.Uint16(b[0:2])
	channels := int(binary.LittleEndian.Uint16(b[2:4]))
	rate := int64(binary.LittleEndian.Uint32(b[4:8]))
	blockAlign := int(binary.LittleEndian.Uint16(b[12:14]))
	bits := int(binary.LittleEndian.Uint16(b[14:16]))
	if code == 0xFFFE { // WAVE_FORMAT_EXTENSIBLE: the real code starts the sub-format GUID
		if n < 40 {
			return errors.New("WAV: truncated extensible fmt chunk")
		}
		code = binary.LittleEndian.Uint16(b[24:26])
	}
	if code != 1 {
		return fmt.Errorf("WAV: unsupported encoding %d (%s; only 16-bit PCM is supported)", code, wavEncodingName(code))
	}
	if bits != 16 {
		return fmt.Errorf("WAV: unsupported sample size of %d bits (only 16-bit PCM is supported)", bits)
	}
	if err := checkShape(channels, rate); err != nil {
		return fmt.Errorf("WAV: %w", err)
	}
	if blockAlign != 2*channels {
		return fmt.Errorf("WAV: inconsistent header: block align %d for %d channel(s) of 16 bits", blockAlign, channels)
	}
	l.channels, l.rate = channels, int(rate)
	return nil
}

// checkShape validates a channel count and sample rate read from a file.
func checkShape(channels int, rate int64) error {
	switch {
	case channels == 0:
		return errors.New("zero channels")
	case channels > 2:
		return fmt.Errorf("%d channels not supported (only mono or stereo)", channels)
	case rate == 0:
		return errors.New("sample rate is 0 Hz")
	case rate < minRate || rate > maxRate:
		return fmt.Errorf("sample rate %d Hz out of range (%d..%d Hz)", rate, minRate, maxRate)
	}
	return nil
}

// wavEncodingName names the common WAV format codes for error messages.
func wavEncodingName(code uint16) string {
	switch code {
	case 2:
		return "Microsoft ADPCM"
	case 3:
		return "IEEE float"
	case 6:
		return "A-law"
	case 7:
		return "µ-law"
	case 0x11:
		return "IMA ADPCM"
	case 0x55:
		return "MP3 inside WAV"
	default:
		return "unknown"
	}
}

// wavHeader returns a 44-byte canonical header for 16-bit PCM. A dataLen of
// placeholderSize marks a file still being written.
func wavHeader(rate, channels int, dataLen uint32) []byte {
	riffLen := uint32(placeholderSize)
	if dataLen != placeholderSize {
		riffLen = 36 + dataLen
	}
	h := make([]byte, 44)
	copy(h[0:], "RIFF")
	binary.LittleEndian.PutUint32(h[4:], riffLen)
	copy(h[8:], "WAVEfmt ")
	binary.LittleEndian.PutUint32(h[16:], 16)
	binary.LittleEndian.PutUint16(h[20:], 1)
	binary.LittleEndian.PutUint16(h[22:], uint16(channels))
	binary.LittleEndian.PutUint32(h[24:], uint32(rate))
	binary.LittleEndian.PutUint32(h[28:], uint32(rate*channels*2))
	binary.LittleEndian.PutUint16(h[32:], uint16(channels*2))
	binary.LittleEndian.PutUint16(h[34:], 16)
	copy(h[36:], "data")
	binary.LittleEndian.PutUint32(h[40:], dataLen)
	return h
}

// ReadWAV parses a 16-bit PCM WAV file (as written by parecord or ToneWAV)
// and returns its samples mixed down to mono, as floats in [-1, 1], with its
// sample rate. A recording whose header was never finalised (data size 0 or
// 0xFFFFFFFF) or that was cut short is read up to the end of the data.
func ReadWAV(data []byte) (samples []float32, rate int, err error) {
	l, err := parseWAV(bytes.NewReader(data), int64(len(data)), false)
	if err != nil {
		return nil, 0, fmt.Errorf("read wav: %w", err)
	}
	frames := l.frames() // bounded by len(data)
	samples = make([]float32, frames)
	pcm := data[l.dataOffset:]
	for i := range samples {
		var sum float32
		for c := 0; c < l.channels; c++ {
			off := (int(i)*l.channels + c) * 2
			sum += float32(int16(binary.LittleEndian.Uint16(pcm[off:])))
		}
		samples[i] = sum / float32(l.channels) / 32768
	}
	return samples, l.rate, nil
}
