package terminal

import (
	"context"
	"errors"
	"fmt"
	"time"

	"dalaba/protocol"
)

// Source kinds: what a task plays. The kind decides what happens to a task
// that a higher priority cuts (resumeAfterPreempt).
const (
	sourceProgram   = "program"   // a schedule item
	sourceDaily     = "daily"     // a daily notice (alert of class daily)
	sourceLive      = "live"      // live speech (a daily alert ranked in the live band)
	sourceEmergency = "emergency" // an emergency alert
)

// resumeAfterPreempt is the busy policy, per source kind: true puts a cut
// task back in the queue, to continue from where it stopped once nothing
// higher plays; false drops it, reported as preempted. Live speech is not
// resumed: what was said while it was cut is gone, and replaying it late
// would mislead. An emergency cut by a higher emergency is resumed: every
// word of it matters.
var resumeAfterPreempt = map[string]bool{
	sourceProgram:   true,
	sourceDaily:     true,
	sourceEmergency: true,
	sourceLive:      false,
}

// Why a task's playback context ended, besides the player's own decisions.
var (
	errCancelled = errors.New("cancelled by a cancel command")
	errExpired   = errors.New("validity ended before it could play")
	errShutdown  = errors.New("the terminal shut down")
)

// preemptError is the cause of a playback cut by a higher priority task.
type preemptError struct{ by string }

func (e *preemptError) Error() string { return "preempted by " + e.by }

// position is where playback of a task stands: the pass (of Repeat), the
// media file in the list, and the bytes of output PCM already played of it.
type position struct {
	pass, media int
	offset      int64
}

// task is one thing the loudspeaker may play: a verified alert or one
// schedule item. Times are controller time (Terminal.now).
type task struct {
	id       string // EBM id or schedule item id
	source   string // source* kind
	priority int    // protocol.Priority* ladder
	seq      uint64 // arrival order: equal priorities play first come, first served
	media    []protocol.Media
	repeat   int
	volume   int       // 0: decided by source and settings (player.volume)
	at       time.Time // when to start; zero: at once
	deadline time.Time // not started by then: expired (alert) or outside validity (program)
	resumeBy time.Time // cut and not resumed by then: dropped as preempted

	cmdID     string          // alerts: the command, for receipts
	alert     *protocol.Alert // alerts
	version   int64           // programs: the schedule version it came from
	programID string          // programs
	added     time.Time       // programs: when the player got it

	fetched   bool               // alerts: every media file is in the cache
	streams   []*stream          // alerts: each media file as it is fetched, for playback to start early
	stopFetch context.CancelFunc // alerts: ends the fetch

	// Progress. The playback goroutine writes it while the task is the
	// player's current one; the loop reads it once that goroutine ended.
	pos       position
	sounded   bool          // has made sound at least once (set under player.mu)
	started   time.Time     // first sound
	ended     time.Time     // last sound
	played    time.Duration // sound made, over every stretch
	paused    time.Duration // sound stopped mid-file waiting for media, over every stretch
	cutBy     string        // the last task that preempted it
	announced bool          // the "playing" receipt was sent
}

// newAlertTask makes the task of a verified alert command.
func newAlertTask(cmd *protocol.Command) *task {
	a := cmd.Alert
	tk := &task{
		id: a.EBMID, priority: protocol.AlertPriority(a), media: a.Media, repeat: max(a.Repeat, 1), volume: a.Volume,
		at: a.PlayAt, deadline: cmd.Expires, resumeBy: cmd.Expires, cmdID: cmd.ID, alert: a,
	}
	switch {
	case a.Class == protocol.ClassEmergency:
		tk.source = sourceEmergency
	case tk.priority >= protocol.PriorityLive && tk.priority < protocol.PriorityEmergency4:
		tk.source = sourceLive
	default:
		tk.source = sourceDaily
	}
	return tk
}

// newProgramTask makes the task of one schedule item.
func newProgramTask(version int64, it *protocol.ScheduleItem) *task {
	tk := &task{source: sourceProgram, version: version}
	tk.define(it)
	return tk
}

// define (re)sets a program task from its schedule item.
func (tk *task) define(it *protocol.ScheduleItem) {
	tk.id, tk.programID = it.ID, it.ProgramID
	tk.priority = it.Priority
	if tk.priority == 0 {
		tk.priority = protocol.PriorityProgram
	}
	tk.media, tk.repeat, tk.volume = it.Media, max(it.Repeat, 1), it.Volume
	tk.at, tk.deadline = it.Start, it.Latest
	tk.resumeBy = it.Latest.Add(tk.duration())
}

// duration is how long the task takes to play whole.
func (tk *task) duration() time.Duration {
	return time.Duration(tk.repeat) * mediaDuration(tk.media)
}

// mediaDuration is how long a media list plays once.
func mediaDuration(media []protocol.Media) time.Duration {
	var n int64
	for _, m := range media {
		n += m.DurationMS
	}
	return time.Duration(n) * time.Millisecond
}

// Ends of a task, before they are worded as receipts or occurrences.
const (
	endPlayed    = "played"    // played to the end
	endCancelled = "cancelled" // stopped by a cancel command
	endExpired   = "expired"   // not started in time
	endPreempted = "preempted" // cut (or kept from starting) and dropped
	endReplaced  = "replaced"  // dropped by a newer schedule before it started
	endFailed    = "failed"    // reason: media, relay, audio or interrupted
)

// outcome is how a task ended for good.
type outcome struct {
	end    string // end*
	reason string // for endFailed
	detail string
	by     string // for endPreempted: the task that cut it
}

// receipt words an alert's outcome as a delivery state.
func (o outcome) receipt() (state, reason, detail string) {
	switch o.end {
	case endPlayed:
		return protocol.DeliveryDone, "", o.detail
	case endCancelled:
		return protocol.DeliveryCancelled, "", o.detail
	case endExpired:
		return protocol.DeliveryExpired, "", o.detail
	case endPreempted:
		return protocol.DeliveryFailed, "preempted", fmt.Sprintf("preempted by %s and not resumed", o.by)
	}
	return protocol.DeliveryFailed, o.reason, o.detail
}

// occurrence words a program's outcome. ok is false when nothing is to be
// reported: a program interrupted by a shutdown plays again after the
// restart, from the stored schedule, if it still can.
func (o outcome) occurrence() (state, reason string, ok bool) {
	switch o.end {
	case endPlayed:
		return protocol.OccurrencePlayed, "", true
	case endExpired:
		return protocol.OccurrenceSkipped, protocol.SkipOutsideValidity, true
	case endPreempted:
		return protocol.OccurrencePreempted, "", true
	case endReplaced:
		return protocol.OccurrenceSkipped, protocol.SkipReplaced, true
	case endFailed:
		switch o.reason {
		case "interrupted":
			return "", "", false
		case "media":
			return protocol.OccurrenceSkipped, protocol.SkipMediaMissing, true
		}
		// The relay or the audio output failed: the fault code says which.
		return protocol.OccurrenceSkipped, o.reason, true
	}
	return protocol.OccurrenceSkipped, o.end, true
}
