package terminal

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"dalaba/protocol"
)

// TestScheduleOutcomes: every schedule item ends with one occurrence report
// that says what happened to it, and why when it did not play.
func TestScheduleOutcomes(t *testing.T) {
	const d = 500 * time.Millisecond
	cases := []struct {
		name string
		// setup returns the item; act runs once the schedule is accepted.
		setup   func(ctl *fakeController) protocol.ScheduleItem
		act     func(t *testing.T, ctl *fakeController, it protocol.ScheduleItem) (ebm string)
		receipt string // the schedule command's final receipt
		check   func(t *testing.T, o protocol.Occurrence, it protocol.ScheduleItem, ebm string)
	}{
		{"played", func(ctl *fakeController) protocol.ScheduleItem {
			start := time.Now().Add(400 * time.Millisecond)
			return item("bell", start, start.Add(time.Second), toneOf(ctl, routineHz, d))
		}, nil, protocol.DeliveryDone, func(t *testing.T, o protocol.Occurrence, it protocol.ScheduleItem, _ string) {
			if o.State != protocol.OccurrencePlayed || !near(time.Duration(o.PlayedMS)*time.Millisecond, d, 60*time.Millisecond) {
				t.Fatalf("occurrence %+v, want played for %v", o, d)
			}
			if !near(o.Started.Sub(it.Start), 0, 50*time.Millisecond) || !near(o.Ended.Sub(o.Started), d, 150*time.Millisecond) {
				t.Fatalf("started %v after its start, lasted %v; want on time, %v", o.Started.Sub(it.Start), o.Ended.Sub(o.Started), d)
			}
		}},
		{"outside validity", func(ctl *fakeController) protocol.ScheduleItem {
			start := time.Now().Add(-10 * time.Second)
			return item("late", start, start.Add(5*time.Second), toneOf(ctl, routineHz, d))
		}, nil, protocol.DeliveryDone, func(t *testing.T, o protocol.Occurrence, _ protocol.ScheduleItem, _ string) {
			if o.State != protocol.OccurrenceSkipped || o.Reason != protocol.SkipOutsideValidity || o.PlayedMS != 0 {
				t.Fatalf("occurrence %+v, want skipped: outside_validity", o)
			}
		}},
		{"media missing", func(ctl *fakeController) protocol.ScheduleItem {
			m := toneOf(ctl, routineHz, d)
			ctl.set(func(c *fakeController) { delete(c.media, m.SHA256) })
			start := time.Now().Add(400 * time.Millisecond)
			return item("gone", start, start.Add(time.Second), m)
		}, nil, protocol.DeliveryFailed, func(t *testing.T, o protocol.Occurrence, _ protocol.ScheduleItem, _ string) {
			if o.State != protocol.OccurrenceSkipped || o.Reason != protocol.SkipMediaMissing {
				t.Fatalf("occurrence %+v, want skipped: media_missing", o)
			}
		}},
		{"preempted and not resumed in time", func(ctl *fakeController) protocol.ScheduleItem {
			start := time.Now().Add(400 * time.Millisecond)
			return item("cut", start, start.Add(300*time.Millisecond), toneOf(ctl, routineHz, time.Second))
		}, func(t *testing.T, ctl *fakeController, it protocol.ScheduleItem) string {
			ctl.waitSwitch("start →" + it.ID)
			time.Sleep(300 * time.Millisecond)
			em := emergency(ctl, toneOf(ctl, emergencyHz, 2*time.Second))
			ctl.send(ctl.sign(em))
			return em.Alert.EBMID
		}, protocol.DeliveryDone, func(t *testing.T, o protocol.Occurrence, _ protocol.ScheduleItem, ebm string) {
			if o.State != protocol.OccurrencePreempted || o.PreemptedBy != ebm || o.PlayedMS < 200 || o.PlayedMS > 900 {
				t.Fatalf("occurrence %+v, want preempted by %s after about 300 ms", o, ebm)
			}
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeController(t)
			r := newRig(t, ctl)
			r.start()
			it := c.setup(ctl)
			cmd := ctl.schedule(1, it)
			ctl.send(ctl.sign(cmd))
			ctl.waitState(cmd.ID, protocol.DeliveryAccepted)
			ebm := ""
			if c.act != nil {
				ebm = c.act(t, ctl, it)
			}
			ctl.waitState(cmd.ID, c.receipt)
			o := ctl.waitOccurrence(it.ID)
			if o.ScheduleVersion != 1 || o.ProgramID != it.ProgramID {
				t.Fatalf("occurrence %+v: want version 1 of %s", o, it.ProgramID)
			}
			c.check(t, o, it, ebm)
			if got := ctl.states(cmd.ID); len(got) != 2 || got[1] != c.receipt {
				t.Fatalf("schedule receipts %v, want accepted, %s", got, c.receipt)
			}
			time.Sleep(200 * time.Millisecond)
			if n := len(ctl.occurrences(it.ID)); n != 1 {
				t.Fatalf("%d occurrence reports, want 1", n)
			}
		})
	}
}

// TestScheduleReplaced: a newer version replaces the schedule: items it
// drops that have not started are skipped as replaced, kept ones play
// once; an older version is refused and changes nothing.
func TestScheduleReplaced(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	t0 := time.Now()
	a := item("a", t0.Add(2*time.Second), t0.Add(3*time.Second), toneOf(ctl, routineHz, 300*time.Millisecond))
	b := item("b", t0.Add(1500*time.Millisecond), t0.Add(3*time.Second), toneOf(ctl, otherHz, 300*time.Millisecond))
	c := item("c", t0.Add(800*time.Millisecond), t0.Add(3*time.Second), toneOf(ctl, emergencyHz, 300*time.Millisecond))
	v2 := ctl.schedule(2, a, b)
	ctl.send(ctl.sign(v2))
	ctl.waitState(v2.ID, protocol.DeliveryDone)
	v3 := ctl.schedule(3, b, c)
	ctl.send(ctl.sign(v3))
	ctl.waitState(v3.ID, protocol.DeliveryDone)
	if o := ctl.waitOccurrence("a"); o.State != protocol.OccurrenceSkipped || o.Reason != protocol.SkipReplaced || o.ScheduleVersion != 2 {
		t.Fatalf("dropped item: %+v, want skipped: replaced, from version 2", o)
	}
	v1 := ctl.schedule(1, a)
	ctl.send(ctl.sign(v1))
	if rc := ctl.waitState(v1.ID, protocol.DeliveryFailed); rc.Reason != "stale" {
		t.Fatalf("older schedule: %+v, want failed: stale", rc)
	}
	for _, id := range []string{"c", "b"} {
		if o := ctl.waitOccurrence(id); o.State != protocol.OccurrencePlayed || o.ScheduleVersion != 3 {
			t.Fatalf("item %s: %+v, want played under version 3", id, o)
		}
	}
	if got := order(r.heardTones()); !slices.Equal(got, []float64{emergencyHz, otherHz}) {
		t.Fatalf("heard %v, want c then b, and never a", got)
	}
	var stored storedSchedule
	eventually(t, "b and c recorded as reported", func() bool {
		stored = storedSchedule{}
		return readJSON(filepath.Join(r.dir, scheduleFile), &stored) == nil && len(stored.Reported) == 2
	})
	if stored.Schedule.Version != 3 || stored.CommandID != v3.ID || stored.Reported["b"] != protocol.OccurrencePlayed {
		t.Fatalf("stored schedule version %d (command %s), reported %v; want version 3 with b and c played", stored.Schedule.Version, stored.CommandID, stored.Reported)
	}
}

// TestSchedulePlaysOffline: a terminal that lost the controller plays its
// scheduled item on time from its cache and reports it on reconnection.
func TestSchedulePlaysOffline(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	term := r.start(func(term *Terminal) { term.backoffMin, term.backoffMax = 20*time.Millisecond, 50*time.Millisecond })
	start := time.Now().Add(1500 * time.Millisecond)
	it := item("morning@0700", start, start.Add(time.Second), toneOf(ctl, routineHz, 600*time.Millisecond))
	cmd := ctl.schedule(1, it)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)

	ctl.set(func(c *fakeController) { c.down = true })
	ctl.dropAll()
	eventually(t, "link down", func() bool { return !term.Status().Connected })
	eventually(t, "the item played offline", func() bool {
		return len(r.wavs()) == 1 && term.Status().Playing == "" && !r.board.On(1) && slices.Contains(spooledKinds(term), protocol.ReportOccurrence)
	})
	if got := ctl.occurrences(it.ID); len(got) != 0 {
		t.Fatalf("controller heard %v while the link was down", got)
	}
	ctl.set(func(c *fakeController) { c.down = false })
	o := ctl.waitOccurrence(it.ID)
	if o.State != protocol.OccurrencePlayed || !near(o.Started.Sub(start), 0, 200*time.Millisecond) || !near(time.Duration(o.PlayedMS)*time.Millisecond, 600*time.Millisecond, 60*time.Millisecond) {
		t.Fatalf("occurrence %+v, want played from %v for 600ms", o, start)
	}
	ctl.waitSwitch("end " + it.ID + "→")
}

// TestScheduleSurvivesRestart: the stored schedule is reloaded at start and
// plays without the controller; an item already reported does not play
// again after another restart.
func TestScheduleSurvivesRestart(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	fast := func(term *Terminal) { term.backoffMin, term.backoffMax = 20*time.Millisecond, 50*time.Millisecond }
	r.start(fast)
	start := time.Now().Add(2 * time.Second)
	it := item("evening", start, start.Add(time.Second), toneOf(ctl, routineHz, 400*time.Millisecond))
	cmd := ctl.schedule(1, it)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)

	r.stop()
	ctl.set(func(c *fakeController) { c.down = true })
	ctl.dropAll()
	term := r.startNoWait(fast)
	eventually(t, "the reloaded item played", func() bool { return len(r.wavs()) == 1 && term.Status().Playing == "" && !r.board.On(1) })
	ctl.set(func(c *fakeController) { c.down = false })
	if o := ctl.waitOccurrence(it.ID); o.State != protocol.OccurrencePlayed {
		t.Fatalf("occurrence %+v, want played", o)
	}

	r.stop()
	r.start(fast)
	time.Sleep(500 * time.Millisecond)
	if n, w := len(ctl.occurrences(it.ID)), len(r.wavs()); n != 1 || w != 1 {
		t.Fatalf("after a second restart: %d occurrence reports, %d playbacks; want 1 and 1", n, w)
	}
}

// spooledKinds returns the kinds of the reports waiting in the spool.
func spooledKinds(term *Terminal) []string {
	var out []string
	for _, rec := range term.spool.Pending(0) {
		var r protocol.Report
		if json.Unmarshal(rec.Data, &r) == nil {
			out = append(out, r.Kind)
		}
	}
	return out
}

// TestOfflineRestartKeepsClockAndPosition: a terminal whose own clock is
// 20 s slow learns the controller's time, then stops in the middle of a
// program and restarts while the controller is unreachable. From what it
// saved, it resumes the program where it stopped (not from the start) and
// plays the next item on the controller's time, not 20 s late.
func TestOfflineRestartKeepsClockAndPosition(t *testing.T) {
	const newsLen, cut, bellLen = 1500 * time.Millisecond, 500 * time.Millisecond, 400 * time.Millisecond
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.cfg.ClockOffsetMS = -20000
	fast := func(term *Terminal) { term.backoffMin, term.backoffMax = 20*time.Millisecond, 50*time.Millisecond }
	term := r.start(fast)
	eventually(t, "the clock offset learnt and saved", func() bool {
		var sc storedClock
		return near(term.offset.get(), 20*time.Second, 50*time.Millisecond) &&
			readJSON(filepath.Join(r.dir, clockFile), &sc) == nil && near(time.Duration(sc.OffsetNS), 20*time.Second, 50*time.Millisecond)
	})
	start := time.Now().Add(500 * time.Millisecond)
	news := item("news", start, start.Add(time.Second), toneOf(ctl, routineHz, newsLen))
	bellAt := start.Add(3 * time.Second)
	bell := item("bell", bellAt, bellAt.Add(time.Second), toneOf(ctl, otherHz, bellLen))
	cmd := ctl.schedule(1, news, bell)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	ctl.waitSwitch("start →" + news.ID)
	time.Sleep(cut)

	r.stop()
	ctl.set(func(c *fakeController) { c.down = true })
	ctl.dropAll()
	term = r.startNoWait(fast)
	eventually(t, "the saved offset restored", func() bool { return near(term.offset.get(), 20*time.Second, 50*time.Millisecond) })
	eventually(t, "both items played offline", func() bool {
		return len(r.wavs()) == 3 && term.Status().Playing == "" && !r.board.On(1)
	})
	ctl.set(func(c *fakeController) { c.down = false })
	if o := ctl.waitOccurrence(news.ID); o.State != protocol.OccurrencePlayed || !near(time.Duration(o.PlayedMS)*time.Millisecond, newsLen, 120*time.Millisecond) {
		t.Fatalf("news %+v, want played for %v in all", o, newsLen)
	}
	if o := ctl.waitOccurrence(bell.ID); o.State != protocol.OccurrencePlayed || !near(o.Started.Sub(bellAt), 0, 200*time.Millisecond) {
		t.Fatalf("bell %+v, want played at %v", o, bellAt.UTC())
	}
	hs := r.heardTones()
	if got := order(hs); !slices.Equal(got, []float64{routineHz, otherHz}) {
		t.Fatalf("heard %v, want the news then the bell", hs)
	}
	if got := total(hs, routineHz); !near(got, newsLen, 120*time.Millisecond) {
		t.Fatalf("news sounded %v in all (%v), want %v: resumed, not restarted", got, hs, newsLen)
	}
}
