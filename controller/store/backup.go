package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Backup writes a consistent copy of the database at path into dest, while
// a controller may be writing it: SQLite's VACUUM INTO reads the database
// in one transaction, so the copy holds every transaction committed before
// it began and nothing after. The copy is built under a temporary name,
// checked with PRAGMA integrity_check, synced and renamed, so dest is never
// a half-written file. dest must not exist.
func Backup(ctx context.Context, path, dest string) error {
	if _, err := os.Stat(path); err != nil {
		return fmt.Errorf("back up: database %s: %w", path, err)
	}
	if _, err := os.Stat(dest); err == nil {
		return fmt.Errorf("back up: %s already exists; name a new file", dest)
	} else if !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("back up: %w", err)
	}
	tmp := filepath.Join(filepath.Dir(dest), "."+filepath.Base(dest)+".partial")
	os.Remove(tmp)
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return fmt.Errorf("back up: open %s: %w", path, err)
	}
	defer db.Close()
	if _, err := db.ExecContext(ctx, `VACUUM INTO ?`, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("back up %s into %s: %w", path, dest, err)
	}
	if err := checkCopy(ctx, tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("back up %s: the copy fails its check: %w", path, err)
	}
	if err := syncFile(tmp); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("back up: %w", err)
	}
	if err := os.Rename(tmp, dest); err != nil {
		os.Remove(tmp)
		return fmt.Errorf("back up: %w", err)
	}
	return syncFile(filepath.Dir(dest))
}

// checkCopy runs SQLite's integrity check on the database file at path.
func checkCopy(ctx context.Context, path string) error {
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?mode=ro")
	if err != nil {
		return err
	}
	defer db.Close()
	var res string
	if err := db.QueryRowContext(ctx, `PRAGMA integrity_check`).Scan(&res); err != nil {
		return err
	}
	if res != "ok" {
		return errors.New(res)
	}
	return nil
}

func syncFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}
