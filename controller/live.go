package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// Live speech limits.
const (
	// liveDefaultSeconds is a session's length when the operator names none.
	liveDefaultSeconds = 600
	// liveAhead is how far the audio sent may run ahead of the wall clock
	// (a client that sends faster than real time): beyond it, frames are
	// dropped rather than queued up for terminals.
	liveAhead = time.Second
	// liveQueue bounds one terminal's queue of live frames (1 s of 20 ms
	// frames). A full queue drops frames: late speech is no use.
	liveQueue = 50
)

// LiveRequest is what an operator asks for when going live (喊话). Zero
// values take defaults.
type LiveRequest struct {
	Class      string   `json:"class"` // daily (default) or emergency
	Level      int      `json:"level"` // 1..4 for an emergency; 0..4 for daily
	Title      string   `json:"title"` // default "喊话"
	Areas      []string `json:"areas"`
	Terminals  []string `json:"terminals"`
	Volume     int      `json:"volume"`      // 0: by class and the terminal's setting
	MaxSeconds int      `json:"max_seconds"` // default 600, at most protocol.LiveMaxSeconds
}

// liveSession is one live speech session: its frames are signed with the
// stream key that the signed live command gave the targets, and fanned out
// to each target's connection.
type liveSession struct {
	c       *Controller
	id      [32]byte
	key     []byte
	alert   store.Alert
	targets []string
	begun   time.Time // wall clock, for pacing and the time limit
	limit   time.Duration

	mu      sync.Mutex
	seq     uint64
	sent    time.Duration // audio sent
	frames  int
	dropped int // frames over liveAhead, or into full queues
	ended   bool
}

// defaults fills in a request's defaults.
func (r *LiveRequest) defaults() {
	if r.Class == "" {
		r.Class = protocol.ClassDaily
	}
	if strings.TrimSpace(r.Title) == "" {
		r.Title = "喊话"
	}
	if r.MaxSeconds == 0 {
		r.MaxSeconds = liveDefaultSeconds
	}
}

// alertRequest is the alert a live request is authorised as.
func (r LiveRequest) alertRequest() AlertRequest {
	return AlertRequest{Class: r.Class, MsgType: protocol.MsgActual, Level: r.Level, Title: r.Title,
		Areas: r.Areas, Terminals: r.Terminals, Volume: r.Volume}
}

// StartLive validates a live request, signs a live command for its targets,
// records it as an alert (so that receipts, history and cancel work as for
// any alert) and sends the command to every connected target. Permission
// and scope are the caller's to check, as for CreateAlert.
func (c *Controller) StartLive(ctx context.Context, by string, req LiveRequest) (*liveSession, error) {
	req.defaults()
	areq := req.alertRequest()
	areq.EventType, areq.Repeat = "00000", 1
	if err := checkAlertFields(areq); err != nil {
		return nil, err
	}
	if req.MaxSeconds < 1 || req.MaxSeconds > protocol.LiveMaxSeconds {
		return nil, invalid("max_seconds", "%d must be 1..%d", req.MaxSeconds, protocol.LiveMaxSeconds)
	}
	tg, err := checkTargets(req.Areas, req.Terminals)
	if err != nil {
		return nil, err
	}
	policy, err := c.Policy(ctx)
	if err != nil {
		return nil, err
	}
	if policy.NeedsApproval(req.Class, req.Level) {
		return nil, invalid("class", "the county requires a second person to approve %s level %d alerts, and live speech cannot wait for approval: speak as a daily notice, or record the alert and send it for approval", req.Class, req.Level)
	}
	targets, err := c.store.ActiveTargets(ctx, tg)
	if err != nil {
		return nil, err
	}
	if len(targets) == 0 {
		return nil, invalid("areas", "no enrolled terminal in the chosen areas or terminals")
	}
	now := c.now()
	seq, err := c.store.NextEBMSequence(ctx, now.In(protocol.Beijing).Format("20060102"))
	if err != nil {
		return nil, err
	}
	ebmID, err := protocol.NewEBMID(c.cfg.PlatformEBRID, now, seq)
	if err != nil {
		return nil, err
	}
	ls := &liveSession{c: c, key: make([]byte, 32), targets: targets, begun: time.Now(), limit: time.Duration(req.MaxSeconds) * time.Second}
	rand.Read(ls.id[:])
	rand.Read(ls.key)
	cmd := &protocol.Command{ID: newCommandID(), Kind: protocol.KindLive, IssuedAt: now, NotBefore: now.Add(-time.Minute),
		Expires: now.Add(ls.limit + time.Minute), Targets: tg,
		Live: &protocol.Live{SessionID: hex.EncodeToString(ls.id[:]), StreamKey: hex.EncodeToString(ls.key), Format: protocol.LiveFormat,
			MaxSeconds: req.MaxSeconds, EBMID: ebmID, Class: req.Class, Level: req.Level, Title: req.Title, Volume: req.Volume}}
	if err := cmd.Validate(); err != nil {
		return nil, invalid("live", "%v", err)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return nil, err
	}
	ls.alert = store.Alert{ID: ebmID, CommandID: cmd.ID, Class: req.Class, MsgType: protocol.MsgActual, Level: req.Level,
		EventType: "00000", Title: req.Title, Targets: tg, CreatedAt: now, CreatedBy: by, NotBefore: cmd.NotBefore,
		Expires: cmd.Expires, Status: store.AlertActive, Signed: c.signPayload(payload), Draft: payload}
	if err := c.store.CreateAlert(ctx, ls.alert, targets, now); err != nil {
		return nil, err
	}
	c.dispatch(ctx, ls.alert, targets)
	return ls, nil
}

// online counts the targets connected now.
func (ls *liveSession) online() int {
	n := 0
	for _, id := range ls.targets {
		if ls.c.hub.get(id) != nil {
			n++
		}
	}
	return n
}

// Send signs one frame of PCM (s16le mono 16 kHz, whole samples, at most
// protocol.LiveMaxPCM bytes) and queues it for every connected target.
func (ls *liveSession) Send(pcm []byte) error {
	if len(pcm) == 0 || len(pcm)%2 != 0 || len(pcm) > protocol.LiveMaxPCM {
		return invalid("audio", "a frame of %d bytes: send s16le mono 16 kHz PCM in frames of 2..%d bytes (20 ms is %d)",
			len(pcm), protocol.LiveMaxPCM, protocol.LiveFrameBytes)
	}
	ls.mu.Lock()
	if ls.ended {
		ls.mu.Unlock()
		return nil
	}
	ls.sent += time.Duration(len(pcm)/2) * time.Second / protocol.LiveRate
	if ls.sent-time.Since(ls.begun) > liveAhead {
		ls.dropped++
		ls.sent -= time.Duration(len(pcm)/2) * time.Second / protocol.LiveRate
		ls.mu.Unlock()
		return nil
	}
	ls.seq++
	ls.frames++
	msg := protocol.EncodeLiveFrame(ls.id, ls.key, ls.seq, pcm)
	ls.mu.Unlock()
	ls.fanOut(msg)
	return nil
}

func (ls *liveSession) fanOut(msg []byte) {
	lost := 0
	for _, id := range ls.targets {
		if s := ls.c.hub.get(id); s != nil && !s.sendLive(msg) {
			lost++
		}
	}
	if lost > 0 {
		ls.mu.Lock()
		ls.dropped += lost
		ls.mu.Unlock()
	}
}

// End sends the end frame once and returns the session's totals.
func (ls *liveSession) End() (frames, dropped int, d time.Duration) {
	ls.mu.Lock()
	first := !ls.ended
	ls.ended = true
	frames, dropped = ls.frames, ls.dropped
	ls.mu.Unlock()
	if first {
		ls.fanOut(protocol.EncodeLiveFrame(ls.id, ls.key, protocol.LiveEndSeq, nil))
		ls.expireUnreached(context.Background())
	}
	return frames, dropped, time.Since(ls.begun).Round(time.Millisecond)
}

// expireUnreached ends the session's alert (已结束) and the deliveries of
// the targets that never got the live command, so that one connecting
// later is not sent a session that is over (it would switch its amplifier
// on for nothing). A session cancelled meanwhile stays cancelled.
func (ls *liveSession) expireUnreached(ctx context.Context) {
	changed, err := ls.c.store.EndAlert(ctx, ls.alert.ID, "live speech ended", "live speech ended before the terminal connected", ls.c.now())
	if err != nil {
		if !errors.Is(err, store.ErrNotActive) {
			ls.c.log.Error("end live session", "alert", ls.alert.ID, "err", err)
		}
		return
	}
	for _, d := range changed {
		ls.c.publishDelivery(d)
	}
	if a, err := ls.c.store.Alert(ctx, ls.alert.ID); err == nil {
		ls.c.events.Publish(events.Event{Kind: events.KindAlert, At: ls.c.now(), AlertID: a.ID, Data: a})
	}
}

// sendLive queues a live frame for the terminal without blocking; a full
// queue drops it (the terminal's jitter buffer plays silence for it).
func (s *session) sendLive(msg []byte) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || len(s.live) >= liveQueue {
		return false
	}
	s.live = append(s.live, msg)
	s.startWriter()
	return true
}

// describe words the session for the audit log.
func (ls *liveSession) describe() string {
	return fmt.Sprintf("%s level %d %q to %v (%d terminals)", ls.alert.Class, ls.alert.Level, ls.alert.Title, ls.alert.Targets, len(ls.targets))
}
