package store

import (
	"database/sql"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"
)

// oldDB is a database as a controller of an old version left it, filled
// row by row with that version's schema, for a migration test to open
// with the store.
type oldDB struct {
	t    *testing.T
	path string
	db   *sql.DB
}

// newOldDB makes a database with the migrations up to version and the
// test's area tree (county, township, villageA).
func newOldDB(t *testing.T, version int) *oldDB {
	t.Helper()
	path := filepath.Join(t.TempDir(), "dalaba.db")
	o := &oldDB{t: t, path: path, db: openAtVersion(t, path, version)}
	o.exec(`INSERT INTO areas(code, name, parent) VALUES (?, '融安县', NULL), (?, '长安镇', ?), (?, '大巷村', ?)`,
		county, township, county, villageA, township)
	return o
}

// openAtVersion makes a database at path with the migrations up to
// version, as a controller of that version left it.
func openAtVersion(t *testing.T, path string, version int) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(path)+"?_pragma=foreign_keys(ON)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(names)
	for _, name := range names {
		n, _ := strconv.Atoi(strings.SplitN(filepath.Base(name), "_", 2)[0])
		if n > version {
			break
		}
		body, err := migrations.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := db.Exec(string(body)); err != nil {
			t.Fatalf("migration %s: %v", name, err)
		}
	}
	if _, err := db.Exec(fmt.Sprintf(`PRAGMA user_version = %d`, version)); err != nil {
		t.Fatal(err)
	}
	return db
}

func (o *oldDB) exec(q string, args ...any) {
	o.t.Helper()
	if _, err := o.db.Exec(q, args...); err != nil {
		o.t.Fatalf("%.50s: %v", q, err)
	}
}

// terminals adds active terminals in villageA, the i-th of ids with a
// public key made of i.
func (o *oldDB) terminals(ids ...string) {
	o.t.Helper()
	for i, id := range ids {
		o.exec(`INSERT INTO terminals(id, area_code, name, status, public_key, created_at) VALUES (?, ?, ?, 'active', ?, ?)`,
			id, villageA, id, []byte(fmt.Sprintf("%032d", i)), ms(t0))
	}
}

// alerts adds alerts of the given statuses: the i-th with the id ids[i],
// the command id %032x of i+1, created i minutes after t0, expiring an
// hour after t0, signed "signed <id>" and cancelled "cancel <id>".
func (o *oldDB) alerts(ids []string, statuses []string) {
	o.t.Helper()
	for i, id := range ids {
		o.exec(`INSERT INTO alerts(id, command_id, class, msg_type, level, event_type, title, targets, created_at, created_by,
			not_before, expires, status, signed, cancel_signed) VALUES (?, ?, 'emergency', 1, 2, '11000', '防汛预警', '{}', ?, 'admin', ?, ?, ?, ?, ?)`,
			id, fmt.Sprintf("%032x", i+1), ms(t0.Add(time.Duration(i)*time.Minute)), ms(t0), ms(t0.Add(time.Hour)), statuses[i],
			[]byte("signed "+id), []byte("cancel "+id))
	}
}

// migrate closes the old database and opens it with the store, which
// migrates it, and checks that the result is at least version want,
// intact and without a broken reference. The store is closed at the
// test's end.
func (o *oldDB) migrate(want int) *Store {
	o.t.Helper()
	if err := o.db.Close(); err != nil {
		o.t.Fatal(err)
	}
	s, err := Open(o.path)
	if err != nil {
		o.t.Fatal(err)
	}
	o.t.Cleanup(func() { s.Close() })
	var version int
	var check string
	if err := s.w.QueryRow(`PRAGMA user_version`).Scan(&version); err != nil || version < want {
		o.t.Fatalf("user_version %d (%v), want at least %d", version, err, want)
	}
	if err := s.w.QueryRow(`PRAGMA integrity_check`).Scan(&check); err != nil || check != "ok" {
		o.t.Fatalf("integrity_check %q (%v)", check, err)
	}
	rows, err := s.w.Query(`PRAGMA foreign_key_check`)
	if err != nil {
		o.t.Fatal(err)
	}
	defer rows.Close()
	if rows.Next() {
		o.t.Fatal("foreign_key_check found a broken reference")
	}
	return s
}
