package store

// The machinery of the hot paths' transactions (receipts, heartbeats):
// multi-row statements in a few fixed shapes, and the statements of a
// transaction prepared once per store.

import (
	"context"
	"database/sql"
	"strings"
)

// A batch writes its rows in multi-row statements of batchSizes rows,
// prepared once (Store.prepareBatchStatements).
const rowsPerStatement = 128

var batchSizes = []int{1, 8, 32, rowsPerStatement}

// batchStatements are the multi-row statements, by rows.
var batchStatements = []func(rows int) string{insertReportsSQL, readAckedSQL, raiseAckedSQL, raiseAckedAllSQL}

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
