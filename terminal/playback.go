package terminal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"sync/atomic"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// finalSleep is the last stretch before a start, slept in one go; longer
// waits are cut into pieces so that a refined clock estimate is followed.
const finalSleep = 20 * time.Millisecond

// spinLead is the end of a wait for a start instant that is polled, not
// slept (a bounded busy wait of about 2 ms per start).
const spinLead = 2 * time.Millisecond

// otoLatency is how long after the oto sink starts its first sample is
// heard (its device buffer and the audio server's), measured through
// PulseAudio (docs/benchmarks.md, "Starting together").
const otoLatency = 40 * time.Millisecond

// playError is a failure of playback; reason is the failed receipt's
// reason: media, relay or audio.
type playError struct {
	reason string
	err    error
}

func (e *playError) Error() string { return e.err.Error() }
func (e *playError) Unwrap() error { return e.err }

// outputLatency is how early the sink is started so that the first sample
// sounds at the start instant (config audio.latency_ms; -1: by output).
func (t *Terminal) outputLatency() time.Duration {
	if t.cfg.Audio.LatencyMS >= 0 {
		return ms(t.cfg.Audio.LatencyMS)
	}
	if t.cfg.Audio.Output == "oto" {
		return otoLatency
	}
	return 0
}

// perform plays tk from its position: relay ON if it is OFF, wait for the
// warm-up and the start instant, then the media. It returns nil when tk
// played to the end, the cause when ctx was cancelled, or a *playError.
// prev is the task that sounded before it in this amplifier run.
func (p *player) perform(ctx context.Context, tk *task, prev string) error {
	t := p.t
	sink, err := t.speaker.get()
	if err != nil {
		return &playError{protocol.FaultAudio, err}
	}
	if err := p.power(); err != nil {
		return err
	}
	p.mu.Lock()
	start, resumed := p.warmUntil, tk.sounded
	p.mu.Unlock()
	if !resumed && tk.at.After(start) {
		start = tk.at
	}
	pr := &playRun{sink: sink, volume: p.volume(tk), prev: prev, target: start.Add(-t.outputLatency()), first: true}
	if err := p.waitUntil(ctx, pr.target); err != nil {
		return err
	}
	for ; tk.pos.pass < tk.repeat; tk.pos.pass, tk.pos.media = tk.pos.pass+1, 0 {
		for ; tk.pos.media < len(tk.media); tk.pos.media, tk.pos.offset = tk.pos.media+1, 0 {
			if err := p.playMedia(ctx, tk, pr); err != nil {
				return fmt.Errorf("media %d, repeat %d: %w", tk.pos.media, tk.pos.pass+1, err)
			}
		}
	}
	return nil
}

// playRun is one stretch of playback of a task.
type playRun struct {
	sink   audio.Sink
	volume int
	prev   string    // the task that sounded before, for the switch report
	target time.Time // when the sink should start (controller time)
	first  bool      // nothing played yet in this stretch
}

// power switches the relay ON unless it is; a relay that fails is sent OFF
// too, in case it switched without answering. The audio output is woken
// first, so that it has settled (its first request is a whole device
// buffer of silence) well before the warm-up ends; it rests again once the
// relay is OFF (run). It returns a *playError.
func (p *player) power() error {
	p.mu.Lock()
	on := p.powered
	p.mu.Unlock()
	if on {
		return nil
	}
	if err := p.t.speaker.wake(); err != nil {
		return &playError{protocol.FaultAudio, err}
	}
	if err := p.t.amp.switchOn(); err != nil {
		p.t.amp.switchOff()
		p.t.speaker.rest()
		return &playError{protocol.FaultRelay, err}
	}
	p.mu.Lock()
	p.powered, p.warmUntil = true, p.t.now().Add(ms(p.t.cfg.WarmupMS))
	p.mu.Unlock()
	return nil
}

// waitUntil sleeps until the controller clock reaches at. Timers wake up
// to a millisecond or so late, so the last spinLead is spent polling the
// clock (yielding the processor).
func (p *player) waitUntil(ctx context.Context, at time.Time) error {
	for {
		d := at.Sub(p.t.now()) - spinLead
		if d <= 0 {
			break
		}
		if d > 2*finalSleep {
			d = min(d-finalSleep, time.Second)
		}
		if !p.t.sleep(ctx.Done(), d) {
			return context.Cause(ctx)
		}
	}
	for limit := time.Now().Add(2 * spinLead); p.t.now().Before(at) && time.Now().Before(limit) && ctx.Err() == nil; {
		runtime.Gosched()
	}
	return context.Cause(ctx)
}

// volume is tk's playback volume: its own, else full (or emergency_volume)
// for an emergency, else the terminal's setting.
func (p *player) volume(tk *task) int {
	if tk.volume > 0 {
		return tk.volume
	}
	if tk.source == sourceEmergency {
		if v := p.t.cfg.EmergencyVolume; v > 0 {
			return v
		}
		return 100
	}
	st, _ := p.t.currentSettings()
	return st.Volume
}

// playMedia plays the media file at tk's position, skipping the PCM already
// played, and advances the position by what was heard.
func (p *player) playMedia(ctx context.Context, tk *task, pr *playRun) error {
	sink := pr.sink
	m := tk.media[tk.pos.media]
	if h, ok := sink.(audio.Holder); ok {
		return p.holdMedia(ctx, tk, pr, h, m)
	}
	f, err := p.openMedia(ctx, tk)
	if err != nil {
		return &playError{"media", err}
	}
	defer f.Close()
	pcm, err := audio.Decode(f, m.Format, sink.Rate(), pr.volume)
	if err != nil {
		p.t.faults.raise(protocol.FaultMedia, err.Error())
		return &playError{"media", err}
	}
	if off := tk.pos.offset; off > 0 {
		if n, err := io.CopyN(io.Discard, pcm, off); err != nil {
			if errors.Is(err, io.EOF) { // it had ended
				tk.pos.offset = n
				return nil
			}
			return &playError{"media", err}
		}
	}
	if st := p.streamOf(tk); st != nil {
		st.takePaused() // waits before the sound starts (the decoder reading its first frames) are no pause
	}
	if pr.first {
		p.sounding(tk, pr)
		pr.first = false
	}
	cr := &countingReader{r: pcm}
	begin := time.Now()
	err = sink.Play(ctx, cr)
	p.paused(tk, p.streamOf(tk))
	n := cr.n.Load()
	if err != nil && ctx.Err() != nil {
		// The sink reads ahead of the loudspeaker: count what was heard.
		heard := int64(time.Since(begin).Seconds()*float64(sink.Rate())) * pcmFrame
		n = min(n, heard)
	}
	n -= n % pcmFrame
	tk.pos.offset += n
	tk.played += time.Duration(n/pcmFrame) * time.Second / time.Duration(sink.Rate())
	tk.ended = p.t.now()
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case p.streamFailed(tk) != nil: // a chunk failed its hash: not the output's fault
		return &playError{"media", p.streamFailed(tk)}
	}
	p.t.speaker.failed(fmt.Errorf("audio output failed: %w", err))
	return &playError{protocol.FaultAudio, err}
}

// holdMedia stands for playing m on a sink that holds items for their
// duration without decoding them (the fleet simulator's), advancing the
// position by the time held.
func (p *player) holdMedia(ctx context.Context, tk *task, pr *playRun, h audio.Holder, m protocol.Media) error {
	rate := int64(pr.sink.Rate())
	done := time.Duration(tk.pos.offset/pcmFrame) * time.Second / time.Duration(rate)
	rest := time.Duration(m.DurationMS)*time.Millisecond - done
	if rest <= 0 {
		return nil
	}
	if pr.first {
		p.sounding(tk, pr)
		pr.first = false
	}
	// Hold while the rest streams in; a chunk that fails its hash ends
	// the hold, and it is over only once the whole file is verified.
	hctx, stop := context.WithCancelCause(ctx)
	defer stop(nil)
	st := p.streamOf(tk)
	if st != nil {
		go func() {
			select {
			case <-st.done:
				if err := st.failed(); err != nil {
					stop(err)
				}
			case <-hctx.Done():
			}
		}()
	}
	begin := time.Now()
	var err error
	if st == nil {
		err = h.Hold(hctx, rest)
	} else {
		err = holdStream(hctx, h, st, done, done+rest)
		if err == nil {
			select {
			case <-st.done:
			case <-hctx.Done():
			}
		}
	}
	paused := p.paused(tk, st) // logged, and told to the hook
	heard := min(time.Since(begin)-paused, rest)
	tk.pos.offset += int64(heard.Seconds()*float64(rate)) * pcmFrame
	tk.played += heard
	tk.ended = p.t.now()
	switch {
	case ctx.Err() != nil:
		return context.Cause(ctx)
	case st != nil && st.failed() != nil:
		return &playError{"media", st.failed()}
	}
	return err
}

// holdStream holds for the audio of st from at to end as a decoder would
// play it: at the audio's pace, and waiting (a pause the listener hears)
// whenever it reaches bytes not verified yet.
func holdStream(ctx context.Context, h audio.Holder, st *stream, at, end time.Duration) error {
	total := time.Duration(st.m.DurationMS) * time.Millisecond
	for at < end {
		st.mu.Lock()
		verified, changed, err := st.verified, st.changed, st.err
		st.mu.Unlock()
		if err != nil {
			return err
		}
		if ready := min(end, time.Duration(float64(total)*float64(verified)/float64(st.m.Size))); ready > at {
			if err := h.Hold(ctx, ready-at); err != nil {
				return err
			}
			at = ready
			continue
		}
		if err := st.waitChange(ctx, changed); err != nil {
			return err
		}
	}
	return nil
}

// paused takes the time tk's audio from st has paused for its media, and
// when there was any, logs it and tells the hook.
func (p *player) paused(tk *task, st *stream) time.Duration {
	if st == nil {
		return 0
	}
	d := st.takePaused()
	if d > 0 {
		tk.paused += d
		p.log.Warn("the alert's audio paused, waiting for its media", "task", tk.id, "paused", d.Round(time.Millisecond))
		if p.t.hooks.Paused != nil {
			p.t.hooks.Paused(tk.id, d)
		}
	}
	return d
}

// openMedia opens the media file at tk's position: an alert's through its
// stream (verified bytes only, waiting for the rest), a program's from the
// cache.
func (p *player) openMedia(ctx context.Context, tk *task) (io.ReadSeekCloser, error) {
	if tk.streams != nil {
		return newStreamReader(ctx, tk.streams[tk.pos.media], p.t.cache), nil
	}
	return p.t.cache.Open(cacheKey(tk.media[tk.pos.media]))
}

// streamOf returns the stream of the media file at tk's position, nil for
// a program's.
func (p *player) streamOf(tk *task) *stream {
	if tk.streams == nil {
		return nil
	}
	return tk.streams[tk.pos.media]
}

// streamFailed returns the error that ended the stream of the media file
// at tk's position, if any.
func (p *player) streamFailed(tk *task) error {
	if st := p.streamOf(tk); st != nil {
		return st.failed()
	}
	return nil
}

// pcmFrame is the size of one frame of the sink's PCM (s16le stereo).
const pcmFrame = 4

// sounding marks tk as making sound, just before its audio output starts,
// and queues its log line and reports: the switch
// (start, or resume after a preemption) and, for an alert's first sound,
// the "playing" receipt.
func (p *player) sounding(tk *task, pr *playRun) {
	local := p.t.clock.Now()
	p.mu.Lock()
	now := p.t.now()
	action := "start"
	if tk.sounded {
		action = "resume"
	} else {
		tk.sounded, tk.started = true, now
	}
	announce := tk.alert != nil && !tk.announced
	tk.announced = true
	p.mu.Unlock()
	// The local clock in microseconds lets a test compare the instants
	// at which terminals on one machine started their audio output.
	p.out.add(func() {
		p.log.Info("audio output starting", "task", tk.id, "late", now.Sub(pr.target), "local_us", local.UnixMicro(), "clock_offset", p.t.offset.get())
		p.t.switchReport(action, pr.prev, tk.id, now)
	})
	if announce {
		p.out.add(func() { p.t.receipt(tk.cmdID, tk.id, protocol.DeliveryPlaying, "", "") })
		if p.t.hooks.Playing != nil {
			p.t.hooks.Playing(tk.id)
		}
	}
}

// countingReader counts the bytes read through it; the sink may read from
// another goroutine.
type countingReader struct {
	r io.Reader
	n atomic.Int64
}

func (c *countingReader) Read(b []byte) (int, error) {
	n, err := c.r.Read(b)
	c.n.Add(int64(n))
	return n, err
}
