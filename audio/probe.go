package audio

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"time"
)

// Info describes a validated audio file.
type Info struct {
	Format     string // "mp3" or "wav"
	SampleRate int    // Hz
	Channels   int    // 1 or 2
	Duration   time.Duration
}

// Sniff returns "mp3", "wav" or "" from the first bytes of a file (a dozen
// bytes are enough).
func Sniff(head []byte) string {
	switch {
	case len(head) >= 12 && string(head[0:4]) == "RIFF" && string(head[8:12]) == "WAVE":
		return "wav"
	case len(head) >= 3 && string(head[0:3]) == "ID3":
		return "mp3"
	}
	if h, ok, err := parseMP3Header(head); ok && err == nil && h.layer == 3 {
		return "mp3"
	}
	return ""
}

// Probe fully validates an audio file and measures its duration. Its errors
// are meant to be shown to the person who uploaded the file: they say what
// is wrong, e.g. "WAV: unsupported encoding 3 (IEEE float; only 16-bit PCM
// is supported)" or "MP3: truncated frame at byte 1234 (...)".
//
// Accepted: 16-bit PCM WAV and MPEG-1/2 layer III (MP3), mono or stereo,
// 8000..192000 Hz. An MP3's duration honours LAME's gapless information
// (encoder delay and padding) when present, so it matches the source audio
// to the sample; without it, it counts whole frames. Every MP3 frame is
// decoded. Sizes declared in headers are checked against the data and never
// used to allocate memory.
func Probe(data []byte) (Info, error) {
	if len(data) == 0 {
		return Info{}, errors.New("file is empty")
	}
	format := Sniff(data)
	if len(data) >= 12 && string(data[8:12]) == "WAVE" {
		format = "wav" // parseWAV explains RIFX and RF64
	}
	switch format {
	case "wav":
		l, err := parseWAV(bytes.NewReader(data), int64(len(data)), true)
		if err != nil {
			return Info{}, err
		}
		return Info{Format: "wav", SampleRate: l.rate, Channels: l.channels,
			Duration: samplesDuration(l.frames(), l.rate)}, nil
	case "mp3":
		l, err := scanMP3(bytes.NewReader(data), int64(len(data)))
		if err != nil {
			return Info{}, err
		}
		if err := checkMP3Decodes(data[l.start:l.end], l); err != nil {
			return Info{}, err
		}
		return Info{Format: "mp3", SampleRate: l.rate, Channels: l.channels,
			Duration: samplesDuration(l.samples(), l.rate)}, nil
	}
	if len(data) >= 4 && string(data[0:4]) == "RIFF" {
		return Info{}, errors.New("not a WAV or MP3 file (a RIFF file, but not WAVE)")
	}
	if h, ok, err := parseMP3Header(data); ok && err != nil {
		return Info{}, fmt.Errorf("MP3: %w", err)
	} else if ok && h.layer != 3 {
		return Info{}, fmt.Errorf("not an MP3 file (MPEG layer %d audio)", h.layer)
	}
	return Info{}, errors.New("not a WAV or MP3 file")
}

// checkMP3Decodes runs the decoder over every frame of an MP3 file (frames
// holds only its MPEG frames) and checks it yields the samples scanned.
func checkMP3Decodes(frames []byte, l mp3Layout) error {
	dec, err := newMP3Decoder(bytes.NewReader(frames))
	if err != nil {
		return err
	}
	buf := make([]byte, 32<<10)
	var n int64
	for {
		k, err := dec.Read(buf)
		n += int64(k)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return err
		}
	}
	want := l.frames * int64(l.samplesPerFrame)
	if l.infoFrame {
		want += int64(l.samplesPerFrame)
	}
	if got := n / 4; got < want {
		return fmt.Errorf("MP3: corrupt audio data: decoded %d of %d samples", got, want)
	}
	return nil
}

// samplesDuration converts a count of samples at rate to a duration.
func samplesDuration(n int64, rate int) time.Duration {
	if rate <= 0 {
		return 0
	}
	sec := n / int64(rate)
	rem := n % int64(rate)
	return time.Duration(sec)*time.Second + time.Duration(rem)*time.Second/time.Duration(rate)
}
