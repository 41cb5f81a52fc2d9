package store

// The machinery of the hot paths' transactions (receipts, heartbeats):
// multi-row statements in a few fixed shapes, and the statements of a
// transaction prepared once per store.

import (
	"context"
	"database/sql"
	"strings"
	"sync"
)

// A batch writes its rows in multi-row statements of batchSizes rows,
// prepared once (Store.prepareBatchStatements).
const rowsPerStatement = 128

var batchSizes = []int{1, 8, 32, rowsPerStatement}

// batchStatements are the multi-row statements, by rows.
var batchStatements = []func(rows int) string{readTerminalNumsSQL, insertReportsSQL, readAckedSQL, raiseAckedSQL, raiseAckedAllSQL,
	insertDeliveriesSQL}

// hotStatements are the one-row statements run for each row of a batch,
// or for each of its multi-row statements.
var hotStatements = append([]string{setStatusSQL, lastPointSQL, addPointSQL, prunePoints, raiseSavepoint, raiseUndo, raiseRelease},
	advanceDeliverySQLs()...)

// padRows repeats the last row of args (rows of cols values) until there
// are as many rows as the smallest of batchSizes that holds them, for a
// statement that does the same for a repeated row as for one. It returns
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

// fitRows is the largest of batchSizes not above n (n ≥ 1), for a
// statement that must not see a row twice.
func fitRows(n int) int {
	for i := len(batchSizes) - 1; i > 0; i-- {
		if batchSizes[i] <= n {
			return batchSizes[i]
		}
	}
	return batchSizes[0]
}

// valueRows is the placeholders of n rows of cols values: (?, ?), (?, ?).
func valueRows(n, cols int) string {
	row := "(?" + strings.Repeat(", ?", cols-1) + ")"
	return row + strings.Repeat(", "+row, n-1)
}

// shapes builds a multi-row statement's SQL once for each of batchSizes
// and returns it by rows.
func shapes(build func(rows int) string) func(rows int) string {
	sql := make(map[int]string, len(batchSizes))
	for _, n := range batchSizes {
		sql[n] = build(n)
	}
	return func(rows int) string { return sql[rows] }
}

// stmtCache runs a transaction's statements prepared once on the writer
// connection (preparing a multi-row statement costs more than running it),
// and remembers which alert each command belongs to (a batch of receipts
// is mostly about one alert) and the numbers of the alerts and terminals
// it has met (migrations/0009_delivery_numbers.sql).
type stmtCache struct {
	s         *Store
	tx        *sql.Tx
	stmts     map[string]*sql.Stmt
	alerts    map[string]string // command id → alert id
	alertNums map[string]int64  // alert id → number
	termNums  map[string]int64  // terminal id → number, 0 for none
}

func newStmtCache(s *Store, tx *sql.Tx) *stmtCache {
	return &stmtCache{s: s, tx: tx, stmts: map[string]*sql.Stmt{}, alerts: map[string]string{},
		alertNums: map[string]int64{}, termNums: map[string]int64{}}
}

// alertOf returns the id of the alert whose command is cmdID, or
// sql.ErrNoRows.
func (c *stmtCache) alertOf(ctx context.Context, cmdID string) (string, error) {
	if id, ok := c.alerts[cmdID]; ok {
		return id, nil
	}
	var id string
	var num int64
	err := c.QueryRowContext(ctx, `SELECT a.id, n.num FROM alerts a JOIN alert_nums n ON n.id = a.id WHERE a.command_id = ?`, cmdID).Scan(&id, &num)
	if err != nil {
		return "", err
	}
	c.alerts[cmdID], c.alertNums[id] = id, num
	return id, nil
}

// alertNum returns alert id's number, or sql.ErrNoRows.
func (c *stmtCache) alertNum(ctx context.Context, id string) (int64, error) {
	if num, ok := c.alertNums[id]; ok {
		return num, nil
	}
	var num int64
	if err := c.QueryRowContext(ctx, `SELECT num FROM alert_nums WHERE id = ?`, id).Scan(&num); err != nil {
		return 0, err
	}
	c.alertNums[id] = num
	return num, nil
}

var readTerminalNumsSQL = shapes(func(rows int) string {
	return `SELECT id, num FROM terminal_nums WHERE id IN (?` + strings.Repeat(", ?", rows-1) + `)`
})

// readTerminalNums reads the numbers of the terminals ids that it has not
// read yet, rowsPerStatement at a time; terminalNum then has them.
func (c *stmtCache) readTerminalNums(ctx context.Context, ids []string) error {
	var args []any
	c.s.nums.mu.Lock()
	for _, id := range ids {
		if _, ok := c.termNums[id]; ok {
			continue
		}
		if n, ok := c.s.nums.m[id]; ok {
			c.termNums[id] = n
			continue
		}
		c.termNums[id] = 0 // none, unless read below
		args = append(args, id)
	}
	c.s.nums.mu.Unlock()
	for lo := 0; lo < len(args); lo += rowsPerStatement {
		hi := min(lo+rowsPerStatement, len(args))
		chunk, size := padRows(args[lo:hi:hi], 1)
		rows, err := c.QueryContext(ctx, readTerminalNumsSQL(size), chunk...)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			var num int64
			if err := rows.Scan(&id, &num); err != nil {
				rows.Close()
				return err
			}
			c.termNums[id] = num
			c.s.nums.put(id, num)
		}
		if err := rows.Close(); err != nil {
			return err
		}
	}
	return nil
}

// terminalNum returns terminal id's number, read by readTerminalNums, and
// false if it has none.
func (c *stmtCache) terminalNum(id string) (int64, bool) {
	num := c.termNums[id]
	return num, num != 0
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

// terminalNums remembers the terminals' numbers once read: a number never
// changes once given (terminal_nums rows are never deleted). Only
// committed numbers may come in here: rows are added only by
// insertTerminal, whose transactions (a terminal's creation) read no
// numbers through readTerminalNums; a transaction that did both could put
// a number here that its rollback takes back and the next terminal gets.
type terminalNums struct {
	mu sync.Mutex
	m  map[string]int64
}

func (t *terminalNums) put(id string, n int64) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]int64{}
	}
	t.m[id] = n
}
