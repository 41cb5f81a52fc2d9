package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
)

// LastHeartbeat returns the raw JSON of a terminal's last heartbeat, nil if
// it has sent none. Only the last one is kept: the live stream carries each.
func (s *Store) LastHeartbeat(ctx context.Context, id string) ([]byte, error) {
	var hb sql.NullString
	err := s.r.QueryRowContext(ctx, `SELECT heartbeat FROM terminals WHERE id = ?`, id).Scan(&hb)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("terminal %s: %w", id, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("heartbeat of terminal %s: %w", id, err)
	}
	if !hb.Valid || hb.String == "" {
		return nil, nil
	}
	return []byte(hb.String), nil
}
