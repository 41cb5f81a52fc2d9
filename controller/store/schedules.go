package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"dalaba/controller/schedule"
	"dalaba/protocol"
)

// ScheduleVersion is one schedule command made for a terminal.
type ScheduleVersion struct {
	TerminalID string    `json:"terminal_id"`
	Version    int64     `json:"version"`
	CommandID  string    `json:"command_id"`
	MadeAt     time.Time `json:"made_at"`
	From       time.Time `json:"from"` // the window it covers
	Until      time.Time `json:"until"`
	Hash       string    `json:"hash"`
	AckedAt    time.Time `json:"acked_at,omitzero"` // the terminal confirmed it
}

// Covers reports whether a schedule made as v would have carried an
// occurrence starting at start and valid until latest: the start lies in
// its window and the occurrence could still play when it was made.
func (v ScheduleVersion) Covers(start, latest time.Time) bool {
	return !start.Before(v.From) && start.Before(v.Until) && v.MadeAt.Before(latest)
}

// PlannedItem is an occurrence a schedule carries.
type PlannedItem struct {
	ItemID    string    `json:"item_id"`
	ProgramID string    `json:"program_id"`
	Start     time.Time `json:"start"`
	Latest    time.Time `json:"latest"`
}

// Planned is an occurrence sent to a terminal: the last version that
// carried it, and when the terminal confirmed a version carrying it.
type Planned struct {
	TerminalID string `json:"terminal_id"`
	PlannedItem
	LastVersion int64     `json:"last_version"`
	AckedAt     time.Time `json:"acked_at,omitzero"`
}

// Outcome is what happened to one occurrence on one terminal.
type Outcome struct {
	TerminalID      string    `json:"terminal_id"`
	ItemID          string    `json:"item_id"`
	ProgramID       string    `json:"program_id"`
	Start           time.Time `json:"start"`
	ScheduleVersion int64     `json:"schedule_version"`
	State           string    `json:"state"` // protocol.Occurrence*
	Reason          string    `json:"reason,omitempty"`
	PreemptedBy     string    `json:"preempted_by,omitempty"`
	Started         time.Time `json:"started,omitzero"`
	Ended           time.Time `json:"ended,omitzero"`
	PlayedMS        int64     `json:"played_ms"`
	Source          string    `json:"source"` // OutcomeTerminal or OutcomeController
	ReportedAt      time.Time `json:"reported_at"`
}

// Who recorded an outcome.
const (
	OutcomeTerminal   = "terminal"
	OutcomeController = "controller"
)

const versionCols = `terminal_id, version, command_id, made_at, window_from, window_until, hash, acked_at`

func scanVersion(row interface{ Scan(...any) error }) (ScheduleVersion, error) {
	var v ScheduleVersion
	var made, from, until int64
	var acked sql.NullInt64
	err := row.Scan(&v.TerminalID, &v.Version, &v.CommandID, &made, &from, &until, &v.Hash, &acked)
	v.MadeAt, v.From, v.Until, v.AckedAt = fromMS(made), fromMS(from), fromMS(until), nullMS(acked)
	return v, err
}

// LatestSchedule is the newest schedule made for a terminal; ErrNotFound
// when none ever was.
func (s *Store) LatestSchedule(ctx context.Context, terminalID string) (ScheduleVersion, error) {
	v, err := scanVersion(s.r.QueryRowContext(ctx, `SELECT `+versionCols+` FROM schedule_versions WHERE terminal_id = ?
		ORDER BY version DESC LIMIT 1`, terminalID))
	if errors.Is(err, sql.ErrNoRows) {
		return v, fmt.Errorf("schedule of terminal %s: %w", terminalID, ErrNotFound)
	}
	return v, err
}

// AddSchedule records a schedule version, the items it carries, and the
// outcomes the controller decided while making it (quiet hours), in one
// transaction. A version number already used fails.
func (s *Store) AddSchedule(ctx context.Context, v ScheduleVersion, items []PlannedItem, decided []Outcome) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		_, err := tx.ExecContext(ctx, `INSERT INTO schedule_versions(`+versionCols+`) VALUES(?, ?, ?, ?, ?, ?, ?, NULL)`,
			v.TerminalID, v.Version, v.CommandID, ms(v.MadeAt), ms(v.From), ms(v.Until), v.Hash)
		if err != nil {
			return fmt.Errorf("save schedule %d of terminal %s: %w", v.Version, v.TerminalID, err)
		}
		// An item missing from the previous version starts a new run: it
		// was dropped and is back, and the terminal must confirm it again.
		stmt, err := tx.PrepareContext(ctx, `INSERT INTO schedule_items(terminal_id, item_id, program_id, start, latest, first_version, last_version)
			VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(terminal_id, item_id) DO UPDATE SET
			first_version = CASE WHEN last_version < excluded.last_version - 1 THEN excluded.first_version ELSE first_version END,
			acked_at = CASE WHEN last_version < excluded.last_version - 1 THEN NULL ELSE acked_at END,
			last_version = excluded.last_version, program_id = excluded.program_id, start = excluded.start, latest = excluded.latest`)
		if err != nil {
			return err
		}
		defer stmt.Close()
		for _, it := range items {
			if _, err := stmt.ExecContext(ctx, v.TerminalID, it.ItemID, it.ProgramID, ms(it.Start), ms(it.Latest), v.Version, v.Version); err != nil {
				return fmt.Errorf("save schedule item %s of terminal %s: %w", it.ItemID, v.TerminalID, err)
			}
		}
		for _, o := range decided {
			if err := putOutcome(ctx, tx, o, false); err != nil {
				return err
			}
		}
		return nil
	})
}

// ackSchedule records a terminal's confirmation of a schedule command, and
// of every item that version carried. It reports whether commandID was a
// schedule of this terminal.
func ackSchedule(ctx context.Context, tx *sql.Tx, terminalID, commandID string, now time.Time) (bool, error) {
	var version int64
	err := tx.QueryRowContext(ctx, `SELECT version FROM schedule_versions WHERE terminal_id = ? AND command_id = ?`, terminalID, commandID).Scan(&version)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if _, err := tx.ExecContext(ctx, `UPDATE schedule_versions SET acked_at = ? WHERE terminal_id = ? AND version = ? AND acked_at IS NULL`,
		ms(now), terminalID, version); err != nil {
		return true, err
	}
	_, err = tx.ExecContext(ctx, `UPDATE schedule_items SET acked_at = ? WHERE terminal_id = ? AND first_version <= ? AND last_version >= ?
		AND acked_at IS NULL`, ms(now), terminalID, version, version)
	return true, err
}

// putReportedOccurrence stores an occurrence outcome a terminal reported.
// One the controller cannot place (unknown state, an id it did not make)
// is kept only in the reports table.
func putReportedOccurrence(ctx context.Context, tx *sql.Tx, terminalID string, o *protocol.Occurrence, now time.Time) error {
	switch o.State {
	case protocol.OccurrencePlayed, protocol.OccurrencePreempted, protocol.OccurrenceSkipped:
	default:
		return nil
	}
	prog, start, err := schedule.ParseItemID(o.ItemID)
	if err != nil || len(o.ItemID) > 200 {
		return nil
	}
	return putOutcome(ctx, tx, Outcome{TerminalID: terminalID, ItemID: o.ItemID, ProgramID: prog, Start: start,
		ScheduleVersion: o.ScheduleVersion, State: o.State, Reason: o.Reason, PreemptedBy: o.PreemptedBy, Started: o.Started,
		Ended: o.Ended, PlayedMS: o.PlayedMS, Source: OutcomeTerminal, ReportedAt: now}, true)
}

// putOutcome inserts an outcome; replace says whether it overrides one
// already there (a terminal's report does; the controller's guess does not).
func putOutcome(ctx context.Context, tx *sql.Tx, o Outcome, replace bool) error {
	conflict := `DO NOTHING`
	if replace {
		conflict = `DO UPDATE SET program_id = excluded.program_id, start = excluded.start, schedule_version = excluded.schedule_version,
			state = excluded.state, reason = excluded.reason, preempted_by = excluded.preempted_by, started = excluded.started,
			ended = excluded.ended, played_ms = excluded.played_ms, source = excluded.source, reported_at = excluded.reported_at`
	}
	_, err := tx.ExecContext(ctx, `INSERT INTO occurrences(terminal_id, item_id, program_id, start, schedule_version, state, reason,
		preempted_by, started, ended, played_ms, source, reported_at) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT(terminal_id, item_id) `+conflict,
		o.TerminalID, o.ItemID, o.ProgramID, ms(o.Start), o.ScheduleVersion, o.State, o.Reason, o.PreemptedBy,
		nullable(o.Started), nullable(o.Ended), o.PlayedMS, o.Source, ms(o.ReportedAt))
	if err != nil {
		return fmt.Errorf("save occurrence %s of terminal %s: %w", o.ItemID, o.TerminalID, err)
	}
	return nil
}

func nullable(t time.Time) any {
	if t.IsZero() {
		return nil
	}
	return t.UnixMilli()
}

// Outcomes lists the outcomes of a program's occurrences starting in
// [from, until).
func (s *Store) Outcomes(ctx context.Context, programID string, from, until time.Time) ([]Outcome, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT terminal_id, item_id, program_id, start, schedule_version, state, reason, preempted_by,
		started, ended, played_ms, source, reported_at FROM occurrences WHERE program_id = ? AND start >= ? AND start < ?
		ORDER BY start, terminal_id`, programID, ms(from), ms(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Outcome
	for rows.Next() {
		var o Outcome
		var start, reported int64
		var started, ended sql.NullInt64
		if err := rows.Scan(&o.TerminalID, &o.ItemID, &o.ProgramID, &start, &o.ScheduleVersion, &o.State, &o.Reason, &o.PreemptedBy,
			&started, &ended, &o.PlayedMS, &o.Source, &reported); err != nil {
			return nil, err
		}
		o.Start, o.Started, o.Ended, o.ReportedAt = fromMS(start), nullMS(started), nullMS(ended), fromMS(reported)
		out = append(out, o)
	}
	return out, rows.Err()
}

// PlannedItems lists a program's occurrences starting in [from, until)
// that were sent to some terminal.
func (s *Store) PlannedItems(ctx context.Context, programID string, from, until time.Time) ([]Planned, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT terminal_id, item_id, program_id, start, latest, last_version, acked_at
		FROM schedule_items WHERE program_id = ? AND start >= ? AND start < ? ORDER BY start, terminal_id`, programID, ms(from), ms(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Planned
	for rows.Next() {
		var p Planned
		var start, latest int64
		var acked sql.NullInt64
		if err := rows.Scan(&p.TerminalID, &p.ItemID, &p.ProgramID, &start, &latest, &p.LastVersion, &acked); err != nil {
			return nil, err
		}
		p.Start, p.Latest, p.AckedAt = fromMS(start), fromMS(latest), nullMS(acked)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ScheduleVersions lists every terminal's schedule versions whose window
// overlaps [from, until), oldest first.
func (s *Store) ScheduleVersions(ctx context.Context, from, until time.Time) ([]ScheduleVersion, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+versionCols+` FROM schedule_versions WHERE window_until > ? AND window_from < ?
		ORDER BY terminal_id, version`, ms(from), ms(until))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []ScheduleVersion
	for rows.Next() {
		v, err := scanVersion(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, rows.Err()
}
