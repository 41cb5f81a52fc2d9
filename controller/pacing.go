package controller

import (
	"sync"
	"time"

	"dalaba/protocol"
)

// An alert's media reaches the whole fleet at once, and a terminal plays it
// as it arrives, from its first verified chunk (docs/protocol.md §6). What
// decides when the last loudspeaker sounds is how soon every terminal has
// its first chunk, not its whole file. So while terminals are still asking
// for first chunks, a streamed fetch's later chunks wait until the terminal
// will soon need them: chunk k after the first goes (k − ½) chunk-durations
// of audio after the first went, half a chunk ahead of the loudspeaker.
// Once no streamed fetch has started for paceQuiet, the rest go at once, so
// a lone terminal, or the tail of a large fan-out, is not slowed.

// mediaPacer knows whether streamed fetches are starting.
type mediaPacer struct {
	mu    sync.Mutex
	last  time.Time     // a streamed fetch's first chunk was last queued
	quiet chan struct{} // closed while none has been for paceQuiet
	timer *time.Timer   // pending while quiet is open
}

const (
	// paceQuiet is how long no streamed fetch may have started before the
	// later chunks held back go at once.
	paceQuiet = time.Second
	// paceMaxStep bounds the audio one chunk counts for: a terminal asks
	// again for a file whose next chunk has not come for 30 s.
	paceMaxStep = 10 * time.Second
)

func newMediaPacer() *mediaPacer {
	p := &mediaPacer{quiet: make(chan struct{})}
	close(p.quiet)
	return p
}

// started records that a streamed fetch has queued its first chunk.
func (p *mediaPacer) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.last = time.Now()
	select {
	case <-p.quiet:
		p.quiet = make(chan struct{})
		if p.timer == nil {
			p.timer = time.AfterFunc(paceQuiet, p.check)
		} else {
			p.timer.Reset(paceQuiet)
		}
	default: // the timer is pending
	}
}

// check closes quiet once no fetch has started for paceQuiet.
func (p *mediaPacer) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if left := paceQuiet - time.Since(p.last); left > 0 {
		p.timer.Reset(left)
		return
	}
	close(p.quiet)
}

// wait returns at due, or sooner once no streamed fetch is starting.
func (p *mediaPacer) wait(due time.Time) {
	d := time.Until(due)
	if d <= 0 {
		return
	}
	p.mu.Lock()
	quiet := p.quiet
	p.mu.Unlock()
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-quiet:
	}
}

// chunkAudio is how long the audio in one of m's chunks plays, at most
// paceMaxStep; 0 when m does not say.
func chunkAudio(m protocol.Media) time.Duration {
	if m.Size <= 0 || m.DurationMS <= 0 {
		return 0
	}
	d := time.Duration(m.DurationMS) * time.Millisecond * time.Duration(m.ChunkSize) / time.Duration(m.Size)
	return min(d, paceMaxStep)
}
