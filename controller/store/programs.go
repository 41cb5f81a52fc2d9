package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"dalaba/controller/schedule"
	"dalaba/protocol"
)

// Program is a county's routine broadcast: a playlist played to a set of
// targets at the instants its rule gives.
type Program struct {
	ID          string           `json:"id"`
	Title       string           `json:"title"`
	Media       []string         `json:"media"` // sha256s, in play order
	Targets     protocol.Targets `json:"targets"`
	Volume      int              `json:"volume"`       // 0: each terminal's own
	Priority    int              `json:"priority"`     // place on protocol's ladder
	Repeat      int              `json:"repeat"`       // times the playlist plays
	LateMinutes int              `json:"late_minutes"` // how late it may still start
	Rule        schedule.Rule    `json:"rule"`
	CreatedAt   time.Time        `json:"created_at"`
	CreatedBy   string           `json:"created_by"`
	UpdatedAt   time.Time        `json:"updated_at"`
	UpdatedBy   string           `json:"updated_by"`
	EffectiveAt time.Time        `json:"effective_at"` // rule, targets or validity last changed
	DeletedAt   time.Time        `json:"deleted_at,omitzero"`
}

const programCols = `id, title, media, targets, volume, priority, repeat, late_minutes, rule, created_at, created_by,
	updated_at, updated_by, effective_at, deleted_at`

func scanProgram(row interface{ Scan(...any) error }) (Program, error) {
	var p Program
	var media, targets, rule string
	var created, updated, effective int64
	var deleted sql.NullInt64
	err := row.Scan(&p.ID, &p.Title, &media, &targets, &p.Volume, &p.Priority, &p.Repeat, &p.LateMinutes, &rule,
		&created, &p.CreatedBy, &updated, &p.UpdatedBy, &effective, &deleted)
	if err != nil {
		return p, err
	}
	if media != "" {
		p.Media = strings.Split(media, ",")
	}
	if err := json.Unmarshal([]byte(targets), &p.Targets); err != nil {
		return p, fmt.Errorf("program %s: targets: %w", p.ID, err)
	}
	if err := json.Unmarshal([]byte(rule), &p.Rule); err != nil {
		return p, fmt.Errorf("program %s: rule: %w", p.ID, err)
	}
	p.CreatedAt, p.UpdatedAt, p.EffectiveAt, p.DeletedAt = fromMS(created), fromMS(updated), fromMS(effective), nullMS(deleted)
	return p, nil
}

func programJSON(p Program) (targets, rule string, err error) {
	t, err := json.Marshal(p.Targets)
	if err != nil {
		return "", "", err
	}
	r, err := json.Marshal(p.Rule)
	return string(t), string(r), err
}

// CreateProgram stores a new program; ErrExists if its id is taken.
func (s *Store) CreateProgram(ctx context.Context, p Program) error {
	targets, rule, err := programJSON(p)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `INSERT INTO programs(`+programCols+`) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULL)
		ON CONFLICT(id) DO NOTHING`, p.ID, p.Title, strings.Join(p.Media, ","), targets, p.Volume, p.Priority, p.Repeat, p.LateMinutes,
		rule, ms(p.CreatedAt), p.CreatedBy, ms(p.UpdatedAt), p.UpdatedBy, ms(p.EffectiveAt))
	if err != nil {
		return fmt.Errorf("save program %s: %w", p.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("program %s: %w", p.ID, ErrExists)
	}
	return nil
}

// UpdateProgram replaces a program's fields (not its creation); a deleted
// program is not found.
func (s *Store) UpdateProgram(ctx context.Context, p Program) error {
	targets, rule, err := programJSON(p)
	if err != nil {
		return err
	}
	res, err := s.w.ExecContext(ctx, `UPDATE programs SET title = ?, media = ?, targets = ?, volume = ?, priority = ?, repeat = ?,
		late_minutes = ?, rule = ?, updated_at = ?, updated_by = ?, effective_at = ? WHERE id = ? AND deleted_at IS NULL`,
		p.Title, strings.Join(p.Media, ","), targets, p.Volume, p.Priority, p.Repeat, p.LateMinutes, rule,
		ms(p.UpdatedAt), p.UpdatedBy, ms(p.EffectiveAt), p.ID)
	if err != nil {
		return fmt.Errorf("save program %s: %w", p.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("program %s: %w", p.ID, ErrNotFound)
	}
	return nil
}

// DeleteProgram ends a program. Its row stays, so its past occurrences can
// still be explained.
func (s *Store) DeleteProgram(ctx context.Context, id, by string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE programs SET deleted_at = ?, updated_at = ?, updated_by = ? WHERE id = ? AND deleted_at IS NULL`,
		ms(now), ms(now), by, id)
	if err != nil {
		return fmt.Errorf("delete program %s: %w", id, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("program %s: %w", id, ErrNotFound)
	}
	return nil
}

// Program reads one program, deleted or not.
func (s *Store) Program(ctx context.Context, id string) (Program, error) {
	p, err := scanProgram(s.r.QueryRowContext(ctx, `SELECT `+programCols+` FROM programs WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("program %s: %w", id, ErrNotFound)
	}
	return p, err
}

// Programs lists the programs, oldest first; deleted ones only when asked.
func (s *Store) Programs(ctx context.Context, withDeleted bool) ([]Program, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+programCols+` FROM programs WHERE (? OR deleted_at IS NULL) ORDER BY created_at, id`, withDeleted)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Program{}
	for rows.Next() {
		p, err := scanProgram(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, p)
	}
	return out, rows.Err()
}
