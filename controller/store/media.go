package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"

	"dalaba/protocol"
)

// Media is a stored audio file, described as commands carry it.
type Media struct {
	protocol.Media
	Name      string    `json:"name"`
	CreatedAt time.Time `json:"created_at"`
}

// PutMedia records a media file; storing the same content twice is a no-op.
func (s *Store) PutMedia(ctx context.Context, m Media) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO media(sha256, name, size, format, duration_ms, chunk_size, first_chunk, chunks, created_at)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(sha256) DO NOTHING`,
		m.SHA256, m.Name, m.Size, m.Format, m.DurationMS, m.ChunkSize, m.FirstChunk, strings.Join(m.Chunks, ","), ms(m.CreatedAt))
	if err != nil {
		return fmt.Errorf("save media %s: %w", m.SHA256, err)
	}
	return nil
}

const mediaCols = `sha256, name, size, format, duration_ms, chunk_size, first_chunk, chunks, created_at`

func scanMedia(row interface{ Scan(...any) error }) (Media, error) {
	var m Media
	var chunks string
	var created int64
	if err := row.Scan(&m.SHA256, &m.Name, &m.Size, &m.Format, &m.DurationMS, &m.ChunkSize, &m.FirstChunk, &chunks, &created); err != nil {
		return m, err
	}
	m.Chunks = strings.Split(chunks, ",")
	m.CreatedAt = fromMS(created)
	return m, nil
}

// MediaByHash reads one media description.
func (s *Store) MediaByHash(ctx context.Context, sha string) (Media, error) {
	m, err := scanMedia(s.r.QueryRowContext(ctx, `SELECT `+mediaCols+` FROM media WHERE sha256 = ?`, sha))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("media %s: %w", sha, ErrNotFound)
	}
	return m, err
}

// MediaList lists media, newest first.
func (s *Store) MediaList(ctx context.Context) ([]Media, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+mediaCols+` FROM media ORDER BY created_at DESC`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Media{}
	for rows.Next() {
		m, err := scanMedia(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, rows.Err()
}
