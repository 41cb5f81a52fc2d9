package store

import (
	"context"
	"errors"
	"testing"
	"time"

	"dalaba/controller/schedule"
	"dalaba/protocol"
)

func TestProgramsRoundTrip(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	p := Program{ID: "0123456789ab", Title: "早间新闻", Media: []string{"aa", "bb"}, Targets: protocol.Targets{Areas: []string{villageA}},
		Volume: 60, Priority: protocol.PriorityProgram, Repeat: 2, LateMinutes: 10,
		Rule:      schedule.Rule{Kind: schedule.Weekly, Weekdays: []schedule.Weekday{1, 5}, Times: []schedule.Clock{420}, From: schedule.Date{Year: 2026, Month: 12, Day: 1}},
		CreatedAt: t0, CreatedBy: "zhang", UpdatedAt: t0, UpdatedBy: "zhang", EffectiveAt: t0}
	if err := s.CreateProgram(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateProgram(ctx, p); !errors.Is(err, ErrExists) {
		t.Errorf("second create: %v, want ErrExists", err)
	}
	got, err := s.Program(ctx, p.ID)
	if err != nil || got.Rule.String() != p.Rule.String() || got.Media[1] != "bb" || got.Repeat != 2 || !got.EffectiveAt.Equal(t0) {
		t.Fatalf("read back %+v, %v", got, err)
	}
	p.Title = "午间新闻"
	if err := s.UpdateProgram(ctx, p); err != nil {
		t.Fatal(err)
	}
	if err := s.DeleteProgram(ctx, p.ID, "li", t0.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateProgram(ctx, p); !errors.Is(err, ErrNotFound) {
		t.Errorf("update after delete: %v, want ErrNotFound", err)
	}
	if live, _ := s.Programs(ctx, false); len(live) != 0 {
		t.Errorf("live programs after delete: %d", len(live))
	}
	all, err := s.Programs(ctx, true)
	if err != nil || len(all) != 1 || all[0].Title != "午间新闻" || all[0].DeletedAt.IsZero() || all[0].UpdatedBy != "li" {
		t.Errorf("with deleted: %+v %v", all, err)
	}
}

// TestScheduleAcks: a version's confirmation marks the items it carried,
// including those a newer unconfirmed version also carries; an item that
// was dropped and comes back must be confirmed again.
func TestScheduleAcks(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	term := activeTerminal(t, s, villageA, "大巷村1号")
	start := t0.Add(24 * time.Hour)
	item := func(id string) PlannedItem {
		return PlannedItem{ItemID: "p@" + id, ProgramID: "p", Start: start, Latest: start.Add(10 * time.Minute)}
	}
	version := func(n int64, items ...string) {
		t.Helper()
		var its []PlannedItem
		for _, id := range items {
			its = append(its, item(id))
		}
		v := ScheduleVersion{TerminalID: term.ID, Version: n, CommandID: "cmd" + string(rune('0'+n)), MadeAt: t0, From: t0, Until: t0.Add(72 * time.Hour), Hash: "h"}
		if err := s.AddSchedule(ctx, v, its, nil); err != nil {
			t.Fatal(err)
		}
	}
	ack := func(n int64, seq uint64) {
		t.Helper()
		r := protocol.Report{Seq: seq, At: t0, Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: "cmd" + string(rune('0'+n)), State: protocol.DeliveryDone}}
		if _, err := s.ApplyReport(ctx, term.ID, r, t0); err != nil {
			t.Fatal(err)
		}
	}
	acked := func() map[string]bool {
		t.Helper()
		ps, err := s.PlannedItems(ctx, "p", start, start.Add(time.Second))
		if err != nil {
			t.Fatal(err)
		}
		out := map[string]bool{}
		for _, p := range ps {
			out[p.ItemID[2:]] = !p.AckedAt.IsZero()
		}
		return out
	}
	version(1, "a", "b")
	version(2, "b", "c") // made before 1 is confirmed
	ack(1, 1)
	if got := acked(); !got["a"] || !got["b"] || got["c"] {
		t.Errorf("after confirming 1: %v, want a and b", got)
	}
	if err := s.AddSchedule(ctx, ScheduleVersion{TerminalID: term.ID, Version: 2, CommandID: "other", Hash: "h"}, nil, nil); err == nil {
		t.Error("a version number used twice was stored")
	}
	version(3, "a", "b", "c") // a is back after version 2 dropped it
	if got := acked(); got["a"] || !got["b"] {
		t.Errorf("after a came back: %v, want a unconfirmed, b confirmed", got)
	}
	ack(3, 2)
	if got := acked(); !got["a"] || !got["c"] {
		t.Errorf("after confirming 3: %v, want all", got)
	}
	last, err := s.LatestSchedule(ctx, term.ID)
	if err != nil || last.Version != 3 || last.AckedAt.IsZero() {
		t.Errorf("latest %+v %v", last, err)
	}
	if _, err := s.LatestSchedule(ctx, "nobody"); !errors.Is(err, ErrNotFound) {
		t.Errorf("latest of a terminal without schedules: %v", err)
	}
}

// TestOccurrenceOutcomes: a terminal's report replaces the controller's
// quiet-hours record and a later report replaces an earlier one; the
// controller's record never replaces a report; reports it cannot place
// are kept but not counted.
func TestOccurrenceOutcomes(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	term := activeTerminal(t, s, villageA, "大巷村1号")
	sh := time.FixedZone("CST", 8*3600)
	start := time.Date(2026, 12, 1, 7, 0, 0, 0, sh)
	id := schedule.ItemID("p", start, sh)
	quiet := Outcome{TerminalID: term.ID, ItemID: id, ProgramID: "p", Start: start, State: protocol.OccurrenceSkipped,
		Reason: protocol.SkipQuietHours, Source: OutcomeController, ReportedAt: t0}
	v := ScheduleVersion{TerminalID: term.ID, Version: 1, CommandID: "c1", MadeAt: t0, From: t0, Until: t0.Add(time.Hour), Hash: "h"}
	if err := s.AddSchedule(ctx, v, nil, []Outcome{quiet}); err != nil {
		t.Fatal(err)
	}
	outcome := func() Outcome {
		t.Helper()
		os, err := s.Outcomes(ctx, "p", start, start.Add(time.Minute))
		if err != nil || len(os) != 1 {
			t.Fatalf("outcomes %+v %v", os, err)
		}
		return os[0]
	}
	if o := outcome(); o.Reason != protocol.SkipQuietHours || o.Source != OutcomeController || !o.Start.Equal(start) {
		t.Fatalf("controller's outcome %+v", o)
	}
	report := func(seq uint64, o protocol.Occurrence) {
		t.Helper()
		if _, err := s.ApplyReport(ctx, term.ID, protocol.Report{Seq: seq, At: t0, Kind: protocol.ReportOccurrence, Occurrence: &o}, t0); err != nil {
			t.Fatal(err)
		}
	}
	report(1, protocol.Occurrence{ItemID: id, State: protocol.OccurrencePreempted, PreemptedBy: "x", PlayedMS: 5000, Started: start})
	report(2, protocol.Occurrence{ItemID: id, State: protocol.OccurrencePlayed, PlayedMS: 60000, Started: start, Ended: start.Add(time.Minute)})
	report(2, protocol.Occurrence{ItemID: id, State: protocol.OccurrenceSkipped, Reason: protocol.SkipMediaMissing}) // a duplicate seq changes nothing
	report(3, protocol.Occurrence{ItemID: "not-ours", State: protocol.OccurrencePlayed})
	report(4, protocol.Occurrence{ItemID: id, State: "exploded"})
	if o := outcome(); o.State != protocol.OccurrencePlayed || o.PlayedMS != 60000 || o.Source != OutcomeTerminal || o.PreemptedBy != "" || !o.Ended.Equal(start.Add(time.Minute)) {
		t.Errorf("after reports: %+v, want the last valid one", o)
	}
	if err := s.AddSchedule(ctx, ScheduleVersion{TerminalID: term.ID, Version: 2, CommandID: "c2", MadeAt: t0, From: t0, Until: t0.Add(time.Hour), Hash: "h"}, nil, []Outcome{quiet}); err != nil {
		t.Fatal(err)
	}
	if o := outcome(); o.Source != OutcomeTerminal {
		t.Errorf("the controller's record replaced the terminal's report: %+v", o)
	}
	if rs, _ := s.Reports(ctx, term.ID, protocol.ReportOccurrence, 10); len(rs) != 4 {
		t.Errorf("%d occurrence reports kept, want 4 (every sequence number once)", len(rs))
	}
}
