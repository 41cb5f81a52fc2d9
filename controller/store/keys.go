package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"fmt"
	"strings"
	"time"

	"dalaba/protocol"
)

// IssuingKey is the public half of a key the controller signs commands with.
// The private half lives in a file in the data folder, never in the database.
type IssuingKey struct {
	KeyID     string            `json:"kid"`
	PublicKey ed25519.PublicKey `json:"public_key"`
	CreatedAt time.Time         `json:"created_at"`
	NotAfter  time.Time         `json:"not_after"`
	Active    bool              `json:"active"`
	Retired   time.Time         `json:"retired_at,omitempty"`
}

// AddIssuingKey records a key; when active, it becomes the only active one.
func (s *Store) AddIssuingKey(ctx context.Context, k IssuingKey) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if k.Active {
			if _, err := tx.ExecContext(ctx, `UPDATE issuing_keys SET active = 0`); err != nil {
				return err
			}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO issuing_keys(kid, public_key, created_at, not_after, active) VALUES(?, ?, ?, ?, ?)`,
			protocol.KeyID(k.PublicKey), []byte(k.PublicKey), ms(k.CreatedAt), ms(k.NotAfter), k.Active)
		return err
	})
}

// IssuingKeys lists the keys, active first.
func (s *Store) IssuingKeys(ctx context.Context) ([]IssuingKey, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT kid, public_key, created_at, not_after, active, retired_at FROM issuing_keys ORDER BY active DESC, created_at DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IssuingKey
	for rows.Next() {
		var k IssuingKey
		var created, notAfter int64
		var retired sql.NullInt64
		if err := rows.Scan(&k.KeyID, &k.PublicKey, &created, &notAfter, &k.Active, &retired); err != nil {
			return nil, err
		}
		k.CreatedAt, k.NotAfter, k.Retired = fromMS(created), fromMS(notAfter), nullMS(retired)
		out = append(out, k)
	}
	return out, rows.Err()
}

// RetireKey marks an inactive key retired: terminals are told to stop
// trusting it.
func (s *Store) RetireKey(ctx context.Context, kid string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE issuing_keys SET retired_at = ? WHERE kid = ? AND active = 0 AND retired_at IS NULL`, ms(now), kid)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("issuing key %s (not found, active, or already retired): %w", kid, ErrNotFound)
	}
	return nil
}

// TerminalKeys is the issuing keys a terminal said it trusts, by key id.
type TerminalKeys struct {
	TerminalID string
	KeyIDs     []string
}

// SetTerminalKeys records, in one transaction and in order, the key ids
// each terminal said it trusts, and reports which changed: most terminals
// name the same keys each time they connect, and those rows are not
// written.
func (s *Store) SetTerminalKeys(ctx context.Context, ks []TerminalKeys) ([]bool, []error) {
	changed, errs := make([]bool, len(ks)), make([]error, len(ks))
	err := s.tx(ctx, func(tx *sql.Tx) error {
		st, err := tx.PrepareContext(ctx, `UPDATE terminals SET key_ids = ?1 WHERE id = ?2 AND key_ids IS NOT ?1`)
		if err != nil {
			return err
		}
		defer st.Close()
		for i, k := range ks {
			res, err := st.ExecContext(ctx, strings.Join(k.KeyIDs, ","), k.TerminalID)
			if err != nil {
				return err
			}
			n, _ := res.RowsAffected()
			changed[i] = n > 0
		}
		return nil
	})
	if err != nil {
		for i := range errs {
			errs[i] = fmt.Errorf("record terminals' keys: %w", err)
		}
		clear(changed)
	}
	return changed, errs
}

// TerminalsLackingKey counts active terminals whose last hello did not
// name kid.
func (s *Store) TerminalsLackingKey(ctx context.Context, kid string) ([]string, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id FROM terminals WHERE status = 'active' AND ',' || key_ids || ',' NOT LIKE ?`, "%,"+kid+",%")
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			return nil, err
		}
		out = append(out, id)
	}
	return out, rows.Err()
}
