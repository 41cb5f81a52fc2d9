package terminal

import (
	"time"

	"dalaba/protocol"
)

// Pings after a welcome: a quick burst, so the first estimate of the
// controller's clock is good, then one every pingEvery during pingSettle.
const (
	pingBurst   = 5
	pingGap     = 50 * time.Millisecond
	pingSettle  = time.Minute
	stateSettle = 150 * time.Millisecond // after a state change, before its heartbeat
)

// heartbeatLoop sends a burst of pings after the welcome, then a heartbeat
// that is also a ping every heartbeat interval, with more pings during the
// first minute while the clock estimate settles.
func (t *Terminal) heartbeatLoop(s *session) {
	for range pingBurst {
		t.sendPing(s)
		if !t.sleep(s.done, pingGap) {
			return
		}
	}
	t.sendHeartbeat(s, false)
	select { // that heartbeat already told what changed before it
	case <-t.beatSoon:
	default:
	}
	begin := t.clock.Now()
	st, changed := t.currentSettings()
	nextBeat, nextPing := begin.Add(st.heartbeat()), begin.Add(t.pingEvery)
	for {
		now := t.clock.Now()
		settling := t.pingEvery > 0 && now.Sub(begin) < pingSettle
		wait := nextBeat.Sub(now)
		if settling {
			wait = min(wait, nextPing.Sub(now))
		}
		select {
		case <-t.clock.After(max(wait, 0)):
			now = t.clock.Now()
			if !now.Before(nextBeat) {
				t.amp.probe()
				t.checkDisk(false)
				t.speaker.probe()
				t.sendHeartbeat(s, true)
				nextBeat = now.Add(st.heartbeat())
			} else if settling && !now.Before(nextPing) {
				t.sendPing(s)
				nextPing = now.Add(t.pingEvery)
			}
		case <-changed:
			t.sendHeartbeat(s, false)
			st, changed = t.currentSettings()
			nextBeat = t.clock.Now().Add(st.heartbeat())
		case <-t.beatSoon:
			// A task started or ended, or the relay switched: tell the
			// controller now, once the player has settled, rather than at
			// the next beat.
			if !t.sleep(s.done, stateSettle) {
				return
			}
			t.sendHeartbeat(s, false)
		case <-s.done:
			return
		}
	}
}

func (t *Terminal) sendPing(s *session) {
	if b, err := protocol.Encode(protocol.TypePing, protocol.Ping{TerminalTime: t.offset.pinged(t.localNow())}); err == nil {
		s.send(b)
	}
}

// sendHeartbeat sends the terminal's status; with ping, the heartbeat is a
// ping too (one frame instead of two every beat).
func (t *Terminal) sendHeartbeat(s *session, ping bool) {
	st := t.Status()
	hb := protocol.Heartbeat{
		State:      st.State,
		Volume:     st.Volume,
		RelayOK:    st.Faults[protocol.FaultRelay] == "",
		RelayOn:    st.RelayOn,
		AudioOK:    t.speaker.ok(),
		Playing:    st.Playing,
		Firmware:   Firmware,
		UptimeSecs: int64(t.clock.Now().Sub(t.started) / time.Second),
		CacheBytes: t.cache.Size(),
		Pending:    st.PendingReports,
	}
	if ping {
		sent := t.offset.pinged(t.localNow())
		hb.TerminalTime = &sent
	}
	if b, err := protocol.Encode(protocol.TypeHeartbeat, hb); err == nil {
		s.send(b)
	}
}

// stateChanged asks for a heartbeat soon after a change of what the
// loudspeaker does, so the county sees it within a second, not a beat.
func (t *Terminal) stateChanged() {
	select {
	case t.beatSoon <- struct{}{}:
	default:
	}
}
