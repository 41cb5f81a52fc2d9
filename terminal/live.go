package terminal

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"sync"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// Live speech timing.
const (
	// livePrebuffer is the audio a live stream queues before it starts to
	// sound, to ride out network jitter; it is most of the added delay.
	livePrebuffer = 60 * time.Millisecond
	// liveMaxDelay bounds the audio queued ahead of the loudspeaker;
	// older audio is dropped.
	liveMaxDelay = 300 * time.Millisecond
	// liveIdle ends a session whose frames stopped coming.
	liveIdle = 3 * time.Second
)

// Why a live session ended, besides a preemption or a cancel.
const (
	liveEnded   = "end"   // the end frame came
	liveIdleEnd = "idle"  // no frame for liveIdle
	liveLimit   = "limit" // max_seconds or the command's validity passed
	liveLink    = "link"  // the controller link dropped
)

// liveStreams routes live frames to the sessions announced by verified
// live commands, by session id.
type liveStreams struct {
	mu     sync.Mutex
	active map[[32]byte]*liveStream
}

// liveStream is one announced session.
type liveStream struct {
	t      *Terminal
	tk     *task
	buf    *audio.Stream
	limit  time.Duration   // max_seconds
	link   <-chan struct{} // closed when the connection the command came on ends
	endCh  chan struct{}   // closed by the end frame
	expiry time.Time       // the command's validity (controller time)

	mu       sync.Mutex
	v        *protocol.LiveVerifier
	lastGood time.Time // local clock
	ended    bool
	bad      int
	reported bool
	reason   string
}

// startLive registers a verified live command's stream and queues its task.
func (t *Terminal) startLive(cmd *protocol.Command) {
	t.receipt(cmd.ID, cmd.Live.EBMID, protocol.DeliveryAccepted, "", "")
	v, err := protocol.NewLiveVerifier(cmd.Live)
	if err != nil { // unreachable: the command was validated
		t.receipt(cmd.ID, cmd.Live.EBMID, protocol.DeliveryFailed, "invalid", err.Error())
		return
	}
	a := cmd.Live.Alert()
	tk := &task{id: a.EBMID, source: sourceLive, priority: a.Priority, repeat: 1, volume: a.Volume,
		deadline: cmd.Expires, resumeBy: cmd.Expires, cmdID: cmd.ID, alert: a}
	if a.Class == protocol.ClassEmergency {
		tk.source = sourceEmergency
	}
	t.mu.Lock()
	link := t.sessCh
	t.mu.Unlock()
	ls := &liveStream{t: t, tk: tk, v: v, limit: time.Duration(cmd.Live.MaxSeconds) * time.Second, link: link,
		endCh: make(chan struct{}), expiry: cmd.Expires, lastGood: t.clock.Now(),
		buf: audio.NewStream(protocol.LiveRate, t.cfg.Audio.Rate, t.player.volume(tk), livePrebuffer, liveMaxDelay)}
	p := t.player
	p.live.mu.Lock()
	if p.live.active == nil {
		p.live.active = map[[32]byte]*liveStream{}
	}
	p.live.active[v.Session()] = ls
	p.live.mu.Unlock()
	t.log.Info("live speech announced", "alert", a.EBMID, "priority", a.Priority, "max_seconds", cmd.Live.MaxSeconds)
	p.enqueue(tk)
}

// of returns the live stream of tk, if it is a live task.
func (l *liveStreams) of(tk *task) *liveStream {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, ls := range l.active {
		if ls.tk == tk {
			return ls
		}
	}
	return nil
}

func (l *liveStreams) remove(ls *liveStream) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.active[ls.v.Session()] == ls {
		delete(l.active, ls.v.Session())
	}
}

// deliver hands a binary message to the live session it names and reports
// whether one did; other messages are media chunks.
func (l *liveStreams) deliver(msg []byte) bool {
	if len(msg) < protocol.MediaChunkHeader {
		return false
	}
	l.mu.Lock()
	ls := l.active[[32]byte(msg[:32])]
	l.mu.Unlock()
	if ls == nil {
		return false
	}
	if !ls.t.now().Before(ls.expiry) { // its task never played (cancelled, expired): forget it
		l.remove(ls)
		return true
	}
	ls.frame(msg)
	return true
}

// frame authenticates one frame and queues its audio. A frame that fails
// is dropped and counted; the first failure of a session is reported.
func (ls *liveStream) frame(msg []byte) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	if ls.ended {
		return
	}
	pcm, end, err := ls.v.Open(msg)
	if err != nil {
		ls.bad++
		if !ls.reported {
			ls.reported = true
			sum := sha256.Sum256(msg)
			ls.t.log.Warn("live frame dropped", "alert", ls.tk.id, "err", err)
			ls.t.spoolReport(protocol.Report{Kind: protocol.ReportRejection, Rejection: &protocol.Rejection{
				CommandID: ls.tk.cmdID, Reason: protocol.RejectLiveFrame, PayloadSHA: hex.EncodeToString(sum[:]),
				Detail: fmt.Sprintf("live %s: %v (later failures of this session are counted, not reported)", ls.tk.id, err)}})
		}
		return
	}
	ls.lastGood = ls.t.clock.Now()
	if end {
		ls.stop(liveEnded, false)
		return
	}
	ls.buf.Write(pcm)
}

// stop ends the stream once: the queued audio still plays unless abort.
// Callers hold ls.mu.
func (ls *liveStream) stop(reason string, abort bool) {
	if ls.ended {
		return
	}
	ls.ended, ls.reason = true, reason
	if abort {
		ls.buf.Abort()
	} else {
		ls.buf.Close()
	}
	if reason == liveEnded {
		close(ls.endCh)
	}
}

// watch ends the stream when its frames stop, its time is up or the link
// drops, and stops it at once when ctx ends (a preemption, a cancel), until
// done closes.
func (ls *liveStream) watch(ctx context.Context, done <-chan struct{}, began time.Time) {
	limit := min(ls.limit, ls.expiry.Sub(ls.t.now()))
	tick := time.NewTicker(100 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-done:
			return
		case <-ctx.Done():
			ls.end(liveEnded, true) // the sink may be waiting on the stream
			return
		case <-ls.endCh:
			return
		case <-ls.link:
			ls.end(liveLink, true)
			return
		case <-tick.C:
		}
		now := ls.t.clock.Now()
		ls.mu.Lock()
		idle := now.Sub(ls.lastGood)
		ls.mu.Unlock()
		switch {
		case idle > liveIdle:
			ls.end(liveIdleEnd, false)
			return
		case now.Sub(began) >= limit:
			ls.end(liveLimit, false)
			return
		}
	}
}

func (ls *liveStream) end(reason string, abort bool) {
	ls.mu.Lock()
	defer ls.mu.Unlock()
	ls.stop(reason, abort)
}

// play is how the current task is played: a live task from its stream,
// anything else from its media (perform).
func (p *player) play(ctx context.Context, tk *task, prev string) error {
	if ls := p.live.of(tk); ls != nil {
		defer p.live.remove(ls)
		return p.performLive(ctx, tk, prev, ls)
	}
	return p.perform(ctx, tk, prev)
}

// performLive plays a live stream: relay ON, the warm-up, then the stream's
// audio through the sink until the stream ends. A link that drops fails
// the task (reason "link"); an end frame, an idle stream and the time
// limit end it as played.
func (p *player) performLive(ctx context.Context, tk *task, prev string, ls *liveStream) error {
	defer ls.end(liveEnded, true) // a preempted or failed stream takes no more frames
	t := p.t
	sink, err := t.speaker.get()
	if err != nil {
		return &playError{protocol.FaultAudio, err}
	}
	if err := p.power(); err != nil {
		return err
	}
	p.mu.Lock()
	start := p.warmUntil
	p.mu.Unlock()
	pr := &playRun{sink: sink, volume: p.volume(tk), prev: prev, target: start.Add(-t.outputLatency()), first: true}
	if err := p.waitUntil(ctx, pr.target); err != nil {
		return err
	}
	if _, ok := sink.(audio.Holder); ok {
		sink = audio.NewSilentSink(sink.Rate()) // a stream has no duration to hold for: pace it as it comes
	}
	p.sounding(tk, pr)
	done := make(chan struct{})
	began := t.clock.Now()
	go ls.watch(ctx, done, began)
	cr := &countingReader{r: ls.buf}
	err = sink.Play(ctx, cr)
	close(done)
	tk.played = time.Duration(cr.n.Load()/pcmFrame) * time.Second / time.Duration(sink.Rate())
	tk.ended = t.now()
	ls.mu.Lock()
	reason, bad := ls.reason, ls.bad
	ls.mu.Unlock()
	dropped, gaps := ls.buf.Stats()
	t.log.Info("live speech ended", "alert", tk.id, "reason", reason, "played", tk.played, "dropped_late", dropped, "gaps", gaps, "bad_frames", bad)
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case err != nil:
		t.speaker.failed(fmt.Errorf("audio output failed: %w", err))
		return &playError{protocol.FaultAudio, err}
	case reason == liveLink:
		return &playError{"link", errors.New("the link to the controller dropped during live speech")}
	}
	return nil
}
