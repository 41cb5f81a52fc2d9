package store

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"dalaba/protocol"
)

// Delivery is one alert's state on one terminal.
type Delivery struct {
	AlertID    string    `json:"alert_id"`
	TerminalID string    `json:"terminal_id"`
	State      string    `json:"state"`
	Reason     string    `json:"reason,omitempty"`
	Detail     string    `json:"detail,omitempty"`
	UpdatedAt  time.Time `json:"updated_at"`
}

// Deliveries lists an alert's deliveries by terminal id.
func (s *Store) Deliveries(ctx context.Context, alertID string) ([]Delivery, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT alert_id, terminal_id, state, reason, detail, updated_at FROM deliveries
		WHERE alert_id = ? ORDER BY terminal_id`, alertID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		var d Delivery
		var at int64
		if err := rows.Scan(&d.AlertID, &d.TerminalID, &d.State, &d.Reason, &d.Detail, &at); err != nil {
			return nil, err
		}
		d.UpdatedAt = fromMS(at)
		out = append(out, d)
	}
	return out, rows.Err()
}

// SetDelivery moves one delivery to state if that is a forward move (see
// protocol.DeliveryAdvances). It reports whether the row changed.
func (s *Store) SetDelivery(ctx context.Context, d Delivery) (bool, error) {
	var changed bool
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		changed, err = setDelivery(ctx, tx, d)
		return err
	})
	return changed, err
}

// sqlRunner is a transaction, or one with its statements prepared once.
type sqlRunner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// SetDeliveries is SetDelivery for many deliveries in one transaction
// (an alert sent to thousands of terminals at once). It returns those that
// changed.
func (s *Store) SetDeliveries(ctx context.Context, ds []Delivery) ([]Delivery, error) {
	var changed []Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st := newStmtCache(s, tx)
		defer st.close()
		moves := make([]deliveryMove, len(ds))
		for i, d := range ds {
			moves[i] = deliveryMove{i, d}
		}
		moved, err := moveDeliveries(ctx, st, moves)
		if err != nil {
			return fmt.Errorf("record deliveries: %w", err)
		}
		for _, m := range moved {
			changed = append(changed, m.d)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	return changed, nil
}

func setDelivery(ctx context.Context, tx sqlRunner, d Delivery) (bool, error) {
	q, ok := advanceDeliverySQL[d.State]
	if !ok {
		return false, nil // no state moves forward to d.State
	}
	res, err := tx.ExecContext(ctx, q, d.Reason, d.Detail, ms(d.UpdatedAt), d.AlertID, d.TerminalID)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// advanceDeliverySQL is, by the state it moves to, the one statement that
// moves a delivery forward: it updates the row only from a state that
// advances to it (protocol.DeliveryAdvances). One row a statement: SQLite's
// UPDATE … FROM (VALUES …) moving many costs more per row, as does a
// multi-row upsert (docs/benchmarks.md, "Receipts written per second").
var advanceDeliverySQL = advanceStatements()

func advanceStatements() map[string]string {
	qs := map[string]string{}
	for _, to := range allDeliveryStates {
		// CASE, not IN: an IN list is built into a temporary B-tree at
		// every run of the statement.
		var from string
		for _, st := range allDeliveryStates {
			if protocol.DeliveryAdvances(st, to) {
				from += " WHEN '" + st + "' THEN 1" // constants of ours, plain words
			}
		}
		if from != "" {
			qs[to] = `UPDATE deliveries SET state = '` + to + `', reason = ?, detail = ?, updated_at = ?` + closes(to) + `
		WHERE alert_id = ? AND terminal_id = ? AND CASE state` + from + ` ELSE 0 END`
		}
	}
	return qs
}

// closes is what an update to state sets besides it: a final state closes
// the delivery (its open column, which a step between unfinished states
// leaves alone so that the deliveries_open index is not rewritten).
func closes(state string) string {
	if protocol.DeliveryFinal(state) {
		return ", open = 0"
	}
	return ""
}

// advanceDeliverySQLs lists advanceDeliverySQL's statements, to prepare.
func advanceDeliverySQLs() []string {
	var qs []string
	for _, to := range allDeliveryStates {
		if q, ok := advanceDeliverySQL[to]; ok {
			qs = append(qs, q)
		}
	}
	return qs
}

// allDeliveryStates lists every delivery state.
var allDeliveryStates = []string{protocol.DeliveryQueued, protocol.DeliveryOffline, protocol.DeliverySent, protocol.DeliveryAccepted,
	protocol.DeliveryRejected, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone, protocol.DeliveryFailed,
	protocol.DeliveryCancelled, protocol.DeliveryExpired}

func setDeliveriesWhere(ctx context.Context, tx *sql.Tx, alertID string, from []string, to, reason, detail string, now time.Time) ([]Delivery, error) {
	args := []any{to, reason, detail, ms(now), alertID}
	for _, f := range from {
		args = append(args, f)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET state = ?, reason = ?, detail = ?, updated_at = ?`+closes(to)+`
		WHERE alert_id = ? AND state IN (?`+strings.Repeat(", ?", len(from)-1)+`) RETURNING terminal_id`, args...)
	if err != nil {
		return nil, fmt.Errorf("update deliveries of %s: %w", alertID, err)
	}
	defer rows.Close()
	out := []Delivery{}
	for rows.Next() {
		d := Delivery{AlertID: alertID, State: to, Reason: reason, Detail: detail, UpdatedAt: now}
		if err := rows.Scan(&d.TerminalID); err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	return out, rows.Err()
}

// Outstanding is a command a terminal should (re)receive when it connects.
type Outstanding struct {
	AlertID string
	State   string
	Signed  []byte // the alert, or its cancel when cancelled
}

// OutstandingFor lists what terminal id has not finished: active alerts it
// has not yet accepted, and cancels of alerts it accepted but not finished.
func (s *Store) OutstandingFor(ctx context.Context, id string, now time.Time) ([]Outstanding, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, d.state, CASE WHEN a.status = 'cancelled' THEN a.cancel_signed ELSE a.signed END
		FROM deliveries d JOIN alerts a ON a.id = d.alert_id
		WHERE d.terminal_id = ? AND d.open = 1 AND a.expires > ? AND (
			(a.status = 'active' AND d.state IN ('queued', 'offline', 'sent')) OR
			(a.status = 'cancelled' AND d.state IN ('sent', 'accepted', 'fetching', 'playing')))
		ORDER BY a.created_at`, id, ms(now))
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Outstanding
	for rows.Next() {
		var o Outstanding
		if err := rows.Scan(&o.AlertID, &o.State, &o.Signed); err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, rows.Err()
}

// Counts tallies an alert's deliveries by state.
func (s *Store) Counts(ctx context.Context, alertID string) (map[string]int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT state, COUNT(*) FROM deliveries WHERE alert_id = ? GROUP BY state`, alertID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			return nil, err
		}
		out[st] = n
	}
	return out, rows.Err()
}

// deliveryMove is a request to move a delivery to d.State, from report
// number report of a batch.
type deliveryMove struct {
	report int
	d      Delivery
}

// moveDeliveries applies moves in order, each only if it moves its
// delivery forward (protocol.DeliveryAdvances) from where the moves before
// left it, as one SetDelivery after another: one conditional update each,
// so a delivery moved twice in a batch goes through both steps. It
// returns the moves that took effect.
func moveDeliveries(ctx context.Context, st *stmtCache, moves []deliveryMove) ([]deliveryMove, error) {
	var moved []deliveryMove
	for _, m := range moves {
		ok, err := setDelivery(ctx, st, m.d)
		if err != nil {
			return nil, err
		}
		if ok {
			moved = append(moved, m)
		}
	}
	return moved, nil
}
