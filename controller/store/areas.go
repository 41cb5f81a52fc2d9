package store

import (
	"context"
	"database/sql"
	"fmt"

	"dalaba/protocol"
)

// Area is one node of the county's area tree.
type Area struct {
	Code   string `json:"code"`
	Name   string `json:"name"`
	Parent string `json:"parent,omitempty"`
}

// PutArea creates or renames an area. Its parent, if given, must exist.
func (s *Store) PutArea(ctx context.Context, a Area) error {
	if err := protocol.ValidAreaCode(a.Code); err != nil {
		return err
	}
	if a.Name == "" {
		return fmt.Errorf("area %s: name is required", a.Code)
	}
	var parent any
	if a.Parent != "" {
		parent = a.Parent
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO areas(code, name, parent) VALUES(?, ?, ?)
		ON CONFLICT(code) DO UPDATE SET name = excluded.name, parent = excluded.parent`, a.Code, a.Name, parent)
	if err != nil {
		return fmt.Errorf("save area %s: %w", a.Code, err)
	}
	return nil
}

// Areas lists every area, ordered by code.
func (s *Store) Areas(ctx context.Context) ([]Area, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT code, name, COALESCE(parent, '') FROM areas ORDER BY code`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Area{}
	for rows.Next() {
		var a Area
		if err := rows.Scan(&a.Code, &a.Name, &a.Parent); err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// AreaExists reports whether code is in the tree.
func (s *Store) AreaExists(ctx context.Context, code string) (bool, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM areas WHERE code = ?`, code).Scan(&n)
	if err != nil && err != sql.ErrNoRows {
		return false, err
	}
	return n > 0, nil
}
