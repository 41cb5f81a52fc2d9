package controller

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/controller/schedule"
	"dalaba/controller/store"
	"dalaba/protocol"
)

func hm(t *testing.T, ss ...string) []schedule.Clock {
	t.Helper()
	out := make([]schedule.Clock, len(ss))
	for i, s := range ss {
		c, err := schedule.ParseClock(s)
		if err != nil {
			t.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// wallAt is the instant of a date and time of day on the county's clock.
func (h *testController) wallAt(t *testing.T, d schedule.Date, clock string) time.Time {
	t.Helper()
	return schedule.At(d, hm(t, clock)[0], h.c.sched.loc)
}

// startDay moves the controller's clock to 06:00 tomorrow, county time,
// and returns tomorrow's date.
func (h *testController) startDay(t *testing.T) schedule.Date {
	t.Helper()
	day := schedule.DateOf(time.Now(), h.c.sched.loc).AddDays(1)
	h.clock.advance(h.wallAt(t, day, "06:00").Sub(h.clock.now()))
	return day
}

// itemsAt lists a schedule's items as "day+N HH:MM" on the county's clock.
func itemsAt(s *protocol.Schedule, first schedule.Date, loc *time.Location) []string {
	var out []string
	for _, it := range s.Items {
		d := schedule.DateOf(it.Start, loc)
		n := 0
		for x := first; x.Compare(d) < 0; x = x.AddDays(1) {
			n++
		}
		out = append(out, fmt.Sprintf("+%d %s", n, it.Start.In(loc).Format("15:04")))
	}
	return out
}

// everyDay is the expected items: each time on days +0 .. +n-1.
func everyDay(n int, times ...string) []string {
	var out []string
	for d := range n {
		for _, c := range times {
			out = append(out, fmt.Sprintf("+%d %s", d, c))
		}
	}
	return out
}

// The schedule tests do not run in parallel: they go first, alone, so that
// the many parallel tests that hash passwords compete with fewer others.

// TestSchedulePushAndWhatHappened follows a program from its creation to
// the what-happened table: a connecting terminal gets a signed schedule,
// an unchanged one is not sent again, a change and a new day send new
// versions, reports through the WebSocket fill in the table, and every
// state and skip reason appears where it should.
func TestSchedulePushAndWhatHappened(t *testing.T) {
	h := startController(t, func(c *Config) { c.QuietHours = "07:45-07:55" })
	loc := h.c.sched.loc
	day := h.startDay(t)
	m := h.upload(t, tone(300*time.Millisecond))
	a, codeA := h.newRawTerminal(t, villageA, "大巷村1号")
	b, codeB := h.newRawTerminal(t, villageA, "大巷村2号")
	b.connect(t, codeB) // enrolled, then gone before any program
	b.ws.Close()
	h.waitOffline(t, b.id)
	// Offline is also its state before it first connected: wait until the
	// controller let go of the connection.
	waitFor(t, "B's session ended", func() bool {
		return !slices.ContainsFunc(h.c.sessions(), func(s *session) bool { return s.terminalID == b.id })
	})
	a.connect(t, codeA)
	a.nothingQueued(t) // nothing scheduled: no schedule sent

	officer := h.officer(t)
	var prog ProgramView
	officer.mustCall(t, http.StatusCreated, "POST", "/api/v1/programs", ProgramRequest{Title: "早间新闻", Media: []string{m.SHA256},
		Areas: []string{villageA}, Rule: schedule.Rule{Kind: schedule.Daily, Times: hm(t, "07:00", "07:10", "07:20", "07:30", "07:40", "07:50", "08:00")}}, &prog)
	if prog.Priority != protocol.PriorityProgram || prog.Repeat != 1 || prog.LateMinutes != DefaultLateMinutes || prog.Rule.From != day {
		t.Fatalf("program defaults: %+v", prog.Program)
	}
	if len(prog.Notes) != 1 || !strings.Contains(prog.Notes[0], "07:50 lies in the quiet hours 07:45-07:55") {
		t.Errorf("notes %q, want one about 07:50", prog.Notes)
	}
	if len(prog.Next) == 0 || !prog.Next[0].Equal(h.wallAt(t, day, "07:00")) {
		t.Errorf("next occurrences %v, want first %s", prog.Next, h.wallAt(t, day, "07:00"))
	}

	// The new program reaches the connected terminal at once.
	v1 := a.schedule(t)
	s := v1.Schedule
	now := h.clock.now()
	switch {
	case s.Version != 1:
		t.Errorf("version %d, want 1", s.Version)
	case !slices.Equal(v1.Targets.Terminals, []string{a.id}) || len(v1.Targets.Areas) != 0:
		t.Errorf("targets %+v, want only terminal %s", v1.Targets, a.id)
	case !s.From.Equal(day.In(loc)) || !s.Until.Equal(day.AddDays(4).In(loc)) || !v1.Expires.Equal(s.Until):
		t.Errorf("window %s..%s expires %s, want midnight to midnight four days later, expiring with it", s.From, s.Until, v1.Expires)
	case v1.NotBefore.After(now.Add(-time.Minute)) || v1.NotBefore.Before(now.Add(-2*time.Minute)):
		t.Errorf("not_before %s, want a minute before now %s", v1.NotBefore, now)
	}
	// 07:50 lies in the quiet hours: never sent.
	if got, want := itemsAt(s, day, loc), everyDay(4, "07:00", "07:10", "07:20", "07:30", "07:40", "08:00"); !slices.Equal(got, want) {
		t.Fatalf("schedule items\n got %v\nwant %v", got, want)
	}
	first := s.Items[0]
	if first.ID != prog.ID+"@"+h.wallAt(t, day, "07:00").Format(time.RFC3339) || first.ProgramID != prog.ID || first.Title != "早间新闻" ||
		!first.Latest.Equal(first.Start.Add(10*time.Minute)) || first.Priority != protocol.PriorityProgram || first.Repeat != 1 ||
		!slices.Equal(first.MediaIDs, []string{m.SHA256}) {
		t.Errorf("first item %+v", first)
	}
	// Its media is described once, in the table, for all 24 items.
	if len(s.Media) != 1 || s.Media[0].SHA256 != m.SHA256 || !slices.Equal(s.Media[0].Chunks, m.Chunks) {
		t.Errorf("schedule media %+v, want only %s", s.Media, m.SHA256)
	}
	if !strings.HasSuffix(first.ID, "T07:00:00+08:00") {
		t.Errorf("item id %s is not on the county's clock", first.ID)
	}
	a.done(t, v1)

	// Reconnecting with the schedule confirmed and unchanged: nothing sent.
	a.connect(t, "")
	a.nothingQueued(t)

	// A change sends a new version at once: 07:40 is dropped.
	officer.mustCall(t, http.StatusOK, "PATCH", "/api/v1/programs/"+prog.ID, map[string]any{
		"rule": map[string]any{"kind": "daily", "times": []string{"07:00", "07:10", "07:20", "07:30", "07:50", "08:00"}, "from": day.String()}}, nil)
	v2 := a.schedule(t)
	if v2.Schedule.Version != 2 {
		t.Errorf("version after a change %d, want 2", v2.Schedule.Version)
	}
	if got, want := itemsAt(v2.Schedule, day, loc), everyDay(4, "07:00", "07:10", "07:20", "07:30", "08:00"); !slices.Equal(got, want) {
		t.Fatalf("schedule items after the change\n got %v\nwant %v", got, want)
	}
	a.done(t, v2)

	// 08:15: the terminal reports what happened this morning; it says
	// nothing about 08:00.
	h.clock.advance(h.wallAt(t, day, "08:15").Sub(h.clock.now()))
	item := func(clock string) string { return schedule.ItemID(prog.ID, h.wallAt(t, day, clock), loc) }
	ebm := "44502240000000000000001202612010001" // the alert that cut in
	seven := h.wallAt(t, day, "07:00")
	a.occurred(t, protocol.Occurrence{ScheduleVersion: 2, ItemID: item("07:00"), ProgramID: prog.ID, State: protocol.OccurrencePlayed,
		Started: seven.Add(time.Second), Ended: seven.Add(3 * time.Minute), PlayedMS: 179000})
	a.occurred(t, protocol.Occurrence{ScheduleVersion: 2, ItemID: item("07:10"), ProgramID: prog.ID, State: protocol.OccurrencePreempted,
		PreemptedBy: ebm, Started: seven.Add(10 * time.Minute), PlayedMS: 30000})
	a.occurred(t, protocol.Occurrence{ScheduleVersion: 2, ItemID: item("07:20"), ProgramID: prog.ID, State: protocol.OccurrenceSkipped,
		Reason: protocol.SkipMediaMissing})
	a.occurred(t, protocol.Occurrence{ScheduleVersion: 2, ItemID: item("07:30"), ProgramID: prog.ID, State: protocol.OccurrenceSkipped,
		Reason: protocol.SkipOutsideValidity})

	// B comes back: on connection it gets what is still to play.
	b.connect(t, "")
	vb := b.schedule(t)
	if vb.Schedule.Version != 1 || !vb.Schedule.From.Equal(day.In(loc)) {
		t.Errorf("B's schedule: version %d from %s", vb.Schedule.Version, vb.Schedule.From)
	}
	if got, want := itemsAt(vb.Schedule, day, loc), everyDay(4, "07:00", "07:10", "07:20", "07:30", "08:00")[5:]; !slices.Equal(got, want) {
		t.Fatalf("B's items\n got %v\nwant %v", got, want)
	}
	b.done(t, vb)

	var tab OccurrenceTable
	officer.mustCall(t, http.StatusOK, "GET", fmt.Sprintf("/api/v1/programs/%s/occurrences?from=%s&until=%s", prog.ID, day, day.AddDays(2)), nil, &tab)
	type want struct{ state, reason, source string }
	skipped := func(reason, source string) want { return want{protocol.OccurrenceSkipped, reason, source} }
	wants := map[string]want{
		"+0 07:00 A": {protocol.OccurrencePlayed, "", "terminal"},
		"+0 07:10 A": {protocol.OccurrencePreempted, "", "terminal"},
		"+0 07:20 A": skipped(protocol.SkipMediaMissing, "terminal"),
		"+0 07:30 A": skipped(protocol.SkipOutsideValidity, "terminal"),
		"+0 07:40 A": skipped(protocol.SkipReplaced, "controller"), // in version 1, dropped by the confirmed version 2
		"+1 07:40 A": skipped(protocol.SkipReplaced, "controller"),
		"+0 07:50 A": skipped(protocol.SkipQuietHours, "controller"),
		"+0 08:00 A": {OccurrenceUnreported, "", "controller"}, // held, time passed, not yet reported
		"+0 07:50 B": skipped(protocol.SkipQuietHours, "controller"),
	}
	for _, c := range []string{"07:00", "07:10", "07:20", "07:30", "08:00"} {
		wants["+0 "+c+" B"] = skipped(protocol.SkipOffline, "controller") // B never received it
		wants["+1 "+c+" A"], wants["+1 "+c+" B"] = want{OccurrencePending, "", "controller"}, want{OccurrencePending, "", "controller"}
	}
	wants["+1 07:50 A"], wants["+1 07:50 B"] = skipped(protocol.SkipQuietHours, "controller"), skipped(protocol.SkipQuietHours, "controller")
	names := map[string]string{a.id: "A", b.id: "B"}
	got := map[string]OccurrenceRow{}
	for _, r := range tab.Rows {
		k := fmt.Sprintf("+%d %s %s", map[bool]int{true: 1}[schedule.DateOf(r.Start, loc) != day], r.Start.In(loc).Format("15:04"), names[r.TerminalID])
		got[k] = r
		w, ok := wants[k]
		if !ok {
			t.Errorf("unexpected row %s: %+v", k, r)
			continue
		}
		if r.State != w.state || r.Reason != w.reason || r.Source != w.source {
			t.Errorf("%s: %s %s (by %s), want %s %s (by %s)", k, r.State, r.Reason, r.Source, w.state, w.reason, w.source)
		}
	}
	for k := range wants {
		if _, ok := got[k]; !ok {
			t.Errorf("no row for %s", k)
		}
	}
	if r := got["+0 07:00 A"]; r.PlayedMS != 179000 || !r.Started.Equal(seven.Add(time.Second)) || !r.Ended.Equal(seven.Add(3*time.Minute)) || r.TerminalName != "大巷村1号" {
		t.Errorf("played row %+v", r)
	}
	if r := got["+0 07:10 A"]; r.PreemptedBy != ebm || r.PlayedMS != 30000 {
		t.Errorf("preempted row %+v, want preempted by %s after 30 s", r, ebm)
	}
	if tab.Counts["skipped:offline"] != 5 || tab.Counts[protocol.OccurrencePlayed] != 1 || tab.Counts[OccurrencePending] != 10 {
		t.Errorf("counts %v", tab.Counts)
	}

	// A new day: the hourly check moves the window and sends version 3.
	h.clock.advance(24 * time.Hour)
	h.c.refreshSchedules(context.Background())
	v3 := a.schedule(t)
	if v3.Schedule.Version != 3 || !v3.Schedule.From.Equal(day.AddDays(1).In(loc)) || !v3.Schedule.Until.Equal(day.AddDays(5).In(loc)) {
		t.Errorf("next day's schedule: version %d window %s..%s", v3.Schedule.Version, v3.Schedule.From, v3.Schedule.Until)
	}
	if got := itemsAt(v3.Schedule, day, loc); len(got) == 0 || got[0] != "+2 07:00" {
		t.Errorf("next day's items start %v, want +2 07:00 (today's have passed)", got)
	}
	a.done(t, v3)
	h.c.refreshSchedules(context.Background())
	a.nothingQueued(t)

	// Deleting the program empties the schedule; its history stays.
	officer.mustCall(t, http.StatusOK, "DELETE", "/api/v1/programs/"+prog.ID, nil, nil)
	if v4 := a.schedule(t); v4.Schedule.Version != 4 || len(v4.Schedule.Items) != 0 {
		t.Errorf("after delete: version %d with %d items, want 4 with none", v4.Schedule.Version, len(v4.Schedule.Items))
	}
	officer.mustCall(t, http.StatusOK, "GET", fmt.Sprintf("/api/v1/programs/%s/occurrences?from=%s&until=%s", prog.ID, day, day.AddDays(1)), nil, &tab)
	if len(tab.Rows) == 0 || tab.Rows[0].State != protocol.OccurrencePlayed {
		t.Errorf("a deleted program's history: %+v", tab.Rows)
	}
	es := h.auditEntries(t, "")
	for _, action := range []string{"program.create", "program.update", "program.delete"} {
		if !hasAudit(es, action, officer.name, prog.ID) {
			t.Errorf("no audit entry %s by %s on %s", action, officer.name, prog.ID)
		}
	}
}

// TestDenseWeekFitsOneFrame: a week of dense programs — an hour-long
// playlist of eight half-hour MP3 files every two hours, and a bell every
// half hour — goes to a terminal as one signed schedule, uncut: each media
// file is described once in the schedule's table, however often it plays.
func TestDenseWeekFitsOneFrame(t *testing.T) {
	h := startController(t, func(c *Config) { c.ScheduleDays = 7 })
	day := h.startDay(t)
	now := h.clock.now()
	halfHourMP3 := func(i int) protocol.Media {
		size := int64(30 * 60 * 128000 / 8) // 30 minutes at 128 kbit/s
		m := protocol.Media{SHA256: fmt.Sprintf("%064x", i), Size: size, Format: "mp3", DurationMS: 30 * 60 * 1000, ChunkSize: protocol.DefaultChunkSize}
		for c := range (size + protocol.DefaultChunkSize - 1) / protocol.DefaultChunkSize {
			m.Chunks = append(m.Chunks, fmt.Sprintf("%064x", int64(i)<<32|c))
		}
		return m
	}
	set := &programSet{media: map[string]protocol.Media{}}
	var playlist []string
	for i := range MaxProgramMedia {
		m := halfHourMP3(i + 1)
		set.media[m.SHA256], playlist = m, append(playlist, m.SHA256)
	}
	bell := halfHourMP3(100)
	set.media[bell.SHA256] = bell
	every := func(step time.Duration) []schedule.Clock {
		var out []schedule.Clock
		for d := time.Duration(0); d < 24*time.Hour; d += step {
			out = append(out, schedule.Clock(d/time.Minute))
		}
		return out
	}
	target := protocol.Targets{Terminals: []string{"64502241020030000000001"}}
	set.progs = []store.Program{
		{ID: "news", Title: "新闻联播", Media: playlist, Targets: target, Priority: protocol.PriorityProgram, Repeat: 1, LateMinutes: 10,
			Rule: schedule.Rule{Kind: schedule.Daily, Times: every(2 * time.Hour), From: day}},
		{ID: "bell", Title: "报时", Media: []string{bell.SHA256}, Targets: target, Priority: protocol.PriorityProgram, Repeat: 1, LateMinutes: 1,
			Rule: schedule.Rule{Kind: schedule.Daily, Times: every(30 * time.Minute), From: day}},
	}
	pl := h.c.plan(set, target.Terminals[0], villageA, now)
	items, until := len(pl.items), pl.until
	v := store.ScheduleVersion{TerminalID: target.Terminals[0], Version: 1}
	msg, err := h.c.signSchedule(&v, &pl, now)
	if err != nil {
		t.Fatal(err)
	}
	if len(pl.items) != items || !pl.until.Equal(until) || items < 7*(12+48) {
		t.Fatalf("schedule cut to %d of %d items, until %s of %s", len(pl.items), items, pl.until, until)
	}
	if len(msg) > protocol.MaxFrameBytes {
		t.Fatalf("schedule frame %d bytes, over the limit %d", len(msg), protocol.MaxFrameBytes)
	}
	t.Logf("%d items over %s, %d media: one frame of %d bytes (limit %d)", items, until.Sub(pl.from), len(pl.table()), len(msg), protocol.MaxFrameBytes)
}
