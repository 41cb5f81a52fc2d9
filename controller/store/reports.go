package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"strings"
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
	var aps []Applied
	err := s.durableTx(ctx, func(tx *sql.Tx) (err error) {
		st := newStmtCache(s, tx)
		defer st.close()
		aps, err = applyReports(ctx, st, []ReportIn{{terminalID, r}}, now)
		return err
	})
	if err != nil {
		return Applied{}, fmt.Errorf("store report %d of terminal %s: %w", r.Seq, terminalID, err)
	}
	return aps[0], nil
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
//
// The transaction is committed and synced to disk (Store.durableTx) when
// ApplyReports returns, so a caller that acknowledges a report only after
// it returns acknowledges only what a crash or power cut keeps
// (docs/benchmarks.md, "Receipts written per second").
func (s *Store) ApplyReports(ctx context.Context, reports []ReportIn, now time.Time) (aps []Applied, errs []error) {
	errs = make([]error, len(reports))
	err := s.durableTx(ctx, func(tx *sql.Tx) (err error) {
		st := newStmtCache(s, tx)
		defer st.close()
		aps, err = applyReports(ctx, st, reports, now)
		return err
	})
	if err == nil {
		return aps, errs
	}
	aps = make([]Applied, len(reports))
	for i, in := range reports {
		aps[i], errs[i] = s.ApplyReport(ctx, in.TerminalID, in.Report, now)
	}
	return aps, errs
}

// A batch writes its rows in multi-row statements of batchSizes rows,
// prepared once (Store.prepareBatchStatements): full ones of
// rowsPerStatement, then the smallest that holds the rest, its last row
// repeated to fill it (see padRows).
const rowsPerStatement = 128

var batchSizes = []int{1, 8, 32, rowsPerStatement}

// batchStatements are the multi-row statements, by rows.
var batchStatements = []func(rows int) string{insertReportsSQL, ackReportsSQL, readDeliveriesSQL}

// hotStatements are the one-row statements run for each row of a batch.
var hotStatements = []string{updateDeliverySQL, setStatusSQL, lastPointSQL, addPointSQL, prunePoints}

// padRows repeats the last row of args (rows of cols values) until there
// are as many rows as the smallest of batchSizes that holds them; every
// batch statement does the same for a repeated row as for one. It returns
// the rows' SQL shape size.
func padRows(args []any, cols int) ([]any, int) {
	n := len(args) / cols
	size := rowsPerStatement
	for _, s := range batchSizes {
		if s >= n {
			size = s
			break
		}
	}
	last := args[len(args)-cols:]
	for range size - n {
		args = append(args, last...)
	}
	return args, size
}

// valueRows is the placeholders of n rows of cols values: (?, ?), (?, ?).
func valueRows(n, cols int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, n-1)
}

func insertReportsSQL(rows int) string {
	return `INSERT INTO reports(terminal_id, seq, at, received_at, kind, command_id, reason, body)
		VALUES ` + valueRows(rows, 8) + ` ON CONFLICT DO NOTHING RETURNING terminal_id, seq`
}

func ackReportsSQL(rows int) string {
	return `UPDATE terminals SET acked_seq = MAX(acked_seq, v.column2)
		FROM (VALUES ` + valueRows(rows, 2) + `) AS v WHERE terminals.id = v.column1`
}

// reportKey names a report: a terminal stores each sequence number once.
type reportKey struct {
	terminalID string
	seq        uint64
}

// applyReports is ApplyReports inside a transaction, set by set: the
// reports' rows in multi-row inserts, the acknowledged sequences in one
// update per terminal set, and the deliveries read once, moved forward in
// order here and written once each. Faults, occurrences, rejections and
// schedule receipts (rare) are applied one by one.
func applyReports(ctx context.Context, st *stmtCache, reports []ReportIn, now time.Time) ([]Applied, error) {
	aps := make([]Applied, len(reports))
	fresh, err := insertReports(ctx, st, reports, now)
	if err != nil {
		return nil, err
	}
	if err := ackReports(ctx, st, reports); err != nil {
		return nil, err
	}
	var moves []deliveryMove
	for i, in := range reports {
		r := in.Report
		if !fresh[i] {
			aps[i].Duplicate = true
			continue
		}
		switch {
		case r.Receipt != nil:
			alertID, err := st.alertOf(ctx, r.Receipt.CommandID)
			if err == sql.ErrNoRows { // a receipt for a schedule, cancel or config command
				if r.Receipt.State == protocol.DeliveryDone { // a schedule is held once it is done
					if _, err := ackSchedule(ctx, st.tx, in.TerminalID, r.Receipt.CommandID, now); err != nil {
						return nil, err
					}
				}
				continue
			}
			if err != nil {
				return nil, err
			}
			moves = append(moves, deliveryMove{i, Delivery{AlertID: alertID, TerminalID: in.TerminalID, State: r.Receipt.State,
				Reason: r.Receipt.Reason, Detail: r.Receipt.Detail, UpdatedAt: now}})
		case r.Rejection != nil && r.Rejection.Reason != protocol.RejectReplay:
			// A replay is the terminal refusing a second copy of what it
			// has; anything else means this delivery will not play.
			var alertID string
			err := st.QueryRowContext(ctx, `SELECT id FROM alerts WHERE payload_sha = ? AND payload_sha != ''`, r.Rejection.PayloadSHA).Scan(&alertID)
			if err == sql.ErrNoRows {
				continue // not a command of ours: forged, tampered, or from elsewhere
			}
			if err != nil {
				return nil, err
			}
			moves = append(moves, deliveryMove{i, Delivery{AlertID: alertID, TerminalID: in.TerminalID, State: protocol.DeliveryRejected,
				Reason: r.Rejection.Reason, Detail: r.Rejection.Detail, UpdatedAt: now}})
		case r.Occurrence != nil:
			if err := putReportedOccurrence(ctx, st.tx, in.TerminalID, r.Occurrence, now); err != nil {
				return nil, err
			}
		case r.Fault != nil:
			aps[i].Fault = r.Fault
			if _, err := st.ExecContext(ctx, `INSERT INTO faults(terminal_id, code, active, message, since) VALUES(?, ?, ?, ?, ?)
			ON CONFLICT(terminal_id, code) DO UPDATE SET active = excluded.active, message = excluded.message, since = excluded.since`,
				in.TerminalID, r.Fault.Code, r.Fault.Active, r.Fault.Message, ms(r.At)); err != nil {
				return nil, err
			}
		}
	}
	moved, err := moveDeliveries(ctx, st, moves)
	if err != nil {
		return nil, err
	}
	for _, m := range moved {
		aps[m.report].Delivery = &m.d
	}
	return aps, nil
}

// insertReports inserts the reports' rows, each (terminal, seq) once, and
// reports which of them are new: not stored before, nor earlier in the
// batch.
func insertReports(ctx context.Context, st *stmtCache, reports []ReportIn, now time.Time) ([]bool, error) {
	first := make(map[reportKey]int, len(reports))
	args := make([]any, 0, 8*min(len(reports), rowsPerStatement))
	fresh := make([]bool, len(reports))
	for lo := 0; lo < len(reports); lo += rowsPerStatement {
		chunk := reports[lo:min(lo+rowsPerStatement, len(reports))]
		args = args[:0]
		for j, in := range chunk {
			r := in.Report
			body, err := json.Marshal(r)
			if err != nil {
				return nil, err
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
			if _, ok := first[reportKey{in.TerminalID, r.Seq}]; !ok {
				first[reportKey{in.TerminalID, r.Seq}] = lo + j
			}
			args = append(args, in.TerminalID, r.Seq, ms(r.At), ms(now), r.Kind, cmdID, reason, string(body))
		}
		args, size := padRows(args, 8)
		rows, err := st.QueryContext(ctx, insertReportsSQL(size), args...)
		if err != nil {
			return nil, err
		}
		for rows.Next() {
			var k reportKey
			if err := rows.Scan(&k.terminalID, &k.seq); err != nil {
				rows.Close()
				return nil, err
			}
			fresh[first[k]] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
	}
	return fresh, nil
}

// ackReports raises each reporting terminal's acknowledged sequence to the
// highest it sent (it only grows).
func ackReports(ctx context.Context, st *stmtCache, reports []ReportIn) error {
	high := map[string]uint64{}
	var order []string
	for _, in := range reports {
		seq, ok := high[in.TerminalID]
		if !ok {
			order = append(order, in.TerminalID)
		}
		high[in.TerminalID] = max(seq, in.Report.Seq)
	}
	for lo := 0; lo < len(order); lo += rowsPerStatement {
		ids := order[lo:min(lo+rowsPerStatement, len(order))]
		args := make([]any, 0, 2*len(ids))
		for _, id := range ids {
			args = append(args, id, high[id])
		}
		args, size := padRows(args, 2)
		if _, err := st.ExecContext(ctx, ackReportsSQL(size), args...); err != nil {
			return err
		}
	}
	return nil
}

// stmtCache runs a transaction's statements prepared once on the writer
// connection (preparing a multi-row statement costs more than running it),
// and remembers which alert each command belongs to (a batch of receipts
// is mostly about one alert).
type stmtCache struct {
	s      *Store
	tx     *sql.Tx
	stmts  map[string]*sql.Stmt
	alerts map[string]string // command id → alert id
}

func newStmtCache(s *Store, tx *sql.Tx) *stmtCache {
	return &stmtCache{s: s, tx: tx, stmts: map[string]*sql.Stmt{}, alerts: map[string]string{}}
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
	var st *sql.Stmt
	if prepared, ok := c.s.prepared[query]; ok {
		st = c.tx.StmtContext(ctx, prepared)
	} else {
		var err error
		if st, err = c.tx.PrepareContext(ctx, query); err != nil {
			return nil, err
		}
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

func (c *stmtCache) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	st, err := c.stmt(ctx, query)
	if err != nil {
		return nil, err
	}
	return st.QueryContext(ctx, args...)
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
