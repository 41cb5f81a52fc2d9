package controller

import (
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/audio"
	"dalaba/protocol"
)

// A terminal that plays an alert's file as it arrives gets its first chunk
// at once and, during a fan-out (here two streamed fetches starting within
// a second make one), each later one ¾ of the first chunk's audio before
// its loudspeaker needs it. A fetch that does not stream (a schedule's
// prefetch) is not held back, and a terminal fetching alone gets all its
// chunks at once.
func TestStreamedMediaPaced(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	h.c.media.pacer = newMediaPacer(2)
	m := h.upload(t, audio.ToneWAV(1000, 6200*time.Millisecond, 16000, 0.5))
	audio := func(bytes int64) time.Duration {
		return time.Duration(m.DurationMS) * time.Millisecond * time.Duration(bytes) / time.Duration(m.Size)
	}
	// The pieces: 16, 16, 32, 64, 64 KiB and the rest.
	n, step, lead := len(m.Chunks), audio(int64(m.ChunkSize)), audio(int64(m.FirstChunk))*3/4
	if n < 6 || step < 2*paceQuiet {
		t.Fatalf("test media of %d chunks of up to %s each; the test wants 6 or more, up to %s or longer", n, step, 2*paceQuiet)
	}
	a, codeA := h.newRawTerminal(t, villageA, "甲")
	b, codeB := h.newRawTerminal(t, villageA, "乙")
	a.connect(t, codeA)
	b.connect(t, codeB)
	get := func(stream bool) []byte {
		msg, err := protocol.Encode(protocol.TypeMediaGet, protocol.MediaGet{SHA256: m.SHA256, Stream: stream})
		if err != nil {
			t.Fatal(err)
		}
		return msg
	}
	// chunks asks for the file and returns when each chunk came, by index,
	// counted from the first.
	chunks := func(stream bool) ([]time.Duration, []int64) {
		t.Helper()
		if err := a.ws.WriteMessage(websocket.TextMessage, get(stream)); err != nil {
			t.Fatal(err)
		}
		at := make([]time.Duration, n)
		offsets := make([]int64, n)
		var first time.Time
		for got := 0; got < n; {
			a.ws.SetReadDeadline(time.Now().Add(waitLimit))
			kind, msg, err := a.ws.ReadMessage()
			if err != nil {
				t.Fatalf("reading chunks: %v (%d of %d came)", err, got, n)
			}
			if kind != websocket.BinaryMessage {
				continue // a schedule, a pong
			}
			_, off, _, err := protocol.DecodeMediaChunk(msg)
			if err != nil {
				t.Fatal(err)
			}
			if got == 0 {
				first = time.Now()
			}
			i, _, ok := m.ChunkAt(int64(off))
			if !ok {
				t.Fatalf("a chunk at %d, where none starts", off)
			}
			at[i], offsets[i] = time.Since(first), int64(off)
			got++
		}
		return at, offsets
	}

	busy := make(chan struct{})
	b.fetchEvery200ms(get(true), busy)
	time.Sleep(300 * time.Millisecond)
	at, offsets := chunks(true)
	for k := 1; k < n; k++ {
		due := audio(offsets[k]) - lead
		if at[k] < due-100*time.Millisecond {
			t.Errorf("streamed, while others started: chunk %d came %s after the first, before its time %s", k, at[k], due)
		}
	}
	if at, _ := chunks(false); at[n-1] > step/2 {
		t.Errorf("not streamed, while others started: the last chunk came %s after the first, paced", at[n-1])
	}
	close(busy)

	time.Sleep(paceQuiet + 300*time.Millisecond) // nobody else is starting
	if at, _ := chunks(true); at[n-1] > step/2 {
		t.Errorf("streamed, alone: the last chunk came %s after the first, paced", at[n-1])
	}
}

// Fewer than paceFanOut streamed fetches starting within paceQuiet are no
// fan-out; the paceFanOut-th makes one, which ends paceQuiet after the
// oldest of the last paceFanOut starts.
func TestPacerKnowsAFanOut(t *testing.T) {
	p := newMediaPacer(paceFanOut)
	quiet := func() bool {
		p.mu.Lock()
		defer p.mu.Unlock()
		select {
		case <-p.quiet:
			return true
		default:
			return false
		}
	}
	for range paceFanOut - 1 {
		p.started()
	}
	if !quiet() {
		t.Fatalf("%d starts make a fan-out", paceFanOut-1)
	}
	p.started()
	if quiet() {
		t.Fatalf("%d starts within %s make no fan-out", paceFanOut, paceQuiet)
	}
	time.Sleep(paceQuiet + 200*time.Millisecond)
	if !quiet() {
		t.Fatalf("a fan-out %s after its last start", paceQuiet+200*time.Millisecond)
	}
}

// During a fan-out a terminal's reports wait, at most reportHold, before
// they are stored; those that came meanwhile are stored together and
// acknowledged once. Here another terminal keeps starting streamed
// fetches, so the fan-out lasts, and terminal a's two reports are
// acknowledged together once the hold is over.
func TestReportsWaitOutAFanOut(t *testing.T) {
	t.Parallel()
	h, a := fanningOut(t)
	sent := time.Now()
	a.sendFaults(t, 2)
	ack := a.nextAck(t)
	took := time.Since(sent)
	if ack.Seq != a.seq {
		t.Errorf("the first ack is for report %d, want one for both (%d)", ack.Seq, a.seq)
	}
	if took < h.c.media.pacer.hold {
		t.Errorf("reports acknowledged %s after they were sent during a fan-out, before the hold of %s", took, h.c.media.pacer.hold)
	}
	t.Logf("reports sent during a fan-out acknowledged after %s", took)
}

// During a fan-out a heartbeat also waits for it to end, at most
// reportHold after its gather: a terminal's heartbeat on starting to play
// is one more write per terminal, and nothing waits for it.
func TestHeartbeatsWaitOutAFanOut(t *testing.T) {
	t.Parallel()
	hold := 2 * time.Second
	h, a := fanningOut(t, func(p *mediaPacer) { p.hold = hold })
	g := &h.c.hub.reports.heartbeats
	waitFor(t, "the heartbeats of the terminals coming online stored", func() bool {
		g.mu.Lock()
		defer g.mu.Unlock()
		return !g.flushing
	})
	sent := time.Now()
	a.write(t, protocol.TypeHeartbeat, protocol.Heartbeat{State: protocol.StatePlaying, Volume: 9, RelayOK: true, AudioOK: true})
	stored := func() bool {
		v := h.terminalRow(t, a.id).Volume
		return v != nil && *v == 9
	}
	waitFor(t, "the heartbeat stored", stored)
	took := time.Since(sent)
	if took < heartbeatGather+hold {
		t.Errorf("a heartbeat sent during a fan-out was stored after %s, before its gather and the hold (%s)", took, heartbeatGather+hold)
	}
	t.Logf("a heartbeat sent during a fan-out stored after %s", took)
}

// A session whose report queue fills up during a fan-out has its reports
// stored at once rather than after the hold (here an hour), so that its
// media requests, which queue behind its reports, are not held too.
func TestFullReportQueueIsNotHeld(t *testing.T) {
	t.Parallel()
	_, a := fanningOut(t, func(p *mediaPacer) { p.hold = time.Hour })
	a.sendFaults(t, reportQueue+1)
	ack := a.nextAck(t) // within waitLimit, not the hour
	t.Logf("%d reports sent during a fan-out: the first ack is for %d", reportQueue+1, ack.Seq)
}

// fanningOut starts a controller whose fan-outs are two streamed fetches
// starting within a second (set changes its pacer before anything uses
// it), connects terminal a, and keeps a fan-out under way until the test
// ends: a second terminal starts a streamed fetch every 200 ms.
func fanningOut(t *testing.T, set ...func(*mediaPacer)) (*testController, *rawTerminal) {
	t.Helper()
	h := startController(t, nil)
	p := newMediaPacer(2)
	for _, f := range set {
		f(p)
	}
	h.c.media.pacer = p
	m := h.upload(t, audio.ToneWAV(1000, 6200*time.Millisecond, 16000, 0.5))
	a, codeA := h.newRawTerminal(t, villageA, "甲")
	b, codeB := h.newRawTerminal(t, villageA, "乙")
	a.connect(t, codeA)
	b.connect(t, codeB)
	get, err := protocol.Encode(protocol.TypeMediaGet, protocol.MediaGet{SHA256: m.SHA256, Stream: true})
	if err != nil {
		t.Fatal(err)
	}
	busy := make(chan struct{})
	t.Cleanup(func() { close(busy) })
	b.fetchEvery200ms(get, busy)
	for deadline := time.Now().Add(waitLimit); ; time.Sleep(10 * time.Millisecond) {
		select {
		case <-p.quietCh():
			if time.Now().After(deadline) {
				t.Fatal("no fan-out seen while a terminal starts a streamed fetch every 200 ms")
			}
			continue
		default:
		}
		return h, a
	}
}

// fetchEvery200ms has rt start a streamed fetch (get, its media_get) now
// and every 200 ms until stop is closed, and drops what comes back: a
// fan-out, to a pacer that counts two starts within a second as one.
func (rt *rawTerminal) fetchEvery200ms(get []byte, stop <-chan struct{}) {
	go func() {
		for {
			if _, _, err := rt.ws.ReadMessage(); err != nil {
				return
			}
		}
	}()
	go func() {
		tick := time.NewTicker(200 * time.Millisecond)
		defer tick.Stop()
		for {
			if rt.ws.WriteMessage(websocket.TextMessage, get) != nil {
				return
			}
			select {
			case <-stop:
				return
			case <-tick.C:
			}
		}
	}()
}

// sendFaults sends n fault reports without waiting for their acks.
func (rt *rawTerminal) sendFaults(t *testing.T, n int) {
	t.Helper()
	for range n {
		rt.seq++
		rt.write(t, protocol.TypeReport, protocol.Report{Seq: rt.seq, At: rt.h.clock.now(), Kind: protocol.ReportFault,
			Fault: &protocol.Fault{Code: protocol.FaultAudio, Active: true, Message: "test"}})
	}
}

// nextAck reads frames until an ack, skipping a schedule; anything else
// fails the test.
func (rt *rawTerminal) nextAck(t *testing.T) protocol.Ack {
	t.Helper()
	for {
		f := rt.read(t)
		if f.Type == protocol.TypeCommand {
			continue
		}
		var a protocol.Ack
		if f.Type != protocol.TypeAck || protocol.DecodeBody(f, &a) != nil {
			t.Fatalf("terminal %s got %s %s, want an ack", rt.id, f.Type, f.Body)
		}
		return a
	}
}

// Outside a fan-out the pacer holds nothing back: wait returns at once
// however far off its due time.
func TestPacerWaitsOnlyDuringAFanOut(t *testing.T) {
	p := newMediaPacer(2)
	returned := make(chan struct{})
	go func() {
		p.wait(time.Now().Add(time.Hour), nil)
		close(returned)
	}()
	select {
	case <-returned:
	case <-time.After(waitLimit):
		t.Fatal("wait with no fan-out under way did not return")
	}
	first := time.Now()
	p.started()
	p.started()
	p.wait(time.Now().Add(time.Hour), nil) // returns once the fan-out ends
	if took := time.Since(first); took < paceQuiet {
		t.Errorf("wait during a fan-out returned %s after it began, before it could end (%s)", took, paceQuiet)
	}
}

// A streamed fetch's lead is ¾ of its first chunk's audio unless the
// fan-out's other terminals will take longer to start, at the pace they
// have been starting (three times that), or the fan-out has gone on
// longer: then that, up to ¾ of a whole chunk's audio. Before the pace is
// known, the most.
func TestPacerLeadCoversTheFanOutStillToStart(t *testing.T) {
	const least, most = 500 * time.Millisecond, 6 * time.Second
	p := newMediaPacer(1000) // more than this test's starts: no fan-out, until the one below
	if got := p.lead(least, most); got != least {
		t.Fatalf("no alert sent: lead %s, want %s", got, least)
	}
	p.expect(1000 + paceRateOver)
	for range paceRateOver / 2 {
		p.started()
	}
	if got := p.lead(least, most); got != most {
		t.Fatalf("%d starts, no pace yet: lead %s, want %s", paceRateOver/2, got, most)
	}
	// paceRateOver starts a millisecond apart, 1,000 terminals still to
	// start: 3 s.
	p.mu.Lock()
	at := time.Now()
	for i := range p.recent {
		p.recent[i] = at.Add(time.Duration(i-paceRateOver) * time.Millisecond)
	}
	p.nextRecent = 0
	p.mu.Unlock()
	for _, c := range []struct {
		toStart int
		want    time.Duration
	}{{1000, 3 * time.Second}, {100, least}, {100000, most}} {
		p.mu.Lock()
		p.expected = c.toStart
		p.mu.Unlock()
		if got := p.lead(least, most); got != c.want {
			t.Fatalf("%d to start at 1 ms each: lead %s, want %s", c.toStart, got, c.want)
		}
	}
	// Starts an hour apart, and more to start than the product fits in.
	long := newMediaPacer(1000)
	long.expected, long.expectedAt = 1<<30, time.Now()
	for i := range long.recent {
		long.recent[i] = at.Add(time.Duration(i-paceRateOver) * time.Hour)
	}
	if got := long.lead(least, most); got != most {
		t.Fatalf("%d to start, an hour apart: lead %s, want %s", long.expected, got, most)
	}
	// 100 to start in a fan-out 2 s on (a pacer of its own, with no timer
	// to end the fan-out).
	on := newMediaPacer(paceFanOut)
	on.quiet, on.began = make(chan struct{}), time.Now().Add(-2*time.Second)
	on.expected, on.expectedAt = 100, p.expectedAt
	copy(on.recent, p.recent)
	if got := on.lead(least, most); got < 2*time.Second || got > 2100*time.Millisecond {
		t.Fatalf("100 to start at 1 ms each, in a fan-out 2 s on: lead %s, want 2s", got)
	}
	p.mu.Lock()
	p.expectedAt = at.Add(-paceExpectFor - time.Second)
	p.mu.Unlock()
	if got := p.lead(least, most); got != least {
		t.Fatalf("terminals sent an alert %s ago still counted: lead %s, want %s", paceExpectFor, got, least)
	}
	p.expect(5) // the old ones are forgotten
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.expected != 5 {
		t.Fatalf("expected %d after the old ones were forgotten, want 5", p.expected)
	}
}
