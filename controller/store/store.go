// Package store keeps the controller's state in SQLite: areas, terminals,
// media, alerts, deliveries and the reports terminals send. It is the only
// package that speaks SQL. One writer connection, WAL, embedded migrations.
package store

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "modernc.org/sqlite" // the pure-Go SQLite driver
)

//go:embed migrations/*.sql
var migrations embed.FS

// ErrNotFound is returned when a row does not exist.
var ErrNotFound = errors.New("not found")

// Store is the controller's database.
type Store struct {
	w *sql.DB // the one writer connection
	r *sql.DB // readers

	prepared map[string]*sql.Stmt // batch statements prepared on w; read-only after Open
	durable  sync.Mutex           // held while w runs with synchronous=FULL
	points   lastPoints           // each terminal's last heartbeat history point (heartbeat.go)
	nums     terminalNums         // the terminals' numbers, once read (batch.go)
	statuses statuses             // each terminal's status row as last written, and what is newer (terminals.go)
}

// Open opens (creating if needed) the database at path and migrates it.
func Open(path string) (*Store, error) {
	// synchronous=NORMAL: a commit survives the process ending, and
	// durableTx syncs what is acknowledged. A page cache of 64 MB and
	// temporary tables in memory for the batches.
	dsn := "file:" + filepath.ToSlash(path) + "?_pragma=journal_mode(WAL)&_pragma=synchronous(NORMAL)&_pragma=busy_timeout(10000)&_pragma=foreign_keys(ON)&_pragma=cache_size(-65536)&_pragma=temp_store(MEMORY)&_txlock=immediate"
	w, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	w.SetMaxOpenConns(1)
	r, err := sql.Open("sqlite", dsn+"&mode=ro")
	if err != nil {
		w.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	r.SetMaxOpenConns(4)
	r.SetMaxIdleConns(4) // kept open: reopening needs file descriptors, which a reconnect storm can use up
	s := &Store{w: w, r: r, prepared: map[string]*sql.Stmt{}}
	if err := s.migrate(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("migrate database %s: %w", path, err)
	}
	if err := s.prepareBatchStatements(context.Background()); err != nil {
		s.Close()
		return nil, fmt.Errorf("open database %s: %w", path, err)
	}
	return s, nil
}

// Close closes the database.
func (s *Store) Close() error {
	return errors.Join(s.r.Close(), s.w.Close())
}

func (s *Store) migrate(ctx context.Context) error {
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		return err
	}
	sort.Strings(names)
	var have int
	if _, err := s.w.ExecContext(ctx, `PRAGMA user_version`); err != nil {
		return err
	}
	if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&have); err != nil {
		return err
	}
	for _, name := range names {
		n, err := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if err != nil {
			return fmt.Errorf("migration %s: name must start with its number", name)
		}
		if n <= have {
			continue
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			return err
		}
		tx, err := s.w.BeginTx(ctx, nil)
		if err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, string(body)); err != nil {
			tx.Rollback()
			return fmt.Errorf("migration %s: %w", name, err)
		}
		if _, err := tx.ExecContext(ctx, fmt.Sprintf(`PRAGMA user_version = %d`, n)); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return err
		}
	}
	return nil
}

// tx runs fn in one write transaction.
func (s *Store) tx(ctx context.Context, fn func(*sql.Tx) error) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	if err := fn(tx); err != nil {
		tx.Rollback()
		return err
	}
	return tx.Commit()
}

// prepareBatchStatements prepares the hot paths' multi-row statements on
// the writer connection, once (preparing one costs more than running
// it); a transaction runs them with tx.StmtContext.
func (s *Store) prepareBatchStatements(ctx context.Context) error {
	for _, shape := range batchStatements {
		for _, n := range batchSizes {
			q := shape(n)
			st, err := s.w.PrepareContext(ctx, q)
			if err != nil {
				return fmt.Errorf("prepare %.60s…: %w", q, err)
			}
			s.prepared[q] = st
		}
	}
	for _, q := range hotStatements {
		st, err := s.w.PrepareContext(ctx, q)
		if err != nil {
			return fmt.Errorf("prepare %.60s…: %w", q, err)
		}
		s.prepared[q] = st
	}
	return nil
}

// durableTx is tx with its commit synced to disk (synchronous=FULL) before
// it returns, for what the controller acknowledges: a terminal drops a
// report from its spool once acknowledged, so a report lost at a power
// cut would not come again. Other writes keep synchronous=NORMAL (in WAL: a
// commit survives the process ending, the last ones before a checkpoint
// may be lost at a power cut, the database is never corrupted), where an
// fsync per transaction would double the cost of small writes.
func (s *Store) durableTx(ctx context.Context, fn func(*sql.Tx) error) error {
	s.durable.Lock()
	defer s.durable.Unlock()
	if _, err := s.w.ExecContext(ctx, `PRAGMA synchronous = FULL`); err != nil {
		return err
	}
	// A transaction of another caller between these runs with FULL too:
	// slower, never less safe.
	defer s.w.ExecContext(context.WithoutCancel(ctx), `PRAGMA synchronous = NORMAL`)
	return s.tx(ctx, fn)
}

func ms(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMS(v int64) time.Time {
	if v == 0 {
		return time.Time{}
	}
	return time.UnixMilli(v)
}

func nullMS(v sql.NullInt64) time.Time {
	if !v.Valid {
		return time.Time{}
	}
	return fromMS(v.Int64)
}

// Meta reads a setting; ErrNotFound if unset.
func (s *Store) Meta(ctx context.Context, key string) (string, error) {
	var v string
	err := s.r.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = ?`, key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return "", fmt.Errorf("setting %s: %w", key, ErrNotFound)
	}
	return v, err
}

// SetMeta writes a setting.
func (s *Store) SetMeta(ctx context.Context, key, value string) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES(?, ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`, key, value)
	return err
}
