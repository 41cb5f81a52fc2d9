package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"
	"time"
)

// CAPMessage is a CAP message the controller received and what it did.
type CAPMessage struct {
	Sender     string    `json:"sender"`
	Identifier string    `json:"identifier"`
	Sent       string    `json:"sent"`
	MsgType    string    `json:"msg_type"`
	Status     string    `json:"status"`
	ReceivedAt time.Time `json:"received_at"`
	Via        string    `json:"via"`
	SignedBy   string    `json:"signed_by,omitempty"`
	AlertID    string    `json:"alert_id,omitempty"`
	Outcome    string    `json:"outcome"`
	Document   []byte    `json:"-"`
}

// PutCAPMessage records a received message; ErrExists if its sender and
// identifier were recorded before.
func (s *Store) PutCAPMessage(ctx context.Context, m CAPMessage) error {
	var alert any
	if m.AlertID != "" {
		alert = m.AlertID
	}
	_, err := s.w.ExecContext(ctx, `INSERT INTO cap_messages(sender, identifier, sent, msg_type, status, received_at, via,
		signed_by, alert_id, outcome, document) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
		m.Sender, m.Identifier, m.Sent, m.MsgType, m.Status, ms(m.ReceivedAt), m.Via, m.SignedBy, alert, m.Outcome, m.Document)
	if err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed") {
		return fmt.Errorf("CAP message %s from %s: %w", m.Identifier, m.Sender, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("save CAP message %s from %s: %w", m.Identifier, m.Sender, err)
	}
	return nil
}

const capCols = `sender, identifier, sent, msg_type, status, received_at, via, signed_by, COALESCE(alert_id, ''), outcome, document`

func scanCAP(row interface{ Scan(...any) error }) (CAPMessage, error) {
	var m CAPMessage
	var at int64
	err := row.Scan(&m.Sender, &m.Identifier, &m.Sent, &m.MsgType, &m.Status, &at, &m.Via, &m.SignedBy, &m.AlertID, &m.Outcome, &m.Document)
	m.ReceivedAt = fromMS(at)
	return m, err
}

// CAPMessage reads a received message by sender and identifier.
func (s *Store) CAPMessage(ctx context.Context, sender, identifier string) (CAPMessage, error) {
	m, err := scanCAP(s.r.QueryRowContext(ctx, `SELECT `+capCols+` FROM cap_messages WHERE sender = ? AND identifier = ?`, sender, identifier))
	if errors.Is(err, sql.ErrNoRows) {
		return m, fmt.Errorf("CAP message %s from %s: %w", identifier, sender, ErrNotFound)
	}
	return m, err
}

// CAPMessageCount counts the received messages on record.
func (s *Store) CAPMessageCount(ctx context.Context) (int, error) {
	var n int
	err := s.r.QueryRowContext(ctx, `SELECT COUNT(*) FROM cap_messages`).Scan(&n)
	return n, err
}
