package controller

import (
	"sync"
	"time"

	"dalaba/protocol"
)

// An alert's media reaches the whole fleet at once, and a terminal plays it
// as it arrives, from its first verified chunk (docs/protocol.md §6). What
// decides when the last loudspeaker sounds is how soon every terminal has
// its first chunk, not its whole file. So during a fan-out (paceFanOut
// streamed fetches starting within paceQuiet), a streamed fetch's later
// chunks wait until the terminal will soon need them (paceAfter), three
// quarters of its first chunk's audio ahead of the loudspeaker. Otherwise, and as
// soon as the fan-out's starts thin out, they go at once: a terminal
// alone, or one of a few, has its whole file as soon as its link allows,
// and a link cut after the first chunk does not leave it pausing
// mid-alert.
//
// A terminal's reports (accepted, fetching, playing, …) and heartbeats wait
// out a fan-out too, at most reportHold, before they are stored and
// acknowledged (reportbatch.go; a session whose report queue fills up has
// it stored at once, so that the media requests behind its reports are not
// held too):
// no terminal needs them stored to play, and storing them is half the
// controller's work in a fan-out (docs/benchmarks.md, "Where the first
// half-second goes at 1,000").
// The console sees the fan-out's progress up to reportHold late; held
// together, a terminal's reports are stored in one transaction with
// hundreds of others' and acknowledged once.

// reportHold is the longest a report waits for a fan-out to end.
const reportHold = time.Second

// mediaPacer knows whether a fan-out is under way.
type mediaPacer struct {
	hold   time.Duration // reportHold; tests may set it before use
	mu     sync.Mutex
	fanOut int           // starts within paceQuiet that make a fan-out
	starts []time.Time   // the last fanOut starts, a ring
	next   int           // where the next start goes in starts
	quiet  chan struct{} // closed while no fan-out is under way
	timer  *time.Timer   // pending while quiet is open
}

const (
	// paceFanOut streamed fetches starting within paceQuiet are a
	// fan-out.
	paceFanOut = 16
	paceQuiet  = time.Second
	// paceMaxStep bounds the audio one chunk counts for: a terminal asks
	// again for a file whose next chunk has not come for 30 s.
	paceMaxStep = 10 * time.Second
)

func newMediaPacer(fanOut int) *mediaPacer {
	p := &mediaPacer{hold: reportHold, fanOut: fanOut, starts: make([]time.Time, fanOut), quiet: make(chan struct{})}
	close(p.quiet)
	return p
}

// started records that a streamed fetch has queued its first chunk.
func (p *mediaPacer) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.starts[p.next] = time.Now()
	p.next = (p.next + 1) % p.fanOut
	left := p.fanOutLeft()
	if left <= 0 {
		return
	}
	select {
	case <-p.quiet: // a fan-out begins
		p.quiet = make(chan struct{})
		if p.timer == nil {
			p.timer = time.AfterFunc(left, p.check)
		} else {
			p.timer.Reset(left)
		}
	default: // under way: the timer is pending, and check looks again
	}
}

// fanOutLeft returns how long the last fanOut starts still make a
// fan-out; none (≤ 0) when they are not within paceQuiet. Callers hold
// p.mu.
func (p *mediaPacer) fanOutLeft() time.Duration {
	oldest := p.starts[p.next] // the ring is full once fanOut have started
	if oldest.IsZero() {
		return 0
	}
	return paceQuiet - time.Since(oldest)
}

// check closes quiet once the fan-out's starts have thinned out.
func (p *mediaPacer) check() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if left := p.fanOutLeft(); left > 0 {
		p.timer.Reset(left)
		return
	}
	close(p.quiet)
}

// wait returns at due, or sooner once no fan-out is under way or when
// stop (which may be nil) has something.
func (p *mediaPacer) wait(due time.Time, stop <-chan struct{}) {
	d := time.Until(due)
	if d <= 0 {
		return
	}
	quiet := p.quietCh()
	select {
	case <-quiet:
		return
	default:
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
	case <-quiet:
	case <-stop:
	}
}

// holdReports returns once no fan-out is under way, at most the report
// hold from now, or sooner when full has something.
func (p *mediaPacer) holdReports(full <-chan struct{}) {
	p.wait(time.Now().Add(p.hold), full)
}

// quietCh is closed while no fan-out is under way.
func (p *mediaPacer) quietCh() <-chan struct{} {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.quiet
}

// paceAfter is how long after a streamed fetch's first chunk (of first
// bytes) went the chunk ahead bytes further on goes, during a fan-out: the
// terminal cannot have started sooner than the first came, so that chunk
// comes at least ¾ of the first chunk's audio before its loudspeaker
// reaches it. Half a chunk left 3 of 15,000 simulated terminals pausing
// (at most 0.2 s) on a saturated bench machine, whose terminals took that
// long to take a chunk in (docs/benchmarks.md, "First chunks first").
func paceAfter(m protocol.Media, ahead, first int64) time.Duration {
	return audioOf(m, ahead) - audioOf(m, first)*3/4
}

// audioOf is how long n bytes of m play, counting at most paceMaxStep for
// a chunk; 0 when m does not say.
func audioOf(m protocol.Media, n int64) time.Duration {
	if m.Size <= 0 || m.DurationMS <= 0 || m.ChunkSize <= 0 {
		return 0
	}
	perByte := min(float64(m.DurationMS)*float64(time.Millisecond)/float64(m.Size), float64(paceMaxStep)/float64(m.ChunkSize))
	return time.Duration(perByte * float64(n))
}
