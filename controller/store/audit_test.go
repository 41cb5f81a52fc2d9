package store

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"dalaba/controller/audit"
)

var auditKey = []byte("0123456789abcdef0123456789abcdef")

// appendAudit seals n entries onto s's log.
func appendAudit(t *testing.T, s *Store, n int) {
	t.Helper()
	for i := 0; i < n; i++ {
		e := audit.Entry{At: t0.Add(time.Duration(i) * time.Second), Actor: "officer1", Source: "10.0.0.5", Action: "alert.create", Target: "x"}
		if _, err := s.AppendAudit(context.Background(), auditKey, e); err != nil {
			t.Fatal(err)
		}
	}
}

func exec(t *testing.T, s *Store, q string, args ...any) {
	t.Helper()
	if _, err := s.w.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// TestAuditChainTampering edits the database behind the store's back, as
// someone with the file but not the audit key would, and checks that
// VerifyAudit names the first entry that no longer holds, including when
// the controller has written more entries since.
func TestAuditChainTampering(t *testing.T) {
	cases := []struct {
		name    string
		tamper  func(t *testing.T, s *Store)
		more    int // entries the controller appends after the tampering
		wantSeq int64
		reason  string
	}{
		{"intact", func(*testing.T, *Store) {}, 2, 0, ""},
		{"edited actor", func(t *testing.T, s *Store) { exec(t, s, `UPDATE audit_log SET actor = 'approver1' WHERE seq = 3`) }, 0, 3, "altered"},
		{"edited actor, then more entries", func(t *testing.T, s *Store) { exec(t, s, `UPDATE audit_log SET actor = 'approver1' WHERE seq = 3`) }, 2, 3, "altered"},
		{"edited time", func(t *testing.T, s *Store) { exec(t, s, `UPDATE audit_log SET at = at + 1 WHERE seq = 2`) }, 0, 2, "altered"},
		{"deleted middle row", func(t *testing.T, s *Store) { exec(t, s, `DELETE FROM audit_log WHERE seq = 3`) }, 0, 4, "removed"},
		{"deleted last row", func(t *testing.T, s *Store) { exec(t, s, `DELETE FROM audit_log WHERE seq = 5`) }, 0, 5, "removed"},
		{"deleted last row, then more entries", func(t *testing.T, s *Store) { exec(t, s, `DELETE FROM audit_log WHERE seq = 5`) }, 1, 6, "removed"},
		{"deleted last two rows, then more entries", func(t *testing.T, s *Store) { exec(t, s, `DELETE FROM audit_log WHERE seq >= 4`) }, 3, 6, "removed"},
		{"deleted head record", func(t *testing.T, s *Store) { exec(t, s, `DELETE FROM meta WHERE key = 'audit_head'`) }, 0, 5, "head"},
		{"deleted last row and head record, then more entries", func(t *testing.T, s *Store) {
			exec(t, s, `DELETE FROM audit_log WHERE seq = 5`)
			exec(t, s, `DELETE FROM meta WHERE key = 'audit_head'`)
		}, 1, 6, "removed"},
		{"deleted last row, head set back, then more entries", func(t *testing.T, s *Store) {
			exec(t, s, `DELETE FROM audit_log WHERE seq = 5`)
			exec(t, s, `UPDATE meta SET value = '4:00' WHERE key = 'audit_head'`)
		}, 1, 6, "removed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := openStore(t)
			appendAudit(t, s, 5)
			c.tamper(t, s)
			appendAudit(t, s, c.more)
			n, err := s.VerifyAudit(context.Background(), auditKey)
			if c.wantSeq == 0 {
				if err != nil || n != 5+c.more {
					t.Fatalf("intact log: %d entries, %v", n, err)
				}
				return
			}
			var p *audit.Problem
			if !errors.As(err, &p) || p.Seq != c.wantSeq || !strings.Contains(p.Reason, c.reason) {
				t.Fatalf("verify: %v (%d verified), want a problem %q at entry %d", err, n, c.reason, c.wantSeq)
			}
		})
	}
}

// TestAuditChainWrongKey: a log checked with another key does not verify.
func TestAuditChainWrongKey(t *testing.T) {
	s := openStore(t)
	appendAudit(t, s, 3)
	var p *audit.Problem
	if _, err := s.VerifyAudit(context.Background(), []byte("another key of thirty-two bytes!")); !errors.As(err, &p) || p.Seq != 1 {
		t.Fatalf("verify with another key: %v, want a problem at entry 1", err)
	}
}
