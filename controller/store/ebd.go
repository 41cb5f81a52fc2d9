package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"
)

// EBDPacket is a packet received from the superior platform and the
// result answered.
type EBDPacket struct {
	ID         string    `json:"id"`
	Sender     string    `json:"sender"`
	Type       string    `json:"type"`
	ReceivedAt time.Time `json:"received_at"`
	ResultCode int       `json:"result_code"`
	ResultDesc string    `json:"result_desc"`
}

// PutEBDPacket records a packet; ErrExists when its id was seen before.
func (s *Store) PutEBDPacket(ctx context.Context, p EBDPacket) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO ebd_packets(id, sender, type, received_at, result_code, result_desc)
		VALUES(?, ?, ?, ?, ?, ?) ON CONFLICT(id) DO NOTHING`, p.ID, p.Sender, p.Type, ms(p.ReceivedAt), p.ResultCode, p.ResultDesc)
	if err != nil {
		return fmt.Errorf("record EBD %s: %w", p.ID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("EBD %s: %w", p.ID, ErrExists)
	}
	return nil
}

// EBDPacketByID returns a recorded packet, or ErrNotFound.
func (s *Store) EBDPacketByID(ctx context.Context, id string) (EBDPacket, error) {
	var p EBDPacket
	var at int64
	err := s.r.QueryRowContext(ctx, `SELECT id, sender, type, received_at, result_code, result_desc FROM ebd_packets WHERE id = ?`, id).
		Scan(&p.ID, &p.Sender, &p.Type, &at, &p.ResultCode, &p.ResultDesc)
	if errors.Is(err, sql.ErrNoRows) {
		return p, fmt.Errorf("EBD %s: %w", id, ErrNotFound)
	}
	p.ReceivedAt = fromMS(at)
	return p, err
}

// NextEBDSequence returns the next daily counter of this platform's EBD ids.
func (s *Store) NextEBDSequence(ctx context.Context, day string) (int, error) {
	var seq int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO ebd_sequence(day, seq) VALUES(?, 1)
			ON CONFLICT(day) DO UPDATE SET seq = seq + 1 RETURNING seq`, day).Scan(&seq)
	})
	return seq, err
}

// EBDAlert links a superior platform's EBM to the alert it became, with
// the state of reporting it upward.
type EBDAlert struct {
	EBMID         string    `json:"ebm_id"`
	AlertID       string    `json:"alert_id"`
	Sender        string    `json:"sender"`
	EBDID         string    `json:"ebd_id"`
	ReportedState int       `json:"reported_state"` // -1: nothing reported yet
	ReportedAt    time.Time `json:"reported_at"`
	Final         bool      `json:"final"`
	Attempts      int       `json:"attempts"`
	NextAttemptAt time.Time `json:"next_attempt_at"`
	LastError     string    `json:"last_error,omitempty"`
}

const ebdAlertCols = `ebm_id, alert_id, sender, ebd_id, reported_state, reported_at, final, attempts, next_attempt_at, last_error`

func scanEBDAlert(sc interface{ Scan(...any) error }) (EBDAlert, error) {
	var a EBDAlert
	var at, next int64
	err := sc.Scan(&a.EBMID, &a.AlertID, &a.Sender, &a.EBDID, &a.ReportedState, &at, &a.Final, &a.Attempts, &next, &a.LastError)
	a.ReportedAt, a.NextAttemptAt = fromMS(at), fromMS(next)
	return a, err
}

// PutEBDAlert links an EBM to its alert; ErrExists if the EBM is linked.
func (s *Store) PutEBDAlert(ctx context.Context, a EBDAlert) error {
	res, err := s.w.ExecContext(ctx, `INSERT INTO ebd_alerts(ebm_id, alert_id, sender, ebd_id) VALUES(?, ?, ?, ?)
		ON CONFLICT(ebm_id) DO NOTHING`, a.EBMID, a.AlertID, a.Sender, a.EBDID)
	if err != nil {
		return fmt.Errorf("link EBM %s: %w", a.EBMID, err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("EBM %s: %w", a.EBMID, ErrExists)
	}
	return nil
}

// EBDAlertByEBM returns the link of an EBM, or ErrNotFound.
func (s *Store) EBDAlertByEBM(ctx context.Context, ebmID string) (EBDAlert, error) {
	a, err := scanEBDAlert(s.r.QueryRowContext(ctx, `SELECT `+ebdAlertCols+` FROM ebd_alerts WHERE ebm_id = ?`, ebmID))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("EBM %s: %w", ebmID, ErrNotFound)
	}
	return a, err
}

// EBDAlertsToReport lists the links whose final state has not yet been
// accepted upward.
func (s *Store) EBDAlertsToReport(ctx context.Context) ([]EBDAlert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+ebdAlertCols+` FROM ebd_alerts WHERE final = 0 ORDER BY ebm_id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []EBDAlert
	for rows.Next() {
		a, err := scanEBDAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// SetEBDReported records a state accepted upward; attempts reset.
func (s *Store) SetEBDReported(ctx context.Context, ebmID string, state int, final bool, at time.Time) error {
	_, err := s.w.ExecContext(ctx, `UPDATE ebd_alerts SET reported_state = ?, reported_at = ?, final = ?, attempts = 0,
		next_attempt_at = 0, last_error = '' WHERE ebm_id = ?`, state, ms(at), final, ebmID)
	return err
}

// SetEBDRetry records a failed report and when to try again.
func (s *Store) SetEBDRetry(ctx context.Context, ebmID string, attempts int, next time.Time, reason string) error {
	_, err := s.w.ExecContext(ctx, `UPDATE ebd_alerts SET attempts = ?, next_attempt_at = ?, last_error = ? WHERE ebm_id = ?`,
		attempts, ms(next), reason, ebmID)
	return err
}

// EBDPackets lists the newest packets received, at most limit.
func (s *Store) EBDPackets(ctx context.Context, limit int) ([]EBDPacket, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT id, sender, type, received_at, result_code, result_desc FROM ebd_packets
		ORDER BY received_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []EBDPacket{}
	for rows.Next() {
		var p EBDPacket
		var at int64
		if err := rows.Scan(&p.ID, &p.Sender, &p.Type, &at, &p.ResultCode, &p.ResultDesc); err != nil {
			return nil, err
		}
		p.ReceivedAt = fromMS(at)
		out = append(out, p)
	}
	return out, rows.Err()
}
