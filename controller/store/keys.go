package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
	"errors"
	"fmt"
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
	rows, err := s.r.QueryContext(ctx, `SELECT kid, public_key, created_at, not_after, active FROM issuing_keys ORDER BY active DESC, created_at DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []IssuingKey
	for rows.Next() {
		var k IssuingKey
		var created, notAfter int64
		if err := rows.Scan(&k.KeyID, &k.PublicKey, &created, &notAfter, &k.Active); err != nil {
			return nil, err
		}
		k.CreatedAt, k.NotAfter = fromMS(created), fromMS(notAfter)
		out = append(out, k)
	}
	return out, rows.Err()
}

// AddToken records an API token by its hash.
func (s *Store) AddToken(ctx context.Context, hash, name string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens(hash, name, created_at) VALUES(?, ?, ?)`, hash, name, ms(now))
	if err != nil {
		return fmt.Errorf("save token %s: %w", name, err)
	}
	return nil
}

// TokenName returns the name of a valid, unrevoked token by hash.
func (s *Store) TokenName(ctx context.Context, hash string) (string, error) {
	var name string
	err := s.r.QueryRowContext(ctx, `SELECT name FROM api_tokens WHERE hash = ? AND revoked_at IS NULL`, hash).Scan(&name)
	if errors.Is(err, sql.ErrNoRows) {
		return "", ErrNotFound
	}
	return name, err
}
