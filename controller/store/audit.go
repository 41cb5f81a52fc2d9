package store

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"dalaba/controller/audit"
)

// AppendAudit seals e onto the end of the audit log with key, and records
// the new head, in one transaction. e.Seq, e.Prev and e.Seal are set here.
func (s *Store) AppendAudit(ctx context.Context, key []byte, e audit.Entry) (audit.Entry, error) {
	err := s.tx(ctx, func(tx *sql.Tx) error {
		var last int64
		var prev []byte
		err := tx.QueryRowContext(ctx, `SELECT seq, seal FROM audit_log ORDER BY seq DESC LIMIT 1`).Scan(&last, &prev)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		var head string
		err = tx.QueryRowContext(ctx, `SELECT value FROM meta WHERE key = 'audit_head'`).Scan(&head)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return err
		}
		e.Seq, e.Prev = last+1, prev
		if (head != "" || last > 0) && head != headRecord(key, last, prev) {
			// The end of the log does not match its sealed head: entries
			// were removed from the end, or the head was edited. Numbering
			// on from the last row would chain onto what is left and reseal
			// the head over the removal; number past it instead, leaving a
			// gap that VerifyAudit reports.
			headSeq, _ := strconv.ParseInt(strings.SplitN(head, ":", 2)[0], 10, 64)
			e.Seq = max(last, headSeq) + 1
			if e.Seq == last+1 {
				e.Seq++
			}
		}
		if e.Prev == nil {
			e.Prev = []byte{}
		}
		e.Seal = audit.Sealed(key, e.Prev, e)
		if _, err := tx.ExecContext(ctx, `INSERT INTO audit_log(seq, at, actor, source, action, target, before, after, detail, prev, seal)
			VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, e.Seq, ms(e.At), e.Actor, e.Source, e.Action, e.Target, e.Before, e.After, e.Detail, e.Prev, e.Seal); err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, `INSERT INTO meta(key, value) VALUES('audit_head', ?) ON CONFLICT(key) DO UPDATE SET value = excluded.value`,
			headRecord(key, e.Seq, e.Seal))
		return err
	})
	if err != nil {
		return e, fmt.Errorf("audit %s: %w", e.Action, err)
	}
	return e, nil
}

// headRecord is the meta value that seals the end of the log: the last
// sequence and a seal over it and the last entry's seal.
func headRecord(key []byte, lastSeq int64, lastSeal []byte) string {
	return strconv.FormatInt(lastSeq, 10) + ":" + hex.EncodeToString(audit.HeadSeal(key, lastSeq, lastSeal))
}

// AuditFilter narrows an audit listing.
type AuditFilter struct {
	Actor, Action, Target string
	Since, Until          time.Time
	Limit                 int
}

// Audit lists entries, newest first, filtered.
func (s *Store) Audit(ctx context.Context, f AuditFilter) ([]audit.Entry, error) {
	q := `SELECT seq, at, actor, source, action, target, before, after, detail, prev, seal FROM audit_log WHERE 1 = 1`
	var args []any
	if f.Actor != "" {
		q, args = q+` AND actor = ?`, append(args, f.Actor)
	}
	if f.Action != "" {
		q, args = q+` AND action LIKE ?`, append(args, strings.TrimSuffix(f.Action, "*")+"%")
	}
	if f.Target != "" {
		q, args = q+` AND target = ?`, append(args, f.Target)
	}
	if !f.Since.IsZero() {
		q, args = q+` AND at >= ?`, append(args, ms(f.Since))
	}
	if !f.Until.IsZero() {
		q, args = q+` AND at < ?`, append(args, ms(f.Until))
	}
	if f.Limit <= 0 {
		f.Limit = 1000
	}
	rows, err := s.r.QueryContext(ctx, q+` ORDER BY seq DESC LIMIT ?`, append(args, f.Limit)...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := []audit.Entry{}
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

func scanAudit(row interface{ Scan(...any) error }) (audit.Entry, error) {
	var e audit.Entry
	var at int64
	err := row.Scan(&e.Seq, &at, &e.Actor, &e.Source, &e.Action, &e.Target, &e.Before, &e.After, &e.Detail, &e.Prev, &e.Seal)
	e.At = fromMS(at)
	return e, err
}

// VerifyAudit walks the whole log in order and checks every seal and the
// sealed head. It returns how many entries verified and the first problem
// (an *audit.Problem), or nil.
func (s *Store) VerifyAudit(ctx context.Context, key []byte) (int, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT seq, at, actor, source, action, target, before, after, detail, prev, seal FROM audit_log ORDER BY seq`)
	if err != nil {
		return 0, err
	}
	defer rows.Close()
	v := audit.NewVerifier(key)
	var lastSeal []byte
	var lastSeq int64
	for rows.Next() {
		e, err := scanAudit(rows)
		if err != nil {
			return v.Count(), err
		}
		if err := v.Check(e); err != nil {
			return v.Count(), err
		}
		lastSeq, lastSeal = e.Seq, e.Seal
	}
	if err := rows.Err(); err != nil {
		return v.Count(), err
	}
	head, err := s.Meta(ctx, "audit_head")
	if errors.Is(err, ErrNotFound) {
		if v.Count() > 0 { // every append records the head
			return v.Count(), &audit.Problem{Seq: lastSeq, Reason: "head record removed"}
		}
		return v.Count(), nil
	}
	if err != nil {
		return v.Count(), err
	}
	seqText, sealHex, _ := strings.Cut(head, ":")
	last, _ := strconv.ParseInt(seqText, 10, 64)
	if err := v.Head(last); err != nil {
		return v.Count(), err
	}
	if want := hex.EncodeToString(audit.HeadSeal(key, last, lastSeal)); want != sealHex {
		return v.Count(), &audit.Problem{Seq: last, Reason: "head record altered"}
	}
	return v.Count(), nil
}
