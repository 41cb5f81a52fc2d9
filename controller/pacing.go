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
// chunks wait until the terminal will soon need them (paceAfter): three
// quarters of its first chunk's audio ahead of the loudspeaker, or, when
// the fan-out's other terminals will take longer than that to start, that
// long (lead). Otherwise, and as
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
	began  time.Time     // when the fan-out under way began

	// For lead: the terminals sent an alert lately that have not started a
	// streamed fetch since (when they were sent it), and the times of the
	// last paceRateOver starts, a ring.
	expected   int
	expectedAt time.Time
	recent     []time.Time
	nextRecent int
}

const (
	// paceFanOut streamed fetches starting within paceQuiet are a
	// fan-out.
	paceFanOut = 16
	paceQuiet  = time.Second
	// paceMaxStep bounds the audio one chunk counts for: a terminal asks
	// again for a file whose next chunk has not come for 30 s.
	paceMaxStep = 10 * time.Second
	// paceRateOver starts give the pace at which a fan-out's terminals
	// start; terminals sent an alert paceExpectFor ago and still not
	// started are not counted as still to start.
	paceRateOver  = 256
	paceExpectFor = 30 * time.Second
)

func newMediaPacer(fanOut int) *mediaPacer {
	p := &mediaPacer{hold: reportHold, fanOut: fanOut, starts: make([]time.Time, fanOut), quiet: make(chan struct{}),
		recent: make([]time.Time, paceRateOver)}
	close(p.quiet)
	return p
}

// expect records that n terminals were just sent an alert, whose files
// they may soon fetch to play as they come.
func (p *mediaPacer) expect(n int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	if now.Sub(p.expectedAt) > paceExpectFor {
		p.expected = 0
	}
	p.expected, p.expectedAt = p.expected+n, now
}

// lead returns how far ahead of its loudspeaker a streamed fetch that
// starts now gets its later chunks during a fan-out: at least least, ¾ of
// its first chunk's audio, and at most most, ¾ of a whole chunk's. While
// terminals sent an alert are still to start, within those: three times
// as long as they will take to start at the pace the last paceRateOver
// started, and at least as long as the fan-out has gone on. A chunk sent
// now waits behind their commands and first chunks, and the later chunks
// of those started before, on the controller and, in a simulated fleet,
// in the terminals' own processes; and the pace slows as more terminals
// play. Without a pace yet, most.
func (p *mediaPacer) lead(least, most time.Duration) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.expected == 0 || time.Since(p.expectedAt) > paceExpectFor {
		return least // no alert's fan-out
	}
	select {
	case <-p.quiet:
	default: // under way
		least = max(least, min(time.Since(p.began), most))
	}
	oldest := p.recent[p.nextRecent]
	if oldest.IsZero() {
		return most
	}
	newest := p.recent[(p.nextRecent+paceRateOver-1)%paceRateOver]
	if !newest.After(oldest) {
		return most
	}
	perStart := newest.Sub(oldest) / (paceRateOver - 1)
	if perStart >= most { // starts long apart; and the product below cannot overflow
		return most
	}
	return min(max(perStart*time.Duration(p.expected)*3, least), most)
}

// started records that a streamed fetch has queued its first chunk.
func (p *mediaPacer) started() {
	p.mu.Lock()
	defer p.mu.Unlock()
	now := time.Now()
	p.recent[p.nextRecent] = now
	p.nextRecent = (p.nextRecent + 1) % paceRateOver
	p.expected = max(p.expected-1, 0)
	p.starts[p.next] = now
	p.next = (p.next + 1) % p.fanOut
	left := p.fanOutLeft()
	if left <= 0 {
		return
	}
	select {
	case <-p.quiet: // a fan-out begins
		p.quiet, p.began = make(chan struct{}), now
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

// paceAfter is how long after a streamed fetch's first chunk went the
// chunk ahead bytes further on goes, during a fan-out: the terminal cannot
// have started sooner than the first came, so that chunk comes at least
// lead before its loudspeaker reaches it.
func paceAfter(m protocol.Media, ahead int64, lead time.Duration) time.Duration {
	return audioOf(m, ahead) - lead
}

// leadFor is the pacer's lead for a streamed fetch of m whose first chunk
// is first bytes: ¾ of that chunk's audio at least, ¾ of a whole chunk's at
// most. A lead of half a chunk of 64 KiB (4 s) left 3 of 15,000 simulated
// terminals pausing (at most 0.2 s) on a saturated bench machine, whose
// terminals took that long to take a chunk in (docs/benchmarks.md, "First
// chunks first"); one of ¾ of a 16 KiB first piece (1.5 s) left a third
// of them pausing ("Small first pieces").
func (p *mediaPacer) leadFor(m protocol.Media, first int64) time.Duration {
	return p.lead(audioOf(m, first)*3/4, audioOf(m, int64(m.ChunkSize))*3/4)
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
