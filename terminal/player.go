package terminal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// Why an item's context ended, besides the terminal stopping.
var (
	errCancelled = errors.New("cancelled by a cancel command")
	errExpired   = errors.New("validity ended before it could play")
)

// item is one verified alert waiting to play or playing.
type item struct {
	cmdID   string
	alert   *protocol.Alert
	expires time.Time // controller time
}

// outcome is how an item ended: a final delivery state and its reason.
type outcome struct {
	state, reason, detail string
}

// player plays alerts one at a time from a FIFO queue. (Priorities and
// preemption will replace next(); the rest stays.)
type player struct {
	t    *Terminal
	log  *slog.Logger
	wake chan struct{}

	mu        sync.Mutex
	queue     []*item
	cur       *item
	stop      context.CancelCauseFunc // ends cur
	amplified bool                    // cur has the amplifier on
	cancelled map[string]time.Time    // EBM ids cancelled before their alert came, until when
}

func newPlayer(t *Terminal) *player {
	return &player{t: t, log: t.log.With("subsystem", "player"), wake: make(chan struct{}, 1), cancelled: map[string]time.Time{}}
}

// enqueue adds a verified alert.
func (p *player) enqueue(it *item) {
	p.mu.Lock()
	if _, ok := p.cancelled[it.alert.EBMID]; ok {
		p.mu.Unlock()
		p.t.receipt(it.cmdID, it.alert.EBMID, protocol.DeliveryCancelled, "", "cancelled before it arrived")
		return
	}
	p.queue = append(p.queue, it)
	p.mu.Unlock()
	select {
	case p.wake <- struct{}{}:
	default:
	}
}

// cancel stops the alert with this EBM id if it plays, drops it if queued,
// and remembers the id until the cancel command expires. It reports whether
// the alert was found.
func (p *player) cancel(ebmID string, until time.Time) bool {
	p.mu.Lock()
	found := false
	if p.cur != nil && p.cur.alert.EBMID == ebmID {
		p.stop(errCancelled)
		found = true
	}
	var dropped []*item
	kept := p.queue[:0]
	for _, it := range p.queue {
		if it.alert.EBMID == ebmID {
			dropped = append(dropped, it)
		} else {
			kept = append(kept, it)
		}
	}
	p.queue = kept
	p.cancelled[ebmID] = until
	p.mu.Unlock()
	for _, it := range dropped {
		p.t.receipt(it.cmdID, ebmID, protocol.DeliveryCancelled, "", "cancelled while queued")
	}
	return found || len(dropped) > 0
}

func (p *player) pruneCancelled(now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for id, until := range p.cancelled {
		if now.After(until) {
			delete(p.cancelled, id)
		}
	}
}

// snapshot returns the EBM id the amplifier is on for, and the queue length.
func (p *player) snapshot() (playing string, queued int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.cur != nil && p.amplified {
		playing = p.cur.alert.EBMID
	}
	return playing, len(p.queue)
}

// next takes the next item and makes it current, waiting until there is one.
func (p *player) next(ctx context.Context) (*item, context.Context) {
	for {
		p.mu.Lock()
		if len(p.queue) > 0 {
			it := p.queue[0]
			p.queue = p.queue[1:]
			ictx, stop := context.WithCancelCause(ctx)
			p.cur, p.stop = it, stop
			p.mu.Unlock()
			return it, ictx
		}
		p.mu.Unlock()
		select {
		case <-p.wake:
		case <-ctx.Done():
			return nil, nil
		}
	}
}

func (p *player) run(ctx context.Context) {
	for {
		it, ictx := p.next(ctx)
		if it == nil {
			break
		}
		o := p.perform(ictx, it)
		switch cause := context.Cause(ictx); {
		case errors.Is(cause, errCancelled):
			o = outcome{protocol.DeliveryCancelled, "", "stopped by a cancel command"}
		case ctx.Err() != nil:
			o = outcome{protocol.DeliveryFailed, "interrupted", "the terminal shut down"}
		}
		p.mu.Lock()
		p.stop(nil)
		p.cur, p.stop, p.amplified = nil, nil, false
		p.mu.Unlock()
		p.t.receipt(it.cmdID, it.alert.EBMID, o.state, o.reason, o.detail)
	}
	p.mu.Lock()
	left := p.queue
	p.queue = nil
	p.mu.Unlock()
	for _, it := range left {
		p.t.receipt(it.cmdID, it.alert.EBMID, protocol.DeliveryFailed, "interrupted", "the terminal shut down")
	}
}

// perform fetches, waits for play_at and plays one alert. It returns the
// final state; on cancel or shutdown run overrides it.
func (p *player) perform(ctx context.Context, it *item) outcome {
	t := p.t
	a := it.alert
	if !t.now().Before(it.expires) {
		return outcome{protocol.DeliveryExpired, "", "expired before it could play"}
	}
	for _, m := range a.Media {
		t.cache.Pin(m.SHA256)
		defer t.cache.Unpin(m.SHA256)
	}
	// Everything before the amplifier goes on must finish within the
	// command's validity.
	vctx, cancel := context.WithTimeoutCause(ctx, it.expires.Sub(t.now()), errExpired)
	defer cancel()
	if err := p.fetch(vctx, it); err != nil {
		return p.failure(vctx, "media", err)
	}
	if err := p.waitPlayAt(vctx, a.PlayAt); err != nil {
		return p.failure(vctx, "", err)
	}
	sink, err := t.speaker.get()
	if err != nil {
		return outcome{protocol.DeliveryFailed, "audio", err.Error()}
	}
	return p.amplify(ctx, it, sink)
}

// failure turns an error before playback into an outcome.
func (p *player) failure(ctx context.Context, reason string, err error) outcome {
	if errors.Is(context.Cause(ctx), errExpired) {
		return outcome{protocol.DeliveryExpired, "", "validity ended before it could play"}
	}
	var me *mediaError
	if errors.As(err, &me) {
		p.t.faults.raise(protocol.FaultMedia, me.Error())
		return outcome{protocol.DeliveryFailed, "media", me.Error()}
	}
	if reason == "" {
		reason = "internal"
	}
	return outcome{protocol.DeliveryFailed, reason, err.Error()}
}

// fetch brings every media file of the alert into the cache.
func (p *player) fetch(ctx context.Context, it *item) error {
	t := p.t
	announced := false
	for _, m := range it.alert.Media {
		if _, ok := t.cache.Path(m.SHA256); ok {
			continue
		}
		if !announced {
			t.receipt(it.cmdID, it.alert.EBMID, protocol.DeliveryFetching, "", "")
			announced = true
		}
		if err := t.fetchMedia(ctx, m); err != nil {
			return err
		}
	}
	return nil
}

// waitPlayAt waits until the controller clock reaches at. It re-reads the
// clock estimate at least every second, as pings refine it.
func (p *player) waitPlayAt(ctx context.Context, at time.Time) error {
	for {
		d := at.Sub(p.t.now())
		if at.IsZero() || d <= 0 {
			return nil
		}
		if !p.t.sleep(ctx.Done(), min(d, time.Second)) {
			return context.Cause(ctx)
		}
	}
}

// amplify runs the amplifier sequence: relay ON, warm-up, the media list
// Repeat times, tail, relay OFF. OFF always happens, whatever ends it.
func (p *player) amplify(ctx context.Context, it *item, sink audio.Sink) (o outcome) {
	t, a := p.t, it.alert
	p.mu.Lock()
	p.amplified = true
	p.mu.Unlock()
	defer func() {
		if err := t.amp.switchOff(); err != nil && o.state == protocol.DeliveryDone {
			o = outcome{protocol.DeliveryFailed, "relay", "played, but the relay did not switch OFF: " + err.Error()}
		}
	}()
	if err := t.amp.switchOn(); err != nil {
		return outcome{protocol.DeliveryFailed, "relay", err.Error()}
	}
	if !t.sleep(ctx.Done(), ms(t.cfg.WarmupMS)) {
		return outcome{protocol.DeliveryFailed, "interrupted", "stopped during warm-up"}
	}
	volume := a.Volume
	if volume == 0 {
		st, _ := t.currentSettings()
		volume = st.Volume
	}
	t.receipt(it.cmdID, a.EBMID, protocol.DeliveryPlaying, "", "")
	for r := 0; r < a.Repeat; r++ {
		for i, m := range a.Media {
			if o, ok := p.playOne(ctx, sink, m, volume); !ok {
				o.detail = fmt.Sprintf("media %d, repeat %d: %s", i, r+1, o.detail)
				return o
			}
		}
	}
	if !t.sleep(ctx.Done(), ms(t.cfg.TailMS)) {
		return outcome{protocol.DeliveryFailed, "interrupted", "stopped during the tail"}
	}
	return outcome{protocol.DeliveryDone, "", ""}
}

// playOne decodes one cached file and plays it to the end.
func (p *player) playOne(ctx context.Context, sink audio.Sink, m protocol.Media, volume int) (outcome, bool) {
	f, err := p.t.cache.Open(m.SHA256)
	if err != nil {
		return outcome{protocol.DeliveryFailed, "media", err.Error()}, false
	}
	defer f.Close()
	pcm, err := audio.Decode(f, m.Format, sink.Rate(), volume)
	if err != nil {
		p.t.faults.raise(protocol.FaultMedia, err.Error())
		return outcome{protocol.DeliveryFailed, "media", err.Error()}, false
	}
	if err := sink.Play(ctx, pcm); err != nil {
		if ctx.Err() != nil {
			return outcome{protocol.DeliveryFailed, "interrupted", err.Error()}, false
		}
		p.t.speaker.failed(fmt.Errorf("audio output failed: %w", err))
		return outcome{protocol.DeliveryFailed, "audio", err.Error()}, false
	}
	return outcome{}, true
}
