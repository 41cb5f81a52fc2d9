package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"
)

// LastHeartbeat returns the raw JSON of a terminal's last heartbeat, nil if
// it has sent none.
func (s *Store) LastHeartbeat(ctx context.Context, id string) ([]byte, error) {
	var hb sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT heartbeat FROM terminals WHERE id = ?`, id).Scan(&hb)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("terminal %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("heartbeat of terminal %s: %w", id, err)
	}
	if newer, ok := s.statuses.heartbeat(id); ok { // perhaps not written yet, see ApplyHeartbeats
		hb = sql.NullString{String: newer, Valid: true}
	}
	if !hb.Valid || hb.String == "" {
		return nil, nil
	}
	return []byte(hb.String), nil
}

// Heartbeat history bounds: a terminal's rows are kept HeartbeatKeep, and
// an unchanged heartbeat is written at most every HeartbeatSample (to its
// history and to its status row, see ApplyHeartbeats).
const (
	HeartbeatKeep   = 7 * 24 * time.Hour
	HeartbeatSample = 5 * time.Minute
)

// HeartbeatPoint is one row of a terminal's heartbeat history. An offline
// point has only At and State.
type HeartbeatPoint struct {
	At      time.Time `json:"at"`
	State   string    `json:"state"` // idle, playing, fault, offline
	Volume  *int      `json:"volume,omitempty"`
	RelayOK *bool     `json:"relay_ok,omitempty"`
	RelayOn *bool     `json:"relay_on,omitempty"`
	AudioOK *bool     `json:"audio_ok,omitempty"`
	Playing string    `json:"playing,omitempty"`
}

// same reports whether two points say the same about the terminal.
func (p HeartbeatPoint) same(o HeartbeatPoint) bool {
	eqInt := func(a, b *int) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	eqBool := func(a, b *bool) bool { return (a == nil) == (b == nil) && (a == nil || *a == *b) }
	return p.State == o.State && p.Playing == o.Playing && eqInt(p.Volume, o.Volume) &&
		eqBool(p.RelayOK, o.RelayOK) && eqBool(p.RelayOn, o.RelayOn) && eqBool(p.AudioOK, o.AudioOK)
}

// AddHeartbeat records a point in a terminal's history when it differs
// from the last one kept or that one is HeartbeatSample old, and prunes the
// terminal's rows older than HeartbeatKeep, in one transaction. It reports
// whether the point was written.
func (s *Store) AddHeartbeat(ctx context.Context, id string, p HeartbeatPoint) (bool, error) {
	// Most heartbeats change nothing: a reader says so without taking the
	// writer; the transaction checks again before it writes.
	if last, err := scanPoint(s.r.QueryRowContext(ctx, lastPointSQL, id)); err == nil && !due(last, p) {
		return false, nil
	}
	wrote := false
	var kept HeartbeatPoint
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		st := newStmtCache(s, tx)
		defer st.close()
		wrote, kept, err = addHeartbeat(ctx, st, id, p, map[string]bool{})
		return err
	})
	if err != nil {
		return false, fmt.Errorf("heartbeat history of terminal %s: %w", id, err)
	}
	if wrote {
		s.points.set(id, kept)
	}
	return wrote, nil
}

// lastPoints remembers the last history point written for each terminal,
// so that a heartbeat that changes nothing (most of them) is told so
// without reading the table. Only this process writes the history, and
// only after a commit does a point go in here.
type lastPoints struct {
	mu sync.Mutex
	m  map[string]HeartbeatPoint
}

func (l *lastPoints) get(id string) (HeartbeatPoint, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	p, ok := l.m[id]
	return p, ok
}

func (l *lastPoints) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.m = nil
}

// anyDue reports whether a point of hbs is to be written: one that says
// something new, or comes HeartbeatSample after the last kept, or whose
// terminal's last point is not remembered.
func (l *lastPoints) anyDue(hbs []HeartbeatIn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, h := range hbs {
		p := h.Point
		p.At = fromMS(ms(p.At)) // as addHeartbeat compares it
		if last, ok := l.m[h.TerminalID]; p.State != "" && (!ok || due(last, p)) {
			return true
		}
	}
	return false
}

func (l *lastPoints) set(id string, p HeartbeatPoint) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.m == nil {
		l.m = map[string]HeartbeatPoint{}
	}
	l.m[id] = p
}

// HeartbeatIn is one terminal's heartbeat for ApplyHeartbeats: its status
// and the point for its history.
type HeartbeatIn struct {
	TerminalID string
	Status     Status
	Point      HeartbeatPoint // none without a State (a status alone, as when a terminal comes online)
}

// ApplyHeartbeats records many terminals' heartbeats in one transaction,
// in order: each terminal's status (as SetStatus does) and its history (as
// AddHeartbeat does). wrote[i] says whether hbs[i]'s point was written. If
// the transaction fails, each is recorded in its own, so one bad
// heartbeat fails alone; errs[i] is hbs[i]'s.
//
// Like its history, a terminal's status row is written only when it
// changes (state, volume, firmware, relay or audio) or its last write is
// HeartbeatSample old: a status that says nothing new only moves the
// newest last_seen and raw heartbeat, kept in memory and laid over the
// row by every read (Terminal, Terminals, LastHeartbeat). A batch with
// nothing to write opens no transaction. After a crash the row's last_seen
// and heartbeat may be up to HeartbeatSample old.
func (s *Store) ApplyHeartbeats(ctx context.Context, hbs []HeartbeatIn) (wrote []bool, errs []error) {
	s.statuses.write.Lock()
	defer s.statuses.write.Unlock()
	return s.applyHeartbeats(ctx, hbs)
}

// applyHeartbeats is ApplyHeartbeats with statuses.write held.
func (s *Store) applyHeartbeats(ctx context.Context, hbs []HeartbeatIn) (wrote []bool, errs []error) {
	wrote, errs = make([]bool, len(hbs)), make([]error, len(hbs))
	// Each terminal's row as it will be once hbs are recorded, and as
	// hbs[i] writes it (known: it does).
	rows := make(map[string]statusRow, len(hbs))
	writes := make([]statusRow, len(hbs))
	for i, h := range hbs {
		r, ok := rows[h.TerminalID]
		if !ok {
			r, _ = s.statuses.get(h.TerminalID)
		}
		if r.skips(h.Status) {
			rows[h.TerminalID] = r.skipped(h.Status)
			continue
		}
		writes[i] = r.written(h.Status)
		rows[h.TerminalID] = writes[i]
	}
	if !slices.ContainsFunc(writes, func(r statusRow) bool { return r.known }) && !s.points.anyDue(hbs) {
		s.statuses.set(rows)
		return wrote, errs
	}
	kept := make([]HeartbeatPoint, len(hbs))
	var unknown []string // terminals without a row, remembered nowhere
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st := newStmtCache(s, tx)
		defer st.close()
		written := map[string]bool{} // terminals with a point written in this transaction
		for i, h := range hbs {
			if writes[i].known {
				n, err := setStatus(ctx, st, h.TerminalID, writes[i])
				if err != nil {
					return err
				}
				if n == 0 {
					unknown = append(unknown, h.TerminalID)
				}
			}
			w, k, err := addHeartbeat(ctx, st, h.TerminalID, h.Point, written)
			if err != nil {
				return err
			}
			wrote[i], kept[i] = w, k
		}
		return nil
	})
	if err == nil {
		for _, id := range unknown {
			delete(rows, id)
		}
		s.statuses.set(rows)
		for i, h := range hbs { // in order: a terminal's later point wins
			if wrote[i] {
				s.points.set(h.TerminalID, kept[i])
			}
		}
	}
	if err == nil || len(hbs) == 1 {
		if err != nil {
			errs[0] = fmt.Errorf("heartbeat of terminal %s: %w", hbs[0].TerminalID, err)
		}
		return wrote, errs
	}
	for i := range hbs {
		w, e := s.applyHeartbeats(ctx, hbs[i:i+1])
		wrote[i], errs[i] = w[0], e[0]
	}
	return wrote, errs
}

const (
	lastPointSQL = `SELECT at, state, volume, relay_ok, relay_on, audio_ok, playing FROM heartbeats WHERE terminal_id = ? ORDER BY at DESC LIMIT 1`
	addPointSQL  = `INSERT INTO heartbeats(terminal_id, at, state, volume, relay_ok, relay_on, audio_ok, playing) VALUES(?, ?, ?, ?, ?, ?, ?, ?)`
	prunePoints  = `DELETE FROM heartbeats WHERE terminal_id = ? AND at < ?`
)

// due reports whether p is kept after last: it says something else, or
// last is HeartbeatSample old.
func due(last, p HeartbeatPoint) bool {
	return !last.same(p) || p.At.Sub(last.At) >= HeartbeatSample
}

// addHeartbeat is AddHeartbeat inside a transaction. It also returns the
// point as written (its time may have moved), for lastPoints once the
// transaction commits. The last point of an earlier heartbeat in the same
// transaction is read from the table, which holds it already.
func addHeartbeat(ctx context.Context, st *stmtCache, id string, p HeartbeatPoint, written map[string]bool) (bool, HeartbeatPoint, error) {
	if p.State == "" {
		return false, p, nil // no point
	}
	// At the table's precision, so that a remembered point compares with
	// the next as its row does: two in one millisecond are one instant.
	p.At = fromMS(ms(p.At))
	last, cached := st.s.points.get(id)
	var err error
	if !cached || written[id] {
		last, err = scanPoint(st.QueryRowContext(ctx, lastPointSQL, id))
	}
	switch {
	case errors.Is(err, sql.ErrNoRows):
	case err != nil:
		return false, p, err
	case !due(last, p):
		return false, p, nil
	case !p.At.After(last.At):
		p.At = last.At.Add(time.Millisecond) // one row per instant; the clock may step back
	}
	if _, err := st.ExecContext(ctx, addPointSQL, id, ms(p.At), p.State, p.Volume, p.RelayOK, p.RelayOn, p.AudioOK, p.Playing); err != nil {
		return false, p, err
	}
	written[id] = true
	_, err = st.ExecContext(ctx, prunePoints, id, ms(p.At.Add(-HeartbeatKeep)))
	return err == nil, p, err
}

// Heartbeats returns a terminal's history from since on, oldest first,
// led by the last point before since (the state the terminal was in then).
func (s *Store) Heartbeats(ctx context.Context, id string, since time.Time) ([]HeartbeatPoint, error) {
	out := []HeartbeatPoint{}
	prev, err := scanPoint(s.r.QueryRowContext(ctx, `SELECT at, state, volume, relay_ok, relay_on, audio_ok, playing
		FROM heartbeats WHERE terminal_id = ? AND at < ? ORDER BY at DESC LIMIT 1`, id, ms(since)))
	switch {
	case err == nil:
		out = append(out, prev)
	case !errors.Is(err, sql.ErrNoRows):
		return nil, fmt.Errorf("heartbeat history of terminal %s: %w", id, err)
	}
	rows, err := s.r.QueryContext(ctx, `SELECT at, state, volume, relay_ok, relay_on, audio_ok, playing
		FROM heartbeats WHERE terminal_id = ? AND at >= ? ORDER BY at`, id, ms(since))
	if err != nil {
		return nil, fmt.Errorf("heartbeat history of terminal %s: %w", id, err)
	}
	defer rows.Close()
	for rows.Next() {
		p, err := scanPoint(rows)
		if err != nil {
			return nil, fmt.Errorf("heartbeat history of terminal %s: %w", id, err)
		}
		out = append(out, p)
	}
	return out, rows.Err()
}

func scanPoint(row interface{ Scan(...any) error }) (HeartbeatPoint, error) {
	var p HeartbeatPoint
	var at int64
	var vol sql.NullInt64
	var relayOK, relayOn, audioOK sql.NullBool
	if err := row.Scan(&at, &p.State, &vol, &relayOK, &relayOn, &audioOK, &p.Playing); err != nil {
		return p, err
	}
	p.At = fromMS(at)
	if vol.Valid {
		v := int(vol.Int64)
		p.Volume = &v
	}
	for _, b := range []struct {
		src sql.NullBool
		dst **bool
	}{{relayOK, &p.RelayOK}, {relayOn, &p.RelayOn}, {audioOK, &p.AudioOK}} {
		if b.src.Valid {
			v := b.src.Bool
			*b.dst = &v
		}
	}
	return p, nil
}

// EndHeartbeatHistory closes the history of every terminal whose last
// point is not offline with an offline point just after it was last seen:
// at start, when the controller knows nothing newer (it may have stopped
// without recording the disconnections). A last_seen or heartbeat not yet
// written to a status row (see ApplyHeartbeats) is written first.
func (s *Store) EndHeartbeatHistory(ctx context.Context) error {
	s.statuses.write.Lock()
	defer s.statuses.write.Unlock()
	rows := s.statuses.unwritten()
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if len(rows) > 0 {
			st, err := tx.PrepareContext(ctx, `UPDATE terminals SET last_seen = ?, heartbeat = COALESCE(?, heartbeat) WHERE id = ?`)
			if err != nil {
				return err
			}
			defer st.Close()
			for id, r := range rows {
				if _, err := st.ExecContext(ctx, r.seen, orNull(r.hb, r.hbKnown), id); err != nil {
					return err
				}
				rows[id] = r.flushed()
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO heartbeats(terminal_id, at, state)
			SELECT t.id, MAX(COALESCE(t.last_seen, 0), h.at) + 1, 'offline'
			FROM terminals t JOIN (SELECT terminal_id, MAX(at) AS at FROM heartbeats GROUP BY terminal_id) h ON h.terminal_id = t.id
			WHERE (SELECT state FROM heartbeats WHERE terminal_id = t.id AND at = h.at) != 'offline'`)
		return err
	})
	if err != nil {
		return fmt.Errorf("end heartbeat histories: %w", err)
	}
	s.statuses.set(rows)
	s.points.reset() // written here, not through addHeartbeat
	return nil
}
