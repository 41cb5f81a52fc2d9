package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"dalaba/protocol"
)

// Terminal statuses.
const (
	TerminalEnrolling = "enrolling" // created with a one-time code, key not yet bound
	TerminalActive    = "active"
	TerminalRevoked   = "revoked"
)

// Terminal is one loudspeaker's daemon.
type Terminal struct {
	ID          string            `json:"id"`
	AreaCode    string            `json:"area_code"`
	Name        string            `json:"name"`
	Status      string            `json:"status"`
	PublicKey   ed25519.PublicKey `json:"public_key,omitempty"`
	CreatedAt   time.Time         `json:"created_at"`
	EnrolledAt  time.Time         `json:"enrolled_at,omitempty"`
	Latitude    *float64          `json:"latitude,omitempty"`
	Longitude   *float64          `json:"longitude,omitempty"`
	LastSeen    time.Time         `json:"last_seen,omitempty"`
	State       string            `json:"state"` // offline, idle, playing, fault
	Volume      *int              `json:"volume,omitempty"`
	Firmware    string            `json:"firmware"`
	RelayOK     *bool             `json:"relay_ok,omitempty"`
	AudioOK     *bool             `json:"audio_ok,omitempty"`
	AckedSeq    uint64            `json:"acked_seq"`
	enrollHash  string
	enrollUntil time.Time
}

const terminalCols = `id, area_code, name, status, public_key, created_at, enrolled_at, latitude, longitude,
	last_seen, state, volume, firmware, relay_ok, audio_ok, COALESCE((SELECT a.seq FROM terminal_nums n JOIN report_acks a ON a.terminal_num = n.num WHERE n.id = terminals.id), 0),
	COALESCE(enroll_hash, ''), enroll_until`

func scanTerminal(row interface{ Scan(...any) error }) (Terminal, error) {
	var t Terminal
	var enrolled, seen, until sql.NullInt64
	var created int64
	var lat, lon sql.NullFloat64
	var vol sql.NullInt64
	var relay, audio sql.NullBool
	var acked int64
	var pub []byte
	err := row.Scan(&t.ID, &t.AreaCode, &t.Name, &t.Status, &pub, &created, &enrolled, &lat, &lon,
		&seen, &t.State, &vol, &t.Firmware, &relay, &audio, &acked, &t.enrollHash, &until)
	if err != nil {
		return t, err
	}
	if len(pub) > 0 {
		t.PublicKey = ed25519.PublicKey(pub)
	}
	t.CreatedAt, t.EnrolledAt, t.LastSeen, t.enrollUntil = fromMS(created), nullMS(enrolled), nullMS(seen), nullMS(until)
	if lat.Valid && lon.Valid {
		t.Latitude, t.Longitude = &lat.Float64, &lon.Float64
	}
	if vol.Valid {
		v := int(vol.Int64)
		t.Volume = &v
	}
	if relay.Valid {
		t.RelayOK = &relay.Bool
	}
	if audio.Valid {
		t.AudioOK = &audio.Bool
	}
	t.AckedSeq = uint64(acked)
	return t, nil
}

// NewTerminal is what a technician gives to enroll a terminal.
type NewTerminal struct {
	AreaCode  string
	Name      string
	Latitude  *float64
	Longitude *float64
}

// CreateTerminal adds a terminal awaiting its first connection. The id is the
// next free EBRID in its village: "6" + area code + 10-digit sequence.
// enrollHash is the sha256 of the one-time code, valid until until.
func (s *Store) CreateTerminal(ctx context.Context, nt NewTerminal, enrollHash string, until, now time.Time) (Terminal, error) {
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) (err error) {
		id, err = insertTerminal(ctx, tx, nt, now)
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE terminals SET status = ?, enroll_hash = ?, enroll_until = ? WHERE id = ?`,
			TerminalEnrolling, enrollHash, ms(until), id)
		return err
	})
	if err != nil {
		return Terminal{}, fmt.Errorf("create terminal in %s: %w", nt.AreaCode, err)
	}
	return s.Terminal(ctx, id)
}

// CreateTerminals adds many terminals awaiting their first connection in
// one transaction: all of them or, on any error, none. enrollHashes[i] is
// the one-time code hash of nts[i].
func (s *Store) CreateTerminals(ctx context.Context, nts []NewTerminal, enrollHashes []string, until, now time.Time) ([]Terminal, error) {
	if len(nts) != len(enrollHashes) {
		return nil, fmt.Errorf("create terminals: %d terminals but %d enrollment codes", len(nts), len(enrollHashes))
	}
	ids := make([]string, len(nts))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		for i, nt := range nts {
			id, err := insertTerminal(ctx, tx, nt, now)
			if err != nil {
				return fmt.Errorf("terminal %d (%s in %s): %w", i+1, nt.Name, nt.AreaCode, err)
			}
			if _, err := tx.ExecContext(ctx, `UPDATE terminals SET status = ?, enroll_hash = ?, enroll_until = ? WHERE id = ?`,
				TerminalEnrolling, enrollHashes[i], ms(until), id); err != nil {
				return err
			}
			ids[i] = id
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("create terminals: %w", err)
	}
	out := make([]Terminal, len(ids))
	for i, id := range ids {
		if out[i], err = s.Terminal(ctx, id); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func insertTerminal(ctx context.Context, tx *sql.Tx, nt NewTerminal, now time.Time) (string, error) {
	if err := protocol.ValidAreaCode(nt.AreaCode); err != nil {
		return "", err
	}
	if strings.TrimSpace(nt.Name) == "" {
		return "", errors.New("terminal name is required")
	}
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM areas WHERE code = ?`, nt.AreaCode).Scan(&n); err != nil {
		return "", err
	}
	if n == 0 {
		return "", fmt.Errorf("area %s is not in the area tree; add it first", nt.AreaCode)
	}
	prefix := "6" + nt.AreaCode
	var max sql.NullString
	// A range on the primary key, not LIKE (which cannot use the index):
	// ids are digits, and ':' sorts right after '9'.
	if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM terminals WHERE id >= ? AND id < ?`, prefix, prefix+":").Scan(&max); err != nil {
		return "", err
	}
	next := int64(1)
	if max.Valid {
		fmt.Sscanf(max.String[len(prefix):], "%d", &next)
		next++
	}
	id := fmt.Sprintf("%s%010d", prefix, next)
	var lat, lon any
	if nt.Latitude != nil && nt.Longitude != nil {
		lat, lon = *nt.Latitude, *nt.Longitude
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO terminals(id, area_code, name, status, created_at, latitude, longitude)
		VALUES(?, ?, ?, ?, ?, ?, ?)`, id, nt.AreaCode, nt.Name, TerminalEnrolling, ms(now), lat, lon); err != nil {
		return "", err
	}
	// Its number, for its reports and deliveries (migrations/0010_report_numbers.sql).
	_, err := tx.ExecContext(ctx, `INSERT INTO terminal_nums(id) VALUES(?)`, id)
	return id, err
}

// Terminal reads one terminal.
func (s *Store) Terminal(ctx context.Context, id string) (Terminal, error) {
	t, err := scanTerminal(s.r.QueryRowContext(ctx, `SELECT `+terminalCols+` FROM terminals WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("terminal %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	s.statuses.overlay(&t)
	return t, nil
}

// TerminalByKey finds the terminal holding a public key.
func (s *Store) TerminalByKey(ctx context.Context, pub ed25519.PublicKey) (Terminal, error) {
	t, err := scanTerminal(s.r.QueryRowContext(ctx, `SELECT `+terminalCols+` FROM terminals WHERE public_key = ?`, []byte(pub)))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("terminal with key %s: %w", protocol.KeyID(pub), ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	s.statuses.overlay(&t)
	return t, nil
}

// ActiveTargets lists, in id order, the active terminals that t reaches.
// An alert asks it before anything is sent, so it reads the two columns
// that decide, not whole rows: at 5,000 terminals Terminals took about
// 100 ms here (each row's report sequence is a subquery), which every
// loudspeaker waited for.
func (s *Store) ActiveTargets(ctx context.Context, t protocol.Targets) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, area_code FROM terminals WHERE status = ? ORDER BY id`, TerminalActive)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id, area string
		if err := rows.Scan(&id, &area); err != nil {
			return nil, err
		}
		if t.Includes(id, area) {
			out = append(out, id)
		}
	}
	return out, rows.Err()
}

// Terminals lists terminals inside area (all when area is empty).
func (s *Store) Terminals(ctx context.Context, area string) ([]Terminal, error) {
	q, args := `SELECT `+terminalCols+` FROM terminals`, []any{}
	if area != "" {
		q += ` WHERE area_code LIKE ?`
		args = append(args, protocol.AreaLevelPrefix(area)+"%")
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY id`, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Terminal{}
	for rows.Next() {
		t, err := scanTerminal(rows)
		if err != nil {
			return nil, err
		}
		s.statuses.overlay(&t)
		out = append(out, t)
	}
	return out, rows.Err()
}

// ErrEnrollCode is returned when an enrollment code is wrong or expired.
var ErrEnrollCode = errors.New("enrollment code is wrong, used or expired")

// enrollLookup finds the terminal a one-time code's hash enrols, through
// the index of codes waiting (migrations/0011_enroll_index.sql).
const enrollLookup = `SELECT id, enroll_until FROM terminals WHERE enroll_hash = ? AND status = ?`

// Enroll binds pub to the terminal whose one-time code hashes to codeHash.
// The code is consumed.
func (s *Store) Enroll(ctx context.Context, codeHash string, pub ed25519.PublicKey, now time.Time) (Terminal, error) {
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var until int64
		err := tx.QueryRowContext(ctx, enrollLookup, codeHash, TerminalEnrolling).Scan(&id, &until)
		if errors.Is(err, sql.ErrNoRows) {
			return ErrEnrollCode
		}
		if err != nil {
			return err
		}
		if now.UnixMilli() > until {
			return ErrEnrollCode
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_terminals WHERE public_key = ?`, []byte(pub)); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE terminals SET status = ?, public_key = ?, enroll_hash = NULL, enroll_until = NULL, enrolled_at = ? WHERE id = ?`,
			TerminalActive, []byte(pub), ms(now), id)
		return err
	})
	if err != nil {
		return Terminal{}, fmt.Errorf("enroll terminal: %w", err)
	}
	return s.Terminal(ctx, id)
}

// Revoke stops a terminal from connecting or receiving anything.
func (s *Store) Revoke(ctx context.Context, id string) error {
	s.statuses.write.Lock()
	defer s.statuses.write.Unlock()
	res, err := s.w.ExecContext(ctx, `UPDATE terminals SET status = ?, enroll_hash = NULL, state = 'offline' WHERE id = ?`, TerminalRevoked, id)
	if err != nil {
		return fmt.Errorf("revoke terminal %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke terminal %s: %w", id, ErrNotFound)
	}
	s.statuses.offline(id)
	return nil
}

// Pending is a terminal that connected with an unknown key and waits for a
// technician's approval.
type Pending struct {
	KeyID      string            `json:"kid"`
	PublicKey  ed25519.PublicKey `json:"public_key"`
	FirstSeen  time.Time         `json:"first_seen"`
	LastSeen   time.Time         `json:"last_seen"`
	RemoteAddr string            `json:"remote_addr"`
	Hostname   string            `json:"hostname"`
	Firmware   string            `json:"firmware"`
}

// NotePending records (or refreshes) an unknown terminal's visit.
func (s *Store) NotePending(ctx context.Context, p Pending) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO pending_terminals(public_key, kid, first_seen, last_seen, remote_addr, hostname, firmware)
		VALUES(?, ?, ?, ?, ?, ?, ?) ON CONFLICT(public_key) DO UPDATE SET last_seen = excluded.last_seen,
		remote_addr = excluded.remote_addr, hostname = excluded.hostname, firmware = excluded.firmware`,
		[]byte(p.PublicKey), protocol.KeyID(p.PublicKey), ms(p.FirstSeen), ms(p.LastSeen), p.RemoteAddr, p.Hostname, p.Firmware)
	return err
}

// PendingTerminals lists terminals waiting for approval.
func (s *Store) PendingTerminals(ctx context.Context) ([]Pending, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, public_key, first_seen, last_seen, remote_addr, hostname, firmware FROM pending_terminals ORDER BY first_seen`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Pending{}
	for rows.Next() {
		var p Pending
		var first, last int64
		if err := rows.Scan(&p.KeyID, &p.PublicKey, &first, &last, &p.RemoteAddr, &p.Hostname, &p.Firmware); err != nil {
			return nil, err
		}
		p.FirstSeen, p.LastSeen = fromMS(first), fromMS(last)
		out = append(out, p)
	}
	return out, rows.Err()
}

// ApprovePending turns a pending terminal into an active one.
func (s *Store) ApprovePending(ctx context.Context, kid string, nt NewTerminal, now time.Time) (Terminal, error) {
	var id string
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var pub []byte
		err := tx.QueryRowContext(ctx, `SELECT public_key FROM pending_terminals WHERE kid = ?`, kid).Scan(&pub)
		if errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("pending terminal %s: %w", kid, ErrNotFound)
		}
		if err != nil {
			return err
		}
		if id, err = insertTerminal(ctx, tx, nt, now); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM pending_terminals WHERE kid = ?`, kid); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `UPDATE terminals SET status = ?, public_key = ?, enrolled_at = ? WHERE id = ?`, TerminalActive, pub, ms(now), id)
		return err
	})
	if err != nil {
		return Terminal{}, fmt.Errorf("approve terminal %s: %w", kid, err)
	}
	return s.Terminal(ctx, id)
}
