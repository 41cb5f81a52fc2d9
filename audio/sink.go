package audio

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Sink plays PCM (interleaved s16le stereo at Rate()) in real time.
//
// Play blocks until the audio has actually been played out, not just
// queued, or until ctx is cancelled; on cancel it stops output within about
// 100 ms and returns ctx.Err(). Play does not close pcm and does not read it
// after returning.
type Sink interface {
	Rate() int
	Play(ctx context.Context, pcm io.Reader) error
	Close() error
}

var (
	_ Sink = (*OtoSink)(nil)
	_ Sink = (*WAVFileSink)(nil)
	_ Sink = (*SilentSink)(nil)
)

// frameBytes is the size of one s16le stereo frame.
const frameBytes = 4

// maxWAVData is the most sample data a WAV header can describe.
const maxWAVData = placeholderSize - 64

// pace reads pcm in chunks of about chunk of audio, hands each to emit and
// returns when that audio would have finished playing on a real device
// started when pace was called, or when ctx is done. It returns the bytes
// read (whole frames only).
func pace(ctx context.Context, pcm io.Reader, rate int, chunk time.Duration, emit func([]byte) error) (int64, error) {
	size := max(int(int64(rate)*int64(chunk)/int64(time.Second))*frameBytes, frameBytes)
	buf := make([]byte, size)
	start := time.Now()
	timer := time.NewTimer(0)
	defer timer.Stop()
	var total int64
	for {
		if err := ctx.Err(); err != nil {
			return total, err
		}
		n, err := io.ReadFull(pcm, buf)
		n -= n % frameBytes
		if n > 0 {
			if err := emit(buf[:n]); err != nil {
				return total, err
			}
			total += int64(n)
		}
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			err = nil
		case err != nil:
			return total, fmt.Errorf("read PCM: %w", err)
		}
		// Wait until the audio emitted so far has been "heard".
		timer.Reset(time.Until(start.Add(samplesDuration(total/frameBytes, rate))))
		select {
		case <-ctx.Done():
			return total, ctx.Err()
		case <-timer.C:
		}
		if n < size {
			return total, nil
		}
	}
}

// SilentSink holds each item for its real duration without producing any
// sound: it only counts the bytes of PCM it reads. For simulated terminals.
type SilentSink struct{ rate int }

// NewSilentSink returns a SilentSink for PCM at rate.
func NewSilentSink(rate int) *SilentSink { return &SilentSink{rate: max(rate, 1)} }

// Rate returns the sample rate of the PCM the sink expects.
func (s *SilentSink) Rate() int { return s.rate }

// Play reads pcm a quarter second at a time and returns once the time that
// much audio takes to play has passed.
func (s *SilentSink) Play(ctx context.Context, pcm io.Reader) error {
	_, err := pace(ctx, pcm, s.rate, 250*time.Millisecond, func([]byte) error { return nil })
	if err != nil && ctx.Err() == nil {
		return fmt.Errorf("silent sink: %w", err)
	}
	return err
}

// Close does nothing.
func (s *SilentSink) Close() error { return nil }

// WAVFileSink writes the audio of each Play call into a new 16-bit stereo
// WAV file, paced in real time so durations behave as on a device. For demos
// on machines without an audio server.
type WAVFileSink struct {
	dir  string
	rate int

	mu     sync.Mutex
	seq    int
	closed bool
}

// NewWAVFileSink returns a sink writing into dir (created if missing). Files
// are named with a sequence number and the local start time, e.g.
// "0001-20261126T183000.wav"; numbering continues after files already in dir.
func NewWAVFileSink(dir string, rate int) (*WAVFileSink, error) {
	if rate < minRate || rate > maxRate {
		return nil, fmt.Errorf("wav sink: rate %d Hz out of range (%d..%d Hz)", rate, minRate, maxRate)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("wav sink: %w", err)
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.wav"))
	if err != nil {
		return nil, fmt.Errorf("wav sink: %w", err)
	}
	s := &WAVFileSink{dir: dir, rate: rate}
	for _, name := range names {
		prefix, _, _ := strings.Cut(filepath.Base(name), "-")
		if n, err := strconv.Atoi(prefix); err == nil && n > s.seq {
			s.seq = n
		}
	}
	return s, nil
}

// Rate returns the sample rate of the PCM the sink expects.
func (s *WAVFileSink) Rate() int { return s.rate }

// Close makes later Play calls fail; files already written stay.
func (s *WAVFileSink) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.closed = true
	return nil
}

// Play writes pcm into a new WAV file in real time. On cancel the file is
// completed with the audio written so far and ctx.Err() is returned.
func (s *WAVFileSink) Play(ctx context.Context, pcm io.Reader) (err error) {
	f, err := s.create()
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil && cerr != nil {
			err = fmt.Errorf("wav sink: %w", cerr)
		}
	}()
	if _, err := f.Write(wavHeader(s.rate, 2, placeholderSize)); err != nil {
		return fmt.Errorf("wav sink: write %s: %w", f.Name(), err)
	}
	n, perr := pace(ctx, pcm, s.rate, 50*time.Millisecond, func(b []byte) error {
		if _, err := f.Write(b); err != nil {
			return fmt.Errorf("wav sink: write %s: %w", f.Name(), err)
		}
		return nil
	})
	// Finish the header even after a cancel or error: what was written plays.
	if _, err := f.WriteAt(wavHeader(s.rate, 2, uint32(min(n, maxWAVData))), 0); err != nil {
		return fmt.Errorf("wav sink: finish %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("wav sink: sync %s: %w", f.Name(), err)
	}
	if perr != nil && ctx.Err() == nil {
		return fmt.Errorf("wav sink: %w", perr)
	}
	return perr
}

// create opens the next numbered file, never overwriting one.
func (s *WAVFileSink) create() (*os.File, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, errors.New("wav sink: closed")
	}
	for range 1000 {
		s.seq++
		name := filepath.Join(s.dir, fmt.Sprintf("%04d-%s.wav", s.seq, time.Now().Format("20060102T150405")))
		f, err := os.OpenFile(name, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o644)
		if errors.Is(err, os.ErrExist) {
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("wav sink: %w", err)
		}
		return f, nil
	}
	return nil, fmt.Errorf("wav sink: no free file name in %s", s.dir)
}
