package terminal

import (
	"time"

	"dalaba/protocol"
)

// heartbeatLoop sends three quick pings after the welcome, then a heartbeat
// and a ping every heartbeat interval.
func (t *Terminal) heartbeatLoop(s *session) {
	for range 3 {
		t.sendPing(s)
		if !t.sleep(s.done, 100*time.Millisecond) {
			return
		}
	}
	t.sendHeartbeat(s)
	for {
		st, changed := t.currentSettings()
		select {
		case <-t.clock.After(st.heartbeat()):
			t.amp.probe()
			t.sendHeartbeat(s)
			t.sendPing(s)
		case <-changed:
			t.sendHeartbeat(s)
		case <-s.done:
			return
		}
	}
}

func (t *Terminal) sendPing(s *session) {
	if b, err := protocol.Encode(protocol.TypePing, protocol.Ping{TerminalTime: t.localNow()}); err == nil {
		s.send(b)
	}
}

func (t *Terminal) sendHeartbeat(s *session) {
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
	if b, err := protocol.Encode(protocol.TypeHeartbeat, hb); err == nil {
		s.send(b)
	}
}
