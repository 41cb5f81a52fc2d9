package terminal

import (
	"dalaba/protocol"
)

// finish ends tk for good and queues its reports. An alert that had the
// amplifier on is held until the relay is OFF or handed to the next task.
// Callers hold p.mu.
func (p *player) finish(tk *task, o outcome) {
	if tk.stopFetch != nil {
		tk.stopFetch()
	}
	now := p.t.now()
	if tk.sounded {
		p.out.add(func() { p.t.switchReport("end", tk.id, "", now) })
	}
	if tk.alert == nil {
		state, reason, ok := o.occurrence()
		if !ok { // interrupted by shutdown: resumed after a restart
			if tk.sounded {
				p.t.table.hold(tk)
			}
			return
		}
		occ := protocol.Occurrence{
			ScheduleVersion: tk.version, ItemID: tk.id, ProgramID: tk.programID, State: state, Reason: reason,
			Started: tk.started.UTC(), Ended: tk.ended.UTC(), PlayedMS: tk.played.Milliseconds(),
		}
		if state == protocol.OccurrencePreempted {
			occ.PreemptedBy = o.by
		}
		p.out.add(func() { p.t.occurrenceReport(occ); p.t.table.record(occ.ItemID, occ.State) })
		return
	}
	for _, m := range tk.media {
		p.t.cache.Unpin(cacheKey(m))
	}
	if p.powered && tk.sounded {
		p.held = append(p.held, held{tk, o})
		return
	}
	p.sendReceipt(tk, o)
}

func (p *player) sendReceipt(tk *task, o outcome) {
	state, reason, detail := o.receipt()
	p.out.add(func() { p.t.receipt(tk.cmdID, tk.id, state, reason, detail) })
}

// flushHeld reports the held outcomes; offErr is the relay's failure to
// switch OFF, which turns "played" into a relay failure. Callers hold p.mu.
func (p *player) flushHeld(offErr error) {
	for _, h := range p.held {
		if offErr != nil && h.o.end == endPlayed {
			h.o = outcome{end: endFailed, reason: "relay", detail: "played, but the relay did not switch OFF: " + offErr.Error()}
		}
		p.sendReceipt(h.tk, h.o)
	}
	p.held = nil
}

// switchOff ends an amplifier run: relay OFF, then the held outcomes.
func (p *player) switchOff() {
	err := p.t.amp.switchOff()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.powered, p.last = false, ""
	p.flushHeld(err)
}

// shutdown stops playback, reports what will not play, switches the relay
// OFF and waits for the reports to be spooled.
func (p *player) shutdown() {
	p.mu.Lock()
	p.closed = true
	if p.cur != nil {
		p.curStop(errShutdown)
		done := p.curDone
		p.mu.Unlock()
		<-done
		p.mu.Lock()
		tk := p.cur
		p.cur = nil
		p.finish(tk, outcome{end: endFailed, reason: "interrupted", detail: "the terminal shut down"})
	}
	for _, tk := range p.tasks {
		p.finish(tk, outcome{end: endFailed, reason: "interrupted", detail: "the terminal shut down"})
	}
	p.tasks = nil
	powered := p.powered
	p.mu.Unlock()
	if powered {
		p.switchOff()
	}
	p.out.close()
}
