package terminal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"dalaba/protocol"
)

// scheduleFile keeps the current verified schedule, so that a terminal that
// restarts while it cannot reach the controller still plays it.
const scheduleFile = "schedule.json"

// storedSchedule is schedule.json: the schedule of a verified command and
// which of its items were already reported (and so never play again).
type storedSchedule struct {
	CommandID string                    `json:"command_id"`
	Schedule  protocol.Schedule         `json:"schedule"`
	Reported  map[string]string         `json:"reported,omitempty"`  // item id → occurrence state
	Positions map[string]storedPosition `json:"positions,omitempty"` // item id → where the terminal stopped it
}

// storedPosition is where playback of an item stood when the terminal
// stopped while it played (or waited to resume after a preemption): after
// a restart it resumes from there, until its latest start plus its length.
type storedPosition struct {
	Pass     int       `json:"pass"`
	Media    int       `json:"media"`
	Offset   int64     `json:"offset"` // bytes of output PCM played of that media file
	PlayedMS int64     `json:"played_ms"`
	Started  time.Time `json:"started"`
	Ended    time.Time `json:"ended"`
}

// timetable keeps the terminal's schedule: it stores each newer verified
// schedule crash-safely, hands its items to the player, and prefetches and
// pins their media. Nothing reaches it before the command verified.
type timetable struct {
	t   *Terminal
	log *slog.Logger

	mu           sync.Mutex
	ctx          context.Context
	cur          *storedSchedule // nil: none
	stopPrefetch context.CancelFunc
}

func newTimetable(t *Terminal) *timetable {
	return &timetable{t: t, log: t.log.With("subsystem", "schedule")}
}

// load reads schedule.json, if any. A file that does not hold a valid
// schedule is reported and ignored: the controller sends it again.
func (tt *timetable) load(dir string) {
	var s storedSchedule
	err := readJSON(filepath.Join(dir, scheduleFile), &s)
	if errors.Is(err, os.ErrNotExist) {
		return
	}
	if err == nil {
		err = s.Schedule.Validate()
	}
	if err != nil {
		tt.log.Error("stored schedule unusable; waiting for the controller to send it again", "err", err)
		return
	}
	s.Schedule.Resolve()
	if s.Reported == nil {
		s.Reported = map[string]string{}
	}
	if s.Positions == nil {
		s.Positions = map[string]storedPosition{}
	}
	tt.cur = &s
}

// start hands the stored schedule to the player and prefetches its media.
func (tt *timetable) start(ctx context.Context) {
	tt.mu.Lock()
	tt.ctx = ctx
	cur := tt.cur
	var reported map[string]string
	var positions map[string]storedPosition
	if cur != nil {
		reported, positions = maps.Clone(cur.Reported), maps.Clone(cur.Positions)
	}
	tt.mu.Unlock()
	if cur == nil {
		return
	}
	tt.log.Info("schedule loaded", "version", cur.Schedule.Version, "items", len(cur.Schedule.Items), "reported", len(reported), "interrupted", len(positions))
	tt.pin(&cur.Schedule, true)
	tt.t.player.setPrefetching(1) // before the items, so none is judged without its media
	tt.t.player.setPrograms(cur.Schedule.Version, cur.Schedule.Items, reported, positions)
	tt.prefetch("", &cur.Schedule, reported)
}

// apply carries out a verified schedule command: a newer version replaces
// the stored one, an older or equal one is refused.
func (tt *timetable) apply(cmd *protocol.Command) {
	t := tt.t
	s := cmd.Schedule
	s.Resolve()
	t.receipt(cmd.ID, "", protocol.DeliveryAccepted, "", "")
	tt.mu.Lock()
	old := tt.cur
	if old != nil && s.Version <= old.Schedule.Version {
		tt.mu.Unlock()
		t.receipt(cmd.ID, "", protocol.DeliveryFailed, "stale", fmt.Sprintf("schedule version %d is not newer than the stored version %d", s.Version, old.Schedule.Version))
		return
	}
	next := &storedSchedule{CommandID: cmd.ID, Schedule: *s, Reported: map[string]string{}, Positions: map[string]storedPosition{}}
	if old != nil {
		for _, it := range s.Items {
			if state, ok := old.Reported[it.ID]; ok {
				next.Reported[it.ID] = state
			}
			if pos, ok := old.Positions[it.ID]; ok {
				next.Positions[it.ID] = pos
			}
		}
	}
	if err := writeJSONAtomic(filepath.Join(t.cfg.DataDir, scheduleFile), next, 0o600); err != nil {
		tt.mu.Unlock()
		t.faults.raise(protocol.FaultDisk, err.Error())
		t.receipt(cmd.ID, "", protocol.DeliveryFailed, "disk", "schedule not saved, keeping the old one: "+err.Error())
		return
	}
	t.faults.clear(protocol.FaultDisk, "schedule saved")
	tt.cur = next
	reported := maps.Clone(next.Reported)
	tt.mu.Unlock()
	tt.log.Info("schedule replaced", "version", s.Version, "items", len(s.Items))
	tt.pin(s, true)
	if old != nil {
		tt.pin(&old.Schedule, false)
	}
	t.player.setPrefetching(1)
	t.player.setPrograms(s.Version, s.Items, reported, nil)
	tt.prefetch(cmd.ID, s, reported)
}

// pin protects (or releases) every media file of s in the cache.
func (tt *timetable) pin(s *protocol.Schedule, on bool) {
	for _, it := range s.Items {
		for _, m := range it.Media {
			if on {
				tt.t.cache.Pin(cacheKey(m))
			} else {
				tt.t.cache.Unpin(cacheKey(m))
			}
		}
	}
}

// record notes that an item's outcome was reported, so that it does not
// play again after a restart.
func (tt *timetable) record(itemID, state string) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	cur := tt.cur
	if cur == nil || !slices.ContainsFunc(cur.Schedule.Items, func(it protocol.ScheduleItem) bool { return it.ID == itemID }) {
		return // from an older schedule: it cannot play again anyway
	}
	cur.Reported[itemID] = state
	delete(cur.Positions, itemID)
	tt.save()
}

// hold keeps where a program item stopped when the terminal shut down
// while it played or waited to resume, so that it resumes after a restart.
func (tt *timetable) hold(tk *task) {
	tt.mu.Lock()
	defer tt.mu.Unlock()
	cur := tt.cur
	if cur == nil || !slices.ContainsFunc(cur.Schedule.Items, func(it protocol.ScheduleItem) bool { return it.ID == tk.id }) {
		return
	}
	cur.Positions[tk.id] = storedPosition{Pass: tk.pos.pass, Media: tk.pos.media, Offset: tk.pos.offset,
		PlayedMS: tk.played.Milliseconds(), Started: tk.started, Ended: tk.ended}
	tt.save()
}

// save writes the current schedule file. Callers hold tt.mu.
func (tt *timetable) save() {
	if err := writeJSONAtomic(filepath.Join(tt.t.cfg.DataDir, scheduleFile), tt.cur, 0o600); err != nil {
		tt.t.faults.raise(protocol.FaultDisk, err.Error())
	}
}

// prefetch fetches every media file of the unreported items that may still
// play, soonest first, while connected, replacing any prefetch in progress.
// For a command it then reports done, or failed with reason media. The
// caller has counted it in with player.setPrefetching(1); it counts itself
// out when it ends.
func (tt *timetable) prefetch(cmdID string, s *protocol.Schedule, reported map[string]string) {
	t := tt.t
	items := slices.Clone(s.Items)
	now := t.now()
	items = slices.DeleteFunc(items, func(it protocol.ScheduleItem) bool {
		_, ok := reported[it.ID]
		return ok || now.After(it.Latest.Add(time.Duration(it.Repeat)*mediaDuration(it.Media)))
	})
	slices.SortStableFunc(items, func(a, b protocol.ScheduleItem) int { return a.Start.Compare(b.Start) })
	tt.mu.Lock()
	if tt.stopPrefetch != nil {
		tt.stopPrefetch()
	}
	parent := tt.ctx
	if parent == nil {
		parent = context.Background()
	}
	ctx, stop := context.WithCancel(parent)
	tt.stopPrefetch = stop
	tt.mu.Unlock()
	t.bg.Add(1)
	go func() {
		defer t.bg.Done()
		defer t.player.setPrefetching(-1)
		var failed []error
		seen := map[string]bool{}
		for _, it := range items {
			for _, m := range it.Media {
				key := cacheKey(m)
				if seen[key] {
					continue
				}
				seen[key] = true
				err := t.fetchMedia(ctx, m)
				if ctx.Err() != nil {
					return // replaced by a newer schedule, or shutting down
				}
				var me *mediaError
				if errors.As(err, &me) {
					t.faults.raise(protocol.FaultMedia, me.Error())
				}
				if err != nil {
					failed = append(failed, err)
				}
			}
		}
		t.player.kick()
		if cmdID == "" {
			return
		}
		if len(failed) > 0 {
			t.receipt(cmdID, "", protocol.DeliveryFailed, "media", fmt.Sprintf("%d of %d media files could not be fetched: %v", len(failed), len(seen), failed[0]))
			return
		}
		t.receipt(cmdID, "", protocol.DeliveryDone, "", fmt.Sprintf("%d items, %d media files cached", len(s.Items), len(seen)))
	}()
}

// setPrefetching counts schedule prefetches in progress: while one runs, a
// program whose media is missing at its start waits for it until its
// latest start.
func (p *player) setPrefetching(delta int) {
	p.mu.Lock()
	p.prefetching += delta
	p.mu.Unlock()
	p.kick()
}

// setPrograms replaces the programs the player holds with the items of a
// schedule, except those already reported. A program that has not made a
// sound and is not in the new schedule is skipped as replaced; one that has
// sounded finishes (or resumes) as before. A new program with a position
// (stopped by a restart) resumes from it.
func (p *player) setPrograms(version int64, items []protocol.ScheduleItem, reported map[string]string, positions map[string]storedPosition) {
	p.mu.Lock()
	defer p.mu.Unlock()
	want := map[string]*protocol.ScheduleItem{}
	for i := range items {
		if _, ok := reported[items[i].ID]; !ok {
			want[items[i].ID] = &items[i]
		}
	}
	if p.cur != nil && p.cur.alert == nil {
		if _, ok := want[p.cur.id]; ok {
			p.cur.version = version
			delete(want, p.cur.id)
		}
	}
	for _, tk := range slices.Clone(p.tasks) {
		if tk.alert != nil {
			continue
		}
		it, ok := want[tk.id]
		delete(want, tk.id)
		switch {
		case ok && !tk.sounded:
			tk.define(it)
			tk.version = version
		case ok:
			tk.version = version
		case !tk.sounded:
			p.remove(tk)
			p.finish(tk, outcome{end: endReplaced})
		}
	}
	for i := range items {
		if it, ok := want[items[i].ID]; ok {
			p.seq++
			tk := newProgramTask(version, it)
			tk.seq, tk.added = p.seq, p.t.now()
			if pos, ok := positions[it.ID]; ok {
				tk.pos, tk.played = position{pass: pos.Pass, media: pos.Media, offset: pos.Offset}, time.Duration(pos.PlayedMS)*time.Millisecond
				tk.started, tk.ended, tk.sounded = pos.Started, pos.Ended, true
			}
			p.tasks = append(p.tasks, tk)
		}
	}
	p.kick()
}
