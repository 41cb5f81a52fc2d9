package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"math"
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
// acknowledged sequence only grows; a report at or below it is a repeat
// and changes nothing (see newReports).
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

var insertReportsSQL = shapes(func(rows int) string {
	return `INSERT INTO reports(terminal_num, seq, received_at, kind, body) VALUES ` + valueRows(rows, 5)
})

var readAckedSQL = shapes(func(rows int) string {
	return `SELECT terminal_num, seq FROM report_acks WHERE terminal_num IN (?` + strings.Repeat(", ?", rows-1) + `)`
})

// raiseAckedSQL raises terminals' acknowledged sequences, each only
// upward, and returns the numbers of those it raised. A row repeated
// (padRows) matches its terminal once.
var raiseAckedSQL = shapes(func(rows int) string {
	return `INSERT INTO report_acks(terminal_num, seq) VALUES ` + valueRows(rows, 2) + `
		ON CONFLICT(terminal_num) DO UPDATE SET seq = excluded.seq WHERE excluded.seq > seq
		RETURNING terminal_num`
})

// raiseAckedAllSQL is raiseAckedSQL without its RETURNING, for when every
// row raises its terminal's sequence (RowsAffected tells; raiseAll).
var raiseAckedAllSQL = shapes(func(rows int) string {
	q := raiseAckedSQL(rows)
	return strings.TrimSpace(q[:strings.LastIndex(q, "RETURNING")])
})

// applyReports is ApplyReports inside a transaction, set by set: which
// reports are new, told by raising their terminals' acknowledged sequences
// in multi-row upserts; their rows in multi-row inserts; and each delivery
// moved forward by one conditional update. Faults, occurrences, rejections and
// schedule receipts (rare) are applied one by one.
func applyReports(ctx context.Context, st *stmtCache, reports []ReportIn, now time.Time) ([]Applied, error) {
	aps := make([]Applied, len(reports))
	bodies := encodeReports(reports) // on another core while SQLite works
	nums, err := reportingNums(ctx, st, reports)
	if err != nil {
		return nil, err
	}
	fresh, err := newReports(ctx, st, reports, nums)
	if err != nil {
		return nil, err
	}
	if err := insertReports(ctx, st, reports, nums, fresh, <-bodies, now); err != nil {
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
			var num int64
			err := st.QueryRowContext(ctx, `SELECT a.id, n.num FROM alerts a JOIN alert_nums n ON n.id = a.id
				WHERE a.payload_sha = ? AND a.payload_sha != ''`, r.Rejection.PayloadSHA).Scan(&alertID, &num)
			if err == sql.ErrNoRows {
				continue // not a command of ours: forged, tampered, or from elsewhere
			}
			if err != nil {
				return nil, err
			}
			st.alertNums[alertID] = num
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

// newReports says which reports are new, and raises each reporting
// terminal's acknowledged sequence to the highest new one. A terminal
// numbers its reports upward and sends them in order (docs/protocol.md,
// §5), so a report is new when its sequence is above every one stored
// before it: the terminal's acknowledged sequence, and the new ones
// earlier in the batch. Anything else is a repeat (a resend after a lost
// acknowledgement, or an old sequence), acknowledged again unchanged.
//
// Most terminals have one report in a batch: one conditional upsert per
// rowsPerStatement of them raises their sequences and says which rose.
// Only for the rest (several reports of one terminal, repeats) is the
// acknowledged sequence read first. nums[i] is the number of reports[i]'s
// terminal (reportingNums), which keys report_acks
// (migrations/0010_report_numbers.sql).
func newReports(ctx context.Context, st *stmtCache, reports []ReportIn, nums []int64) ([]bool, error) {
	count := map[int64]int{}
	for _, num := range nums {
		count[num]++
	}
	var args []any
	for i, in := range reports {
		if count[nums[i]] == 1 {
			args = append(args, nums[i], int64(in.Report.Seq)) // storable: reportingNums
		}
	}
	raised := map[int64]bool{}
	if err := raiseAcked(ctx, st, args, func(num int64) { raised[num] = true }); err != nil {
		return nil, err
	}
	fresh := make([]bool, len(reports))
	high := map[int64]uint64{} // of the terminals not raised yet
	var unraised []any
	for i, num := range nums {
		if raised[num] {
			fresh[i] = true
		} else if _, ok := high[num]; !ok {
			high[num] = 0 // no report stored yet, unless read below
			unraised = append(unraised, num)
		}
	}
	if len(unraised) == 0 {
		return fresh, nil
	}
	if err := readAcked(ctx, st, unraised, high); err != nil {
		return nil, err
	}
	rose := map[int64]bool{}
	for i, in := range reports {
		if num := nums[i]; !raised[num] && in.Report.Seq > high[num] {
			fresh[i] = true
			high[num] = in.Report.Seq
			rose[num] = true
		}
	}
	args = args[:0]
	for _, num := range unraised {
		if rose[num.(int64)] {
			args = append(args, num, int64(high[num.(int64)]))
		}
	}
	return fresh, raiseAcked(ctx, st, args, func(int64) {})
}

// reportingNums returns the number of each report's terminal, or
// ErrNotFound naming the first reporting terminal that does not exist:
// every terminal is numbered when it is created. It fails a report whose
// sequence SQLite cannot store (above 2^63-1), so that the reports'
// sequences are passed on as int64, which database/sql takes without
// reflection.
func reportingNums(ctx context.Context, st *stmtCache, reports []ReportIn) ([]int64, error) {
	ids := make([]string, len(reports))
	for i, in := range reports {
		if in.Report.Seq > math.MaxInt64 {
			return nil, fmt.Errorf("report %d of terminal %s: sequence above %d", in.Report.Seq, in.TerminalID, int64(math.MaxInt64))
		}
		ids[i] = in.TerminalID
	}
	if err := st.readTerminalNums(ctx, ids); err != nil {
		return nil, err
	}
	nums := make([]int64, len(reports))
	for i, id := range ids {
		num, ok := st.terminalNum(id)
		if !ok {
			return nil, fmt.Errorf("terminal %s: %w", id, ErrNotFound)
		}
		nums[i] = num
	}
	return nums, nil
}

// readAcked reads the acknowledged sequences of the terminals nums into
// high.
func readAcked(ctx context.Context, st *stmtCache, nums []any, high map[int64]uint64) error {
	for lo := 0; lo < len(nums); lo += rowsPerStatement {
		hi := min(lo+rowsPerStatement, len(nums))
		chunk, size := padRows(nums[lo:hi:hi], 1)
		rows, err := st.QueryContext(ctx, readAckedSQL(size), chunk...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var num, seq int64
			if err := rows.Scan(&num, &seq); err != nil {
				rows.Close()
				return err
			}
			high[num] = uint64(seq)
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// raiseAcked raises acknowledged sequences (args: rows of a terminal's
// number and a sequence, each terminal once), rowsPerStatement at a time,
// and calls raised with the number of each terminal whose sequence rose:
// all of them if all rose (raiseAll), else those raiseAckedSQL returns.
func raiseAcked(ctx context.Context, st *stmtCache, args []any, raised func(num int64)) error {
	for lo := 0; lo < len(args); lo += 2 * rowsPerStatement {
		hi := min(lo+2*rowsPerStatement, len(args))
		chunk, size := padRows(args[lo:hi:hi], 2)
		err := errNotAll // for one row, RETURNING costs less than a savepoint
		if n := (hi - lo) / 2; n > 1 {
			err = raiseAll(ctx, st, chunk, size, n, raised)
		}
		if errors.Is(err, errNotAll) {
			var rows *sql.Rows
			rows, err = st.QueryContext(ctx, raiseAckedSQL(size), chunk...)
			if err == nil {
				err = eachNum(rows, raised)
			}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// errNotAll is raiseAll finding that not every row raised its terminal's
// sequence; it has undone its statement.
var errNotAll = errors.New("not every acknowledged sequence rose")

// The savepoint raiseAll undoes its statement to.
const (
	raiseSavepoint = `SAVEPOINT raise_acked`
	raiseUndo      = `ROLLBACK TO raise_acked`
	raiseRelease   = `RELEASE raise_acked`
)

// raiseAll raises the sequences of chunk (n rows padded to size, each
// terminal once) and, if every one rose, calls raised with each terminal:
// the usual batch, where each terminal reports what it has not reported
// before. It learns that from the count of rows changed (a padding row
// changes none), without raiseAckedSQL's RETURNING rows, which cost SQLite
// a temporary table and Go a row each: about a tenth of a receipt's
// instructions (docs/benchmarks.md, "Receipts written per second"). If
// not every one rose, it undoes the statement and returns errNotAll.
func raiseAll(ctx context.Context, st *stmtCache, chunk []any, size, n int, raised func(num int64)) error {
	if _, err := st.ExecContext(ctx, raiseSavepoint); err != nil {
		return err
	}
	res, err := st.ExecContext(ctx, raiseAckedAllSQL(size), chunk...)
	var rose int64
	if err == nil {
		rose, err = res.RowsAffected()
	}
	if err == nil && rose != int64(n) {
		if _, err = st.ExecContext(ctx, raiseUndo); err == nil {
			err = errNotAll
		}
	}
	if _, e := st.ExecContext(ctx, raiseRelease); err == nil {
		err = e
	}
	if err != nil {
		return err
	}
	for i := 0; i < 2*n; i += 2 {
		raised(chunk[i].(int64))
	}
	return nil
}

// eachNum calls each with the first column of each of rows, and closes
// them.
func eachNum(rows *sql.Rows, each func(int64)) error {
	defer rows.Close()
	for rows.Next() {
		var num int64
		if err := rows.Scan(&num); err != nil {
			return err
		}
		each(num)
	}
	return rows.Close()
}

// encodedReports are the reports' bodies, JSON protocol.Report, or why
// one could not be encoded.
type encodedReports struct {
	bodies []string
	err    error
}

// encodeReports encodes the reports' bodies in a goroutine of its own
// (which never blocks: the channel holds its one result).
func encodeReports(reports []ReportIn) <-chan encodedReports {
	out := make(chan encodedReports, 1)
	go func() {
		e := encodedReports{bodies: make([]string, len(reports))}
		for i, in := range reports {
			b, err := reportBody(in.Report)
			if err != nil {
				e.err = fmt.Errorf("encode report %d of terminal %s: %w", in.Report.Seq, in.TerminalID, err)
				break
			}
			e.bodies[i] = string(b)
		}
		out <- e
	}()
	return out
}

// insertReports inserts the rows of the new reports.
func insertReports(ctx context.Context, st *stmtCache, reports []ReportIn, nums []int64, fresh []bool, e encodedReports, now time.Time) error {
	if e.err != nil {
		return e.err
	}
	args := make([]any, 0, 5*len(reports))
	at := any(ms(now)) // boxed once
	for i, in := range reports {
		if fresh[i] {
			args = append(args, nums[i], int64(in.Report.Seq), at, in.Report.Kind, e.bodies[i])
		}
	}
	for len(args) > 0 {
		n := fitRows(len(args) / 5)
		if _, err := st.ExecContext(ctx, insertReportsSQL(n), args[:5*n]...); err != nil {
			return err
		}
		args = args[5*n:]
	}
	return nil
}

// StoredReport is a report as kept.
type StoredReport struct {
	TerminalID string          `json:"terminal_id"`
	ReceivedAt time.Time       `json:"received_at"`
	Report     protocol.Report `json:"report"`
}

// Reports lists a terminal's reports (all terminals when id is empty) of
// kind (all kinds when empty), newest first: the table is in arrival
// order, read backwards until limit are found. A row names its terminal
// by its number (migrations/0010_report_numbers.sql).
func (s *Store) Reports(ctx context.Context, terminalID, kind string, limit int) ([]StoredReport, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT (SELECT id FROM terminal_nums WHERE num = r.terminal_num), r.received_at, r.body
		FROM reports r WHERE (?1 = '' OR r.terminal_num = (SELECT num FROM terminal_nums WHERE id = ?1)) AND (?2 = '' OR r.kind = ?2)
		ORDER BY r.rowid DESC LIMIT ?3`, terminalID, kind, limit)
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
