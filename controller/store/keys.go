package store

import (
	"context"
	"crypto/ed25519"
	"database/sql"
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
