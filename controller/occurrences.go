package controller

import (
	"context"
	"slices"
	"strings"
	"time"

	"dalaba/controller/events"
	"dalaba/controller/schedule"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// States the controller adds to those terminals report (protocol.Occurrence*).
const (
	OccurrencePending    = "pending"    // it may still play: its latest start has not passed
	OccurrenceUnreported = "unreported" // the terminal holds it, its time passed, no report yet
)

// MaxOccurrenceRange bounds one what-happened question.
const MaxOccurrenceRange = 93 * 24 * time.Hour

// OccurrenceRow is what happened to one occurrence on one terminal.
type OccurrenceRow struct {
	ItemID       string    `json:"item_id"`
	Start        time.Time `json:"start"`
	Latest       time.Time `json:"latest"`
	TerminalID   string    `json:"terminal_id"`
	TerminalName string    `json:"terminal_name,omitempty"`
	State        string    `json:"state"`            // played, preempted, skipped, pending, unreported
	Reason       string    `json:"reason,omitempty"` // for skipped: protocol.Skip*
	PreemptedBy  string    `json:"preempted_by,omitempty"`
	Started      time.Time `json:"started,omitzero"`
	Ended        time.Time `json:"ended,omitzero"`
	PlayedMS     int64     `json:"played_ms,omitempty"`
	Source       string    `json:"source"` // terminal: it reported this; controller: the controller decided or inferred it
}

// OccurrenceTable answers "what happened" for a program over a span.
type OccurrenceTable struct {
	ProgramID string          `json:"program_id"`
	Title     string          `json:"title"`
	From      time.Time       `json:"from"`
	Until     time.Time       `json:"until"`
	Counts    map[string]int  `json:"counts"` // by state, and state:reason for skips
	Rows      []OccurrenceRow `json:"rows"`
}

// WhatHappened explains every occurrence of p starting in [from, until) on
// every terminal that visible accepts: the occurrences its rule gives (since
// the rule took effect) for its current targets (since they were enrolled),
// and those that were sent or reported. For each, in
// this order: the outcome a terminal reported (or the controller decided,
// for quiet hours); quiet hours; replaced, when a newer schedule the
// terminal confirmed dropped it; pending, while it may still start;
// unreported, when the terminal confirmed holding it but has not said;
// otherwise skipped offline: the terminal never received it.
func (c *Controller) WhatHappened(ctx context.Context, p store.Program, from, until time.Time, visible func(terminalID string) bool) (OccurrenceTable, error) {
	loc, now := c.sched.loc, c.now()
	tab := OccurrenceTable{ProgramID: p.ID, Title: p.Title, From: from.In(loc), Until: until.In(loc), Counts: map[string]int{}, Rows: []OccurrenceRow{}}
	terms, err := c.store.Terminals(ctx, "")
	if err != nil {
		return tab, err
	}
	names := map[string]string{}
	for _, t := range terms {
		names[t.ID] = t.Name
	}
	type key struct{ item, terminal string }
	rows := map[key]*OccurrenceRow{}
	planned := map[key]store.Planned{}
	row := func(item, terminal string, start, latest time.Time) *OccurrenceRow {
		k := key{item, terminal}
		if rows[k] == nil {
			rows[k] = &OccurrenceRow{ItemID: item, Start: start.In(loc), Latest: latest.In(loc), TerminalID: terminal, TerminalName: names[terminal]}
		}
		return rows[k]
	}
	late := time.Duration(p.LateMinutes) * time.Minute
	if p.DeletedAt.IsZero() {
		lo := from
		if p.EffectiveAt.After(lo) {
			lo = p.EffectiveAt
		}
		for _, start := range schedule.Occurrences(p.Rule, lo, until, loc) {
			for _, t := range terms {
				if t.Status == store.TerminalActive && !start.Before(t.EnrolledAt) && p.Targets.Includes(t.ID, t.AreaCode) && visible(t.ID) {
					row(schedule.ItemID(p.ID, start, loc), t.ID, start, start.Add(late))
				}
			}
		}
	}
	sent, err := c.store.PlannedItems(ctx, p.ID, from, until)
	if err != nil {
		return tab, err
	}
	for _, pl := range sent {
		if visible(pl.TerminalID) {
			row(pl.ItemID, pl.TerminalID, pl.Start, pl.Latest)
			planned[key{pl.ItemID, pl.TerminalID}] = pl
		}
	}
	outcomes, err := c.store.Outcomes(ctx, p.ID, from, until)
	if err != nil {
		return tab, err
	}
	reported := map[key]store.Outcome{}
	for _, o := range outcomes {
		if visible(o.TerminalID) {
			row(o.ItemID, o.TerminalID, o.Start, o.Start.Add(late))
			reported[key{o.ItemID, o.TerminalID}] = o
		}
	}
	versions, err := c.store.ScheduleVersions(ctx, from, until.Add(late))
	if err != nil {
		return tab, err
	}
	byTerminal := map[string][]store.ScheduleVersion{}
	for _, v := range versions {
		byTerminal[v.TerminalID] = append(byTerminal[v.TerminalID], v)
	}
	for k, r := range rows {
		pl, wasSent := planned[k]
		o, ok := reported[k]
		switch {
		case ok:
			r.State, r.Reason, r.PreemptedBy, r.PlayedMS, r.Source = o.State, o.Reason, o.PreemptedBy, o.PlayedMS, o.Source
			if !o.Started.IsZero() {
				r.Started = o.Started.In(loc)
			}
			if !o.Ended.IsZero() {
				r.Ended = o.Ended.In(loc)
			}
		case c.quietFor(p, r.Start):
			r.State, r.Reason, r.Source = protocol.OccurrenceSkipped, protocol.SkipQuietHours, store.OutcomeController
		case wasSent && replaced(pl, byTerminal[k.terminal]):
			r.State, r.Reason, r.Source = protocol.OccurrenceSkipped, protocol.SkipReplaced, store.OutcomeController
		case now.Before(r.Latest):
			r.State, r.Source = OccurrencePending, store.OutcomeController
		case wasSent && !pl.AckedAt.IsZero():
			r.State, r.Source = OccurrenceUnreported, store.OutcomeController
		default:
			r.State, r.Reason, r.Source = protocol.OccurrenceSkipped, protocol.SkipOffline, store.OutcomeController
		}
		tab.Rows = append(tab.Rows, *r)
		if r.Reason != "" && r.State == protocol.OccurrenceSkipped {
			tab.Counts[r.State+":"+r.Reason]++
		} else {
			tab.Counts[r.State]++
		}
	}
	slices.SortFunc(tab.Rows, func(a, b OccurrenceRow) int {
		if n := a.Start.Compare(b.Start); n != 0 {
			return n
		}
		return strings.Compare(a.TerminalID, b.TerminalID)
	})
	return tab, nil
}

// replaced reports whether a newer schedule that the terminal confirmed
// covered an occurrence's time without carrying it.
func replaced(pl store.Planned, versions []store.ScheduleVersion) bool {
	for _, v := range versions {
		if v.Version > pl.LastVersion && !v.AckedAt.IsZero() && v.Covers(pl.Start, pl.Latest) {
			return true
		}
	}
	return false
}

// playerReported announces what a terminal's player reported (an
// occurrence's outcome, a task switch), and logs an occurrence the store
// could not place.
func (c *Controller) playerReported(terminalID string, r protocol.Report) {
	if r.Switch != nil {
		c.events.Publish(events.Event{Kind: events.KindReport, At: r.At, Data: map[string]any{"terminal_id": terminalID, "report": r}})
	}
	o := r.Occurrence
	if o == nil {
		return
	}
	if _, _, err := schedule.ParseItemID(o.ItemID); err != nil {
		c.log.Warn("terminal reported an occurrence the controller did not schedule", "terminal", terminalID, "seq", r.Seq, "err", err)
		return
	}
	switch o.State {
	case protocol.OccurrencePlayed, protocol.OccurrencePreempted, protocol.OccurrenceSkipped:
	default:
		c.log.Warn("terminal reported an unknown occurrence state", "terminal", terminalID, "seq", r.Seq, "item", o.ItemID, "state", o.State)
		return
	}
	c.events.Publish(events.Event{Kind: events.KindReport, At: r.At, Data: map[string]any{"terminal_id": terminalID, "report": r}})
}
