package store

import (
	"context"
	"crypto/sha256"
	"database/sql"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"dalaba/protocol"
)

// Alert statuses.
const (
	AlertPending   = "pending" // waiting for an approver
	AlertRejected  = "rejected"
	AlertActive    = "active"
	AlertCancelled = "cancelled"
	AlertExpired   = "expired"
)

// Alert is an issued alert and the signed command that carries it.
type Alert struct {
	ID          string           `json:"id"` // EBM id
	CommandID   string           `json:"command_id"`
	Class       string           `json:"class"`
	MsgType     int              `json:"msg_type"`
	Level       int              `json:"level"`
	EventType   string           `json:"event_type"`
	Title       string           `json:"title"`
	Targets     protocol.Targets `json:"targets"`
	CreatedAt   time.Time        `json:"created_at"`
	CreatedBy   string           `json:"created_by"`
	NotBefore   time.Time        `json:"not_before"`
	Expires     time.Time        `json:"expires"`
	Status      string           `json:"status"`
	CancelledAt time.Time        `json:"cancelled_at,omitempty"`
	Signed      []byte           `json:"-"` // protocol.SignedCommand JSON
	CancelSign  []byte           `json:"-"`
	Draft       []byte           `json:"-"` // protocol.Command JSON awaiting approval
	ApprovedBy  string           `json:"approved_by,omitempty"`
	ApprovedAt  time.Time        `json:"approved_at,omitempty"`
	Comment     string           `json:"decision_comment,omitempty"`
	NeedsReview bool             `json:"needs_review"` // sent at once by issue-now, not yet reviewed
	ReviewedBy  string           `json:"reviewed_by,omitempty"`
}

// NextEBMSequence reserves the next daily sequence number for an EBM id.
func (s *Store) NextEBMSequence(ctx context.Context, day string) (int, error) {
	var seq int
	err := s.tx(ctx, func(tx *sql.Tx) error {
		return tx.QueryRowContext(ctx, `INSERT INTO ebm_sequence(day, seq) VALUES(?, 1)
			ON CONFLICT(day) DO UPDATE SET seq = seq + 1 RETURNING seq`, day).Scan(&seq)
	})
	return seq, err
}

// CreateAlert stores an alert and one delivery row per target terminal, all
// in one transaction: either everything is recorded or nothing is.
func (s *Store) CreateAlert(ctx context.Context, a Alert, terminals []string, now time.Time) error {
	targets, err := json.Marshal(a.Targets)
	if err != nil {
		return err
	}
	return s.tx(ctx, func(tx *sql.Tx) error {
		if a.Status == "" {
			a.Status = AlertActive
		}
		if a.Signed == nil {
			a.Signed = []byte{}
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO alerts(id, command_id, class, msg_type, level, event_type, title, targets,
			created_at, created_by, not_before, expires, status, signed, draft, needs_review, payload_sha) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
			a.ID, a.CommandID, a.Class, a.MsgType, a.Level, a.EventType, a.Title, string(targets),
			ms(a.CreatedAt), a.CreatedBy, ms(a.NotBefore), ms(a.Expires), a.Status, a.Signed, a.Draft, a.NeedsReview, payloadSHA(a.Draft))
		if err != nil {
			return fmt.Errorf("save alert %s: %w", a.ID, err)
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO alert_nums(id) VALUES(?)`, a.ID); err != nil {
			return fmt.Errorf("number alert %s: %w", a.ID, err)
		}
		st := newStmtCache(s, tx)
		defer st.close()
		return insertDeliveries(ctx, st, a.ID, terminals, now)
	})
}

// insertDeliveriesSQL stores queued deliveries, rows of (key, alert
// number, terminal number, state, time).
var insertDeliveriesSQL = shapes(func(rows int) string {
	return `INSERT INTO deliveries(key, alert_num, terminal_num, state, updated_at) VALUES ` + valueRows(rows, 5)
})

// insertDeliveries stores a queued delivery of alert alertID to each of
// terminals, rowsPerStatement at a time, by the terminals' numbers, which
// every terminal has from its creation (migrations/0010_report_numbers.sql).
func insertDeliveries(ctx context.Context, st *stmtCache, alertID string, terminals []string, now time.Time) error {
	alert, err := st.alertNum(ctx, alertID)
	if err != nil {
		return fmt.Errorf("number of alert %s: %w", alertID, err)
	}
	if err := st.readTerminalNums(ctx, terminals); err != nil {
		return fmt.Errorf("save deliveries of %s: %w", alertID, err)
	}
	nums := make([]int64, len(terminals))
	for i, id := range terminals {
		num, ok := st.terminalNum(id)
		if !ok {
			return fmt.Errorf("save delivery of %s to %s: terminal %s: %w", alertID, id, id, ErrNotFound)
		}
		nums[i] = num
	}
	// The keys in order, appended to the alert's range; the values every
	// row shares boxed once.
	slices.Sort(nums)
	a, queued, at := any(alert), any(protocol.DeliveryQueued), any(ms(now))
	args := make([]any, 0, 5*len(nums))
	for _, num := range nums {
		args = append(args, deliveryKey(alert, num), a, num, queued, at)
	}
	for len(args) > 0 {
		n := fitRows(len(args) / 5)
		if _, err := st.ExecContext(ctx, insertDeliveriesSQL(n), args[:5*n]...); err != nil {
			return fmt.Errorf("save deliveries of %s: %w", alertID, err)
		}
		args = args[5*n:]
	}
	return nil
}

const alertCols = `id, command_id, class, msg_type, level, event_type, title, targets, created_at, created_by,
	not_before, expires, status, signed, cancel_signed, cancelled_at, draft, COALESCE(approved_by, ''), approved_at,
	COALESCE(decision_comment, ''), needs_review, COALESCE(reviewed_by, '')`

func scanAlert(row interface{ Scan(...any) error }) (Alert, error) {
	var a Alert
	var targets string
	var created, nb, exp int64
	var cancelled, approved sql.NullInt64
	err := row.Scan(&a.ID, &a.CommandID, &a.Class, &a.MsgType, &a.Level, &a.EventType, &a.Title, &targets, &created,
		&a.CreatedBy, &nb, &exp, &a.Status, &a.Signed, &a.CancelSign, &cancelled, &a.Draft, &a.ApprovedBy, &approved,
		&a.Comment, &a.NeedsReview, &a.ReviewedBy)
	if err != nil {
		return a, err
	}
	a.CreatedAt, a.NotBefore, a.Expires, a.CancelledAt = fromMS(created), fromMS(nb), fromMS(exp), nullMS(cancelled)
	a.ApprovedAt = nullMS(approved)
	return a, json.Unmarshal([]byte(targets), &a.Targets)
}

// Alert reads one alert by EBM id.
func (s *Store) Alert(ctx context.Context, id string) (Alert, error) {
	a, err := scanAlert(s.r.QueryRowContext(ctx, `SELECT `+alertCols+` FROM alerts WHERE id = ?`, id))
	if errors.Is(err, sql.ErrNoRows) {
		return a, fmt.Errorf("alert %s: %w", id, ErrNotFound)
	}
	return a, err
}

// Alerts lists the newest alerts first.
func (s *Store) Alerts(ctx context.Context, limit int) ([]Alert, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT `+alertCols+` FROM alerts ORDER BY created_at DESC, id DESC LIMIT ?`, limit)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []Alert{}
	for rows.Next() {
		a, err := scanAlert(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, a)
	}
	return out, rows.Err()
}

// CancelAlert marks an alert cancelled and keeps the signed cancel command.
// Deliveries the terminal never received become cancelled at once.
func (s *Store) CancelAlert(ctx context.Context, id string, cancelSigned []byte, now time.Time) ([]Delivery, error) {
	var changed []Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET status = ?, cancel_signed = ?, cancelled_at = ? WHERE id = ? AND status = ?`,
			AlertCancelled, cancelSigned, ms(now), id, AlertActive)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alert %s is not active: %w", id, ErrNotActive)
		}
		changed, err = setDeliveriesWhere(ctx, tx, id, []string{protocol.DeliveryQueued, protocol.DeliveryOffline},
			protocol.DeliveryCancelled, "cancelled", "cancelled before the terminal received it", now)
		return err
	})
	return changed, err
}

// WithdrawAlert cancels an alert still waiting for approval. Nothing was
// signed or sent, so there is nothing to tell the terminals.
func (s *Store) WithdrawAlert(ctx context.Context, id, reason string, now time.Time) error {
	res, err := s.w.ExecContext(ctx, `UPDATE alerts SET status = ?, cancelled_at = ?, decision_comment = ? WHERE id = ? AND status = ?`,
		AlertCancelled, ms(now), reason, id, AlertPending)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("alert %s: %w", id, ErrNotPending)
	}
	return nil
}

// EndAlert ends an active alert before its window does (a live session
// that is over): it becomes expired with comment, and its deliveries not yet
// sent are expired with detail, so a terminal that connects later is not
// sent it. It returns the deliveries it changed.
func (s *Store) EndAlert(ctx context.Context, id, comment, detail string, now time.Time) ([]Delivery, error) {
	var changed []Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET status = ?, decision_comment = ? WHERE id = ? AND status = ?`,
			AlertExpired, comment, id, AlertActive)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alert %s is not active: %w", id, ErrNotActive)
		}
		changed, err = setDeliveriesWhere(ctx, tx, id, []string{protocol.DeliveryQueued, protocol.DeliveryOffline},
			protocol.DeliveryExpired, "expired", detail, now)
		return err
	})
	return changed, err
}

// ErrNotActive is returned when cancelling an alert that is not active.
var ErrNotActive = errors.New("alert is not active")

// ExpireAlerts marks active alerts past their expiry as expired, and their
// unfinished deliveries expired. It returns the deliveries it changed.
func (s *Store) ExpireAlerts(ctx context.Context, now time.Time) ([]Delivery, error) {
	var changed []Delivery
	err := s.tx(ctx, func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `UPDATE alerts SET status = ?, decision_comment = 'validity window passed while waiting for approval'
			WHERE status = ? AND expires <= ?`, AlertExpired, AlertPending, ms(now)); err != nil {
			return err
		}
		rows, err := tx.QueryContext(ctx, `SELECT id FROM alerts WHERE status = ? AND expires <= ?`, AlertActive, ms(now))
		if err != nil {
			return err
		}
		var ids []string
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		for _, id := range ids {
			if _, err := tx.ExecContext(ctx, `UPDATE alerts SET status = ? WHERE id = ?`, AlertExpired, id); err != nil {
				return err
			}
			d, err := setDeliveriesWhere(ctx, tx, id, []string{protocol.DeliveryQueued, protocol.DeliveryOffline, protocol.DeliverySent,
				protocol.DeliveryAccepted, protocol.DeliveryFetching}, protocol.DeliveryExpired, "expired", "validity window passed", now)
			if err != nil {
				return err
			}
			changed = append(changed, d...)
		}
		return nil
	})
	return changed, err
}

// ErrNotPending is returned when deciding on an alert that is not pending.
var ErrNotPending = errors.New("alert is not waiting for approval")

// Decide approves (with the signed command and its terminals) or rejects
// (signed nil) a pending alert, in one transaction.
func (s *Store) Decide(ctx context.Context, id, by, comment string, signed []byte, terminals []string, now time.Time) error {
	return s.tx(ctx, func(tx *sql.Tx) error {
		status := AlertRejected
		if signed != nil {
			status = AlertActive
		}
		res, err := tx.ExecContext(ctx, `UPDATE alerts SET status = ?, signed = COALESCE(?, signed), approved_by = ?, approved_at = ?,
			decision_comment = ? WHERE id = ? AND status = ?`, status, signed, by, ms(now), comment, id, AlertPending)
		if err != nil {
			return err
		}
		if n, _ := res.RowsAffected(); n == 0 {
			return fmt.Errorf("alert %s: %w", id, ErrNotPending)
		}
		if signed == nil {
			return nil
		}
		st := newStmtCache(s, tx)
		defer st.close()
		return insertDeliveries(ctx, st, id, terminals, now)
	})
}

// MarkReviewed records the review of an alert sent by issue-now.
func (s *Store) MarkReviewed(ctx context.Context, id, by, comment string) error {
	res, err := s.w.ExecContext(ctx, `UPDATE alerts SET needs_review = 0, reviewed_by = ?, decision_comment = ? WHERE id = ? AND needs_review = 1`, by, comment, id)
	if err != nil {
		return err
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("alert %s does not await review: %w", id, ErrNotFound)
	}
	return nil
}

// payloadSHA is the hex sha256 of a command payload, as terminals name a
// payload they reject.
func payloadSHA(payload []byte) string {
	if len(payload) == 0 {
		return ""
	}
	sum := sha256.Sum256(payload)
	return hex.EncodeToString(sum[:])
}
