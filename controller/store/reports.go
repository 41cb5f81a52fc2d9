package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"time"

	"dalaba/protocol"
)

// Applied says what storing a report changed.
type Applied struct {
	Duplicate bool      // already stored: nothing changed
	Delivery  *Delivery // the delivery it moved, if any
	Fault     *protocol.Fault
}

// ApplyReport stores a terminal's report once (by terminal and Seq) and
// applies it in the same transaction: a receipt moves its delivery forward
// (or confirms a schedule), an occurrence records what happened to a
// schedule item, a fault updates the terminal's fault list. The terminal's
// acknowledged sequence only grows.
func (s *Store) ApplyReport(ctx context.Context, terminalID string, r protocol.Report, now time.Time) (Applied, error) {
	var ap Applied
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		ap, err = applyReport(ctx, newStmtCache(tx), terminalID, r, now)
		return err
	})
	if err != nil {
		return ap, fmt.Errorf("store report %d of terminal %s: %w", r.Seq, terminalID, err)
	}
	return ap, nil
}

// ReportIn is one terminal's report for ApplyReports.
type ReportIn struct {
	TerminalID string
	Report     protocol.Report
}

// ApplyReports applies many reports (from many terminals) as ApplyReport
// does, in one transaction: the hot path when thousands of terminals
// report at once. If that transaction fails, each report is applied on
// its own, so one bad report fails alone; errs[i] is reports[i]'s.
func (s *Store) ApplyReports(ctx context.Context, reports []ReportIn, now time.Time) (aps []Applied, errs []error) {
	aps, errs = make([]Applied, len(reports)), make([]error, len(reports))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st := newStmtCache(tx)
		defer st.close()
		for i, in := range reports {
			ap, err := applyReport(ctx, st, in.TerminalID, in.Report, now)
			if err != nil {
				return err
			}
			aps[i] = ap
		}
		return nil
	})
	if err == nil {
		return aps, errs
	}
	for i, in := range reports {
		aps[i], errs[i] = s.ApplyReport(ctx, in.TerminalID, in.Report, now)
	}
	return aps, errs
}

// applyReport is ApplyReport inside a transaction; st prepares each
// statement once for a whole batch (preparing costs more than running).
func applyReport(ctx context.Context, st *stmtCache, terminalID string, r protocol.Report, now time.Time) (Applied, error) {
	tx := st.tx
	var ap Applied
	body, err := json.Marshal(r)
	if err != nil {
		return ap, err
	}
	var cmdID, reason string
	switch {
	case r.Receipt != nil:
		cmdID, reason = r.Receipt.CommandID, r.Receipt.Reason
	case r.Rejection != nil:
		cmdID, reason = r.Rejection.CommandID, r.Rejection.Reason
	case r.Fault != nil:
		reason = r.Fault.Code
	case r.Occurrence != nil:
		reason = r.Occurrence.Reason
	}
	err = func() error {
		res, err := st.ExecContext(ctx, `INSERT INTO reports(terminal_id, seq, at, received_at, kind, command_id, reason, body)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT DO NOTHING`, terminalID, r.Seq, ms(r.At), ms(now), r.Kind, cmdID, reason, string(body))
		if err != nil {
			return err
		}
		if _, err := st.ExecContext(ctx, `UPDATE terminals SET acked_seq = MAX(acked_seq, ?) WHERE id = ?`, r.Seq, terminalID); err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			ap.Duplicate = true
			return nil
		}
		switch {
		case r.Receipt != nil:
			alertID, err := st.alertOf(ctx, r.Receipt.CommandID)
			if err == sql.ErrNoRows { // a receipt for a schedule, cancel or config command
				if r.Receipt.State == protocol.DeliveryDone { // a schedule is held once it is done
					_, err := ackSchedule(ctx, tx, terminalID, r.Receipt.CommandID, now)
					return err
				}
				return nil
			}
			if err != nil {
				return err
			}
			d := Delivery{AlertID: alertID, TerminalID: terminalID, State: r.Receipt.State, Reason: r.Receipt.Reason, Detail: r.Receipt.Detail, UpdatedAt: now}
			changed, err := setDelivery(ctx, st, d)
			if changed {
				ap.Delivery = &d
			}
			return err
		case r.Rejection != nil && r.Rejection.Reason != protocol.RejectReplay:
			// A replay is the terminal refusing a second copy of what it
			// has; anything else means this delivery will not play.
			var alertID string
			err := tx.QueryRowContext(ctx, `SELECT id FROM alerts WHERE payload_sha = ? AND payload_sha != ''`, r.Rejection.PayloadSHA).Scan(&alertID)
			if err == sql.ErrNoRows {
				return nil // not a command of ours: forged, tampered, or from elsewhere
			}
			if err != nil {
				return err
			}
			d := Delivery{AlertID: alertID, TerminalID: terminalID, State: protocol.DeliveryRejected, Reason: r.Rejection.Reason, Detail: r.Rejection.Detail, UpdatedAt: now}
			changed, err := setDelivery(ctx, tx, d)
			if changed {
				ap.Delivery = &d
			}
			return err
		case r.Occurrence != nil:
			return putReportedOccurrence(ctx, tx, terminalID, r.Occurrence, now)
		case r.Fault != nil:
			ap.Fault = r.Fault
			_, err := tx.ExecContext(ctx, `INSERT INTO faults(terminal_id, code, active, message, since) VALUES(?, ?, ?, ?, ?)
			ON CONFLICT(terminal_id, code) DO UPDATE SET active = excluded.active, message = excluded.message, since = excluded.since`,
				terminalID, r.Fault.Code, r.Fault.Active, r.Fault.Message, ms(r.At))
			return err
		}
		return nil
	}()
	return ap, err
}

// stmtCache prepares each statement once per transaction, and remembers
// which alert each command belongs to (a batch of receipts is mostly about
// one alert).
type stmtCache struct {
	tx     *sql.Tx
	stmts  map[string]*sql.Stmt
	alerts map[string]string // command id → alert id
}

func newStmtCache(tx *sql.Tx) *stmtCache {
	return &stmtCache{tx: tx, stmts: map[string]*sql.Stmt{}, alerts: map[string]string{}}
}

// alertOf returns the id of the alert whose command is cmdID, or
// sql.ErrNoRows.
func (c *stmtCache) alertOf(ctx context.Context, cmdID string) (string, error) {
	if id, ok := c.alerts[cmdID]; ok {
		return id, nil
	}
	var id string
	if err := c.QueryRowContext(ctx, `SELECT id FROM alerts WHERE command_id = ?`, cmdID).Scan(&id); err != nil {
		return "", err
	}
	c.alerts[cmdID] = id
	return id, nil
}

func (c *stmtCache) stmt(ctx context.Context, query string) (*sql.Stmt, error) {
	if st, ok := c.stmts[query]; ok {
		return st, nil
	}
	st, err := c.tx.PrepareContext(ctx, query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = st
	return st, nil
}

func (c *stmtCache) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.ExecContext(ctx, args...)
}

func (c *stmtCache) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return c.tx.QueryRowContext(ctx, query, args...) // reports the same error
	}
	return st.QueryRowContext(ctx, args...)
}

func (c *stmtCache) close() {
	for _, st := range c.stmts {
		st.Close()
	}
}

// StoredReport is a report as kept.
type StoredReport struct {
	TerminalID string          `json:"terminal_id"`
	ReceivedAt time.Time       `json:"received_at"`
	Report     protocol.Report `json:"report"`
}

// Reports lists a terminal's reports (all terminals when id is empty) of
// kind (all kinds when empty), newest first.
func (s *Store) Reports(ctx context.Context, terminalID, kind string, limit int) ([]StoredReport, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT terminal_id, received_at, body FROM reports
		WHERE (? = '' OR terminal_id = ?) AND (? = '' OR kind = ?) ORDER BY received_at DESC, seq DESC LIMIT ?`,
		terminalID, terminalID, kind, kind, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []StoredReport{}
	for rows.Next() {
		var r StoredReport
		var at int64
		var body string
		if err := rows.Scan(&r.TerminalID, &at, &body); err != nil {
			return nil, err
		}
		r.ReceivedAt = fromMS(at)
		if err := json.Unmarshal([]byte(body), &r.Report); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// Fault is a terminal's current or last fault of one code.
type Fault struct {
	TerminalID string    `json:"terminal_id"`
	Code       string    `json:"code"`
	Active     bool      `json:"active"`
	Message    string    `json:"message"`
	Since      time.Time `json:"since"`
}

// Faults lists faults; only active ones when active is true.
func (s *Store) Faults(ctx context.Context, active bool) ([]Fault, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT terminal_id, code, active, message, since FROM faults WHERE (? = 0 OR active = 1) ORDER BY since DESC`, active)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Fault{}
	for rows.Next() {
		var f Fault
		var since int64
		if err := rows.Scan(&f.TerminalID, &f.Code, &f.Active, &f.Message, &since); err != nil {
			return nil, err
		}
		f.Since = fromMS(since)
		out = append(out, f)
	}
	return out, rows.Err()
}
