package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// User is an operator.
type User struct {
	ID         int64     `json:"id"`
	Name       string    `json:"name"`
	Display    string    `json:"display"`
	Roles      []string  `json:"roles"`
	Areas      []string  `json:"areas"`
	MustChange bool      `json:"must_change_password"`
	Disabled   bool      `json:"disabled"`
	CreatedAt  time.Time `json:"created_at"`
	PasswordAt time.Time `json:"password_changed_at"`
	Password   string    `json:"-"` // argon2id encoding
}

const userCols = `id, name, display, password, must_change, roles, areas, disabled, created_at, password_at`

func scanUser(row interface{ Scan(...any) error }) (User, error) {
	var u User
	var roles, areas string
	var created, pwAt int64
	err := row.Scan(&u.ID, &u.Name, &u.Display, &u.Password, &u.MustChange, &roles, &areas, &u.Disabled, &created, &pwAt)
	u.Roles, u.Areas = splitList(roles), splitList(areas)
	u.CreatedAt, u.PasswordAt = fromMS(created), fromMS(pwAt)
	return u, err
}

func splitList(s string) []string {
	if s == "" {
		return []string{}
	}
	return strings.Split(s, ",")
}

// ErrExists is returned when creating something whose name is taken.
var ErrExists = errors.New("already exists")

// CreateUser adds an operator.
func (s *Store) CreateUser(ctx context.Context, u User, now time.Time) (User, error) {
	res, err := s.w.ExecContext(ctx, `INSERT INTO users(name, display, password, must_change, roles, areas, created_at, password_at)
		VALUES(?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT(name) DO NOTHING`,
		u.Name, u.Display, u.Password, u.MustChange, strings.Join(u.Roles, ","), strings.Join(u.Areas, ","), ms(now), ms(now))
	if err != nil {
		return User{}, fmt.Errorf("create user %s: %w", u.Name, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return User{}, fmt.Errorf("user %s: %w", u.Name, ErrExists)
	}
	id, _ := res.LastInsertId()
	return s.UserByID(ctx, id)
}

// UserByName reads a user by sign-in name.
func (s *Store) UserByName(ctx context.Context, name string) (User, error) {
	u, err := scanUser(s.r.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE name = ?`, name))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %s: %w", name, ErrNotFound)
	}
	return u, err
}

// UserByID reads a user by id.
func (s *Store) UserByID(ctx context.Context, id int64) (User, error) {
	u, err := scanUser(s.w.QueryRowContext(ctx, `SELECT `+userCols+` FROM users WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return u, fmt.Errorf("user %d: %w", id, ErrNotFound)
	}
	return u, err
}

// Users lists every user by name.
func (s *Store) Users(ctx context.Context) ([]User, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+userCols+` FROM users ORDER BY name`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []User{}
	for rows.Next() {
		u, err := scanUser(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, u)
	}
	return out, rows.Err()
}

// UpdateUser changes display name, roles, areas and disabled; disabling a
// user ends their sessions and revokes their tokens in the same transaction.
func (s *Store) UpdateUser(ctx context.Context, u User, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE users SET display = ?, roles = ?, areas = ?, disabled = ? WHERE id = ?`,
			u.Display, strings.Join(u.Roles, ","), strings.Join(u.Areas, ","), u.Disabled, u.ID)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("user %d: %w", u.ID, ErrNotFound)
		}
		if u.Disabled {
			return endAccess(ctx, tx, u.ID, now)
		}
		return nil
	})
}

func endAccess(ctx context.Context, tx *sql.Tx, userID int64, now time.Time) error {
	if _, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ?`, userID); err != nil {
		return err
	}
	_, err := tx.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE user_id = ? AND revoked_at IS NULL`, ms(now), userID)
	return err
}

// SetPassword stores a new password hash. mustChange marks a one-time
// password. Every session of the user ends except keep (the hash of the
// session that made the change, or "").
func (s *Store) SetPassword(ctx context.Context, id int64, hash string, mustChange bool, keep string, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE users SET password = ?, must_change = ?, password_at = ? WHERE id = ?`, hash, mustChange, ms(now), id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM sessions WHERE user_id = ? AND hash != ?`, id, keep)
		return err
	})
}

// Session is a signed-in browser.
type Session struct {
	Hash      string
	UserID    int64
	CSRF      string
	Source    string
	CreatedAt time.Time
	LastUsed  time.Time
	ExpiresAt time.Time
}

// CreateSession records a session by the hash of its cookie value.
func (s *Store) CreateSession(ctx context.Context, ss Session) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO sessions(hash, user_id, csrf, source, created_at, last_used, expires_at) VALUES(?, ?, ?, ?, ?, ?, ?)`,
		ss.Hash, ss.UserID, ss.CSRF, ss.Source, ms(ss.CreatedAt), ms(ss.LastUsed), ms(ss.ExpiresAt))
	return err
}

// SessionByHash reads a session.
func (s *Store) SessionByHash(ctx context.Context, hash string) (Session, error) {
	var ss Session
	var created, last, exp int64
	err := s.r.QueryRowContext(ctx, `SELECT hash, user_id, csrf, source, created_at, last_used, expires_at FROM sessions WHERE hash = ?`, hash).
		Scan(&ss.Hash, &ss.UserID, &ss.CSRF, &ss.Source, &created, &last, &exp)
	if errors.Is(err, sql.ErrNoRows) {
		return ss, ErrNotFound
	}
	ss.CreatedAt, ss.LastUsed, ss.ExpiresAt = fromMS(created), fromMS(last), fromMS(exp)
	return ss, err
}

// TouchSession records use of a session.
func (s *Store) TouchSession(ctx context.Context, hash string, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE sessions SET last_used = ? WHERE hash = ?`, ms(now), hash)
	return err
}

// DeleteSession signs one session out.
func (s *Store) DeleteSession(ctx context.Context, hash string) error {
	_, err := s.w.ExecContext(ctx, `DELETE FROM sessions WHERE hash = ?`, hash)
	return err
}

// DeleteUserSessions signs a user out everywhere and revokes their API
// tokens.
func (s *Store) DeleteUserSessions(ctx context.Context, userID int64, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error { return endAccess(ctx, tx, userID, now) })
}

// Token is an API token's record (never the token itself).
type Token struct {
	Hash      string    `json:"-"`
	ID        string    `json:"id"` // first 12 hex digits of the hash, to name it
	Name      string    `json:"name"`
	UserID    int64     `json:"user_id"`
	CreatedAt time.Time `json:"created_at"`
	Revoked   bool      `json:"revoked"`
}

// AddUserToken records an API token of a user by its hash.
func (s *Store) AddUserToken(ctx context.Context, hash, name string, userID int64, now time.Time) error {
	_, err := s.w.ExecContext(ctx, `INSERT INTO api_tokens(hash, name, created_at, user_id) VALUES(?, ?, ?, ?)`, hash, name, ms(now), userID)
	if err != nil {
		return fmt.Errorf("save token %s: %w", name, err)
	}
	return nil
}

// TokenUser returns the user of a valid, unrevoked token by hash.
func (s *Store) TokenUser(ctx context.Context, hash string) (User, error) {
	var id sql.NullInt64
	err := s.r.QueryRowContext(ctx, `SELECT user_id FROM api_tokens WHERE hash = ? AND revoked_at IS NULL`, hash).Scan(&id)
	if errors.Is(err, sql.ErrNoRows) || err == nil && !id.Valid {
		return User{}, ErrNotFound
	}
	if err != nil {
		return User{}, err
	}
	return s.UserByID(ctx, id.Int64)
}

// Tokens lists a user's tokens (everyone's when userID is 0).
func (s *Store) Tokens(ctx context.Context, userID int64) ([]Token, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT hash, name, COALESCE(user_id, 0), created_at, revoked_at IS NOT NULL FROM api_tokens
		WHERE ? = 0 OR user_id = ? ORDER BY created_at`, userID, userID)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Token{}
	for rows.Next() {
		var t Token
		var created int64
		if err := rows.Scan(&t.Hash, &t.Name, &t.UserID, &created, &t.Revoked); err != nil {
			return nil, err
		}
		t.ID, t.CreatedAt = t.Hash[:12], fromMS(created)
		out = append(out, t)
	}
	return out, rows.Err()
}

// RevokeToken revokes a token by its id (hash prefix); userID limits it to
// that user's tokens unless 0.
func (s *Store) RevokeToken(ctx context.Context, id string, userID int64, now time.Time) error {
	if len(id) != 12 {
		return fmt.Errorf("token id %q: %w", id, ErrNotFound)
	}
	res, err := s.w.ExecContext(ctx, `UPDATE api_tokens SET revoked_at = ? WHERE substr(hash, 1, 12) = ? AND revoked_at IS NULL AND (? = 0 OR user_id = ?)`,
		ms(now), id, userID, userID)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("token %s: %w", id, ErrNotFound)
	}
	return nil
}
