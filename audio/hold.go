package audio

import (
	"context"
	"io"
	"time"
)

var _ Sink = (*HoldSink)(nil)

// HoldSink is the silent output of a simulated terminal: it holds each item
// for its duration without decoding it (thousands of real-time MP3 decoders
// do not fit on a small server). A player that sees a Holder calls Hold with
// the item's duration instead of decoding the file into Play.
type HoldSink struct{ rate int }

// Holder is a sink that can stand for an item's duration without its PCM.
type Holder interface {
	Hold(ctx context.Context, d time.Duration) error
}

// NewHoldSink returns a HoldSink that says it plays PCM at rate.
func NewHoldSink(rate int) *HoldSink { return &HoldSink{rate: max(rate, 1)} }

// Rate returns the sample rate of the PCM the sink says it expects.
func (s *HoldSink) Rate() int { return s.rate }

// Hold returns after d, or at once with ctx's error when ctx ends first.
func (s *HoldSink) Hold(ctx context.Context, d time.Duration) error { return wait(ctx, d) }

// wait returns after d, or at once with ctx's error when ctx ends first.
func wait(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Play holds for as long as pcm would play, reading it without pacing.
func (s *HoldSink) Play(ctx context.Context, pcm io.Reader) error {
	n, err := io.Copy(io.Discard, pcm)
	if err != nil {
		return err
	}
	return s.Hold(ctx, samplesDuration(n/frameBytes, s.rate))
}

// Close does nothing.
func (s *HoldSink) Close() error { return nil }
