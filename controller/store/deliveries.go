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
	rows, err := s.r.QueryContext(ctx, `SELECT a.id, t.id, d.state, d.reason, d.detail, d.updated_at
		FROM alert_nums a JOIN deliveries d ON `+alertsDeliveries+` JOIN terminal_nums t ON t.num = d.terminal_num
		WHERE a.id = ? ORDER BY t.id`, alertID)
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
		st := newStmtCache(s, tx)
		defer st.close()
		moved, err := moveDeliveries(ctx, st, []deliveryMove{{0, d}})
		changed = len(moved) > 0
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
// (an alert sent to thousands of terminals at once), in order. It reports,
// for each, whether it moved, and the error that kept them all from being
// recorded.
func (s *Store) SetDeliveries(ctx context.Context, ds []Delivery) ([]bool, []error) {
	moved, errs := make([]bool, len(ds)), make([]error, len(ds))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st := newStmtCache(s, tx)
		defer st.close()
		moves := make([]deliveryMove, len(ds))
		for i, d := range ds {
			moves[i] = deliveryMove{i, d}
		}
		did, err := moveDeliveries(ctx, st, moves)
		if err != nil {
			return err
		}
		for _, m := range did {
			moved[m.report] = true
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("record deliveries: %w", err)
		}
		clear(moved)
	}
	return moved, errs
}

// setDelivery moves d's delivery to d.State if that is a forward move,
// and reports whether it did. The terminal's number has been read
// (stmtCache.readTerminalNums).
func setDelivery(ctx context.Context, st *stmtCache, d Delivery) (bool, error) {
	q, ok := advanceDeliverySQL[d.State]
	if !ok {
		return false, nil // no state moves forward to d.State
	}
	terminal, ok := st.terminalNum(d.TerminalID)
	if !ok {
		return false, nil // a terminal without a number has no delivery
	}
	alert, err := st.alertNum(ctx, d.AlertID)
	if err == sql.ErrNoRows {
		return false, nil // nor has an alert that does not exist
	}
	if err != nil {
		return false, err
	}
	res, err := st.ExecContext(ctx, q, d.Reason, d.Detail, ms(d.UpdatedAt), deliveryKey(alert, terminal))
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// deliveryKey is the key of alert's delivery to terminal (their numbers;
// migrations/0009_delivery_numbers.sql).
func deliveryKey(alert, terminal int64) int64 {
	return alert<<32 | terminal
}

// alertsDeliveries joins alert_nums a to its deliveries d: one range of
// keys.
const alertsDeliveries = `d.key BETWEEN a.num << 32 AND (a.num << 32) | 0xFFFFFFFF`

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
		WHERE key = ? AND CASE state` + from + ` ELSE 0 END`
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
	var alert int64
	if err := tx.QueryRowContext(ctx, `SELECT num FROM alert_nums WHERE id = ?`, alertID).Scan(&alert); err != nil {
		return nil, fmt.Errorf("number of alert %s: %w", alertID, err)
	}
	args := []any{to, reason, detail, ms(now), deliveryKey(alert, 0), deliveryKey(alert, 0xFFFFFFFF)}
	for _, f := range from {
		args = append(args, f)
	}
	rows, err := tx.QueryContext(ctx, `UPDATE deliveries SET state = ?, reason = ?, detail = ?, updated_at = ?`+closes(to)+`
		WHERE key BETWEEN ? AND ? AND state IN (?`+strings.Repeat(", ?", len(from)-1)+`)
		RETURNING (SELECT id FROM terminal_nums WHERE num = terminal_num)`, args...)
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
		FROM terminal_nums t JOIN deliveries d ON d.terminal_num = t.num JOIN alert_nums n ON n.num = d.alert_num JOIN alerts a ON a.id = n.id
		WHERE t.id = ? AND d.open = 1 AND a.expires > ? AND (
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
	rows, err := s.r.QueryContext(ctx, `SELECT d.state, COUNT(*) FROM alert_nums a JOIN deliveries d ON `+alertsDeliveries+`
		WHERE a.id = ? GROUP BY d.state`, alertID)
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
	ids := make([]string, len(moves))
	for i, m := range moves {
		ids[i] = m.d.TerminalID
	}
	if err := st.readTerminalNums(ctx, ids); err != nil {
		return nil, err
	}
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
