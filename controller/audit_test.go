package controller

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"fmt"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"dalaba/controller/access"
	"dalaba/controller/store"
)

// TestAuditRecordsActions: each kind of action leaves an entry naming who,
// from where, and what it acted on.
func TestAuditRecordsActions(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(100*time.Millisecond))
	officer, approver := h.officer(t), h.approver(t)

	var enrolled EnrollResult
	h.admin.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageB, Name: "大将村1号"}, &enrolled)
	h.admin.mustCall(t, http.StatusOK, "POST", "/api/v1/terminals/"+enrolled.Terminal.ID+"/revoke", nil, nil)
	activeTerminalInStore(t, h, villageA)
	alert := func() AlertView {
		var v AlertView
		officer.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", AlertRequest{Title: "防汛预警", Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}}, &v)
		return v
	}
	approved, rejected := alert(), alert()
	approver.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+approved.ID+"/approve", decision{Comment: "同意"}, nil)
	approver.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+rejected.ID+"/reject", decision{Comment: "不同意"}, nil)
	officer.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+approved.ID+"/cancel", map[string]string{"reason": "解除"}, nil)
	var tok map[string]string
	officer.mustCall(t, http.StatusCreated, "POST", "/api/v1/tokens", map[string]string{"name": "laptop-cli"}, &tok)
	h.admin.mustCall(t, http.StatusOK, "PATCH", "/api/v1/users/"+approver.name, map[string]string{"display": "王审批"}, nil)
	h.setPolicy(t, noApproval())
	if status, _, _, _ := h.signIn(t, apiClient, SignIn{Name: officer.name, Password: "Wrong-pass-2026"}); status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", status)
	}

	es := h.auditEntries(t, "")
	cases := []struct {
		name, action, actor, target string
		detail                      string // a part of before, after or detail
	}{
		{"install", "install.init", "system", county, ""},
		{"user created", "user.create", h.admin.name, officer.name, `"officer"`},
		{"first password change", "user.password_change", officer.name, officer.name, ""},
		{"sign-in", "user.signin", officer.name, officer.name, ""},
		{"failed sign-in", "user.signin_failed", officer.name, officer.name, "wrong name or password"},
		{"token from sign-in", "token.create", officer.name, "", "by sign-in"},
		{"token created", "token.create", officer.name, tok["id"], "laptop-cli"},
		{"user updated", "user.update", h.admin.name, approver.name, "王审批"},
		{"policy changed", "settings.policy", h.admin.name, "policy", `"approval":{}`},
		{"terminal created", "terminal.create", h.admin.name, enrolled.Terminal.ID, "one-time enrollment code"},
		{"terminal revoked", "terminal.revoke", h.admin.name, enrolled.Terminal.ID, store.TerminalRevoked},
		{"media uploaded", "media.upload", officer.name, media.SHA256, "tone.wav"},
		{"alert created", "alert.create", officer.name, approved.ID, store.AlertPending},
		{"alert approved", "alert.approve", approver.name, approved.ID, "同意"},
		{"alert rejected", "alert.reject", approver.name, rejected.ID, "不同意"},
		{"alert cancelled", "alert.cancel", officer.name, approved.ID, "解除"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, e := range es {
				if e.Action != c.action || e.Actor != c.actor || (c.target != "" && e.Target != c.target) {
					continue
				}
				if !strings.Contains(e.Before+e.After+e.Detail, c.detail) {
					continue
				}
				if e.At.IsZero() || (e.Actor != "system" && e.Source != "127.0.0.1") {
					t.Fatalf("entry %+v lacks its time or source", e)
				}
				return
			}
			t.Fatalf("no %s entry by %s on %q with %q", c.action, c.actor, c.target, c.detail)
		})
	}
	t.Run("user updated keeps before and after", func(t *testing.T) {
		for _, e := range es {
			if e.Action == "user.update" && e.Target == approver.name {
				if strings.Contains(e.Before, "王审批") || !strings.Contains(e.After, "王审批") {
					t.Fatalf("before %s, after %s", e.Before, e.After)
				}
				return
			}
		}
		t.Fatal("no user.update entry")
	})
	t.Run("filters", func(t *testing.T) {
		only := h.auditEntries(t, "actor="+approver.name+"&action=alert.*")
		if len(only) != 2 {
			t.Fatalf("approver's alert entries: %+v, want approve and reject", only)
		}
		h.admin.refused(t, http.StatusBadRequest, "since", "GET", "/api/v1/audit?since=yesterday", nil)
	})
	t.Run("CSV export", func(t *testing.T) {
		all := h.auditEntries(t, "")
		resp, raw := request(t, apiClient, "GET", h.base+"/api/v1/audit.csv", http.Header{"Authorization": {"Bearer " + h.token}}, nil)
		if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "text/csv") {
			t.Fatalf("CSV: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		body, ok := bytes.CutPrefix(raw, []byte("\xEF\xBB\xBF"))
		if !ok {
			t.Fatal("CSV does not start with a UTF-8 byte order mark")
		}
		rows, err := csv.NewReader(bytes.NewReader(body)).ReadAll()
		if err != nil {
			t.Fatal(err)
		}
		if len(rows) == 0 || strings.Join(rows[0], ",") != "seq,time (Beijing),actor,source,action,target,before,after,detail,seal" {
			t.Fatalf("CSV header %v", rows[:min(1, len(rows))])
		}
		if len(rows)-1 != len(all) {
			t.Fatalf("CSV has %d lines of entries, the log %d", len(rows)-1, len(all))
		}
		for i, e := range all {
			if rows[i+1][0] != strconv.FormatInt(e.Seq, 10) || rows[i+1][2] != e.Actor || rows[i+1][4] != e.Action {
				t.Fatalf("CSV line %d %v, entry %+v", i+1, rows[i+1], e)
			}
		}
	})
}

// verifyAnswer is GET /api/v1/audit/verify's answer.
type verifyAnswer struct {
	OK          bool   `json:"ok"`
	Entries     int    `json:"entries"`
	FirstBadSeq int64  `json:"first_bad_seq"`
	Problem     string `json:"problem"`
}

func (h *testController) verifyAudit(t *testing.T) verifyAnswer {
	t.Helper()
	var v verifyAnswer
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/audit/verify", nil, &v)
	return v
}

// openDB opens the controller's database file directly, as someone with
// access to the disk but not to keys/audit.key would.
func openDB(t *testing.T, h *testController) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+filepath.ToSlash(filepath.Join(h.dir, DatabaseFile))+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func execDB(t *testing.T, db *sql.DB, q string, args ...any) {
	t.Helper()
	if _, err := db.ExecContext(context.Background(), q, args...); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
}

// auditRowBackup is a row of audit_log as stored, to put back.
type auditRowBackup []any

func backupRow(t *testing.T, db *sql.DB, seq int64) auditRowBackup {
	t.Helper()
	row := make(auditRowBackup, 11)
	ptrs := make([]any, len(row))
	for i := range row {
		ptrs[i] = &row[i]
	}
	if err := db.QueryRow(`SELECT seq, at, actor, source, action, target, before, after, detail, prev, seal FROM audit_log WHERE seq = ?`, seq).Scan(ptrs...); err != nil {
		t.Fatalf("read audit row %d: %v", seq, err)
	}
	return row
}

func restoreRow(t *testing.T, db *sql.DB, row auditRowBackup) {
	t.Helper()
	execDB(t, db, `INSERT INTO audit_log(seq, at, actor, source, action, target, before, after, detail, prev, seal) VALUES(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`, row...)
}

// TestAuditVerifyDetectsTampering edits the audit log in the database file
// while the controller runs and checks what GET /api/v1/audit/verify says.
// Each case undoes its edit, and the log verifies again.
func TestAuditVerifyDetectsTampering(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	for i := 0; i < 4; i++ {
		pol := access.DefaultPolicy()
		pol.IssueNowLevel1 = i%2 == 0
		h.setPolicy(t, pol)
	}
	h.officer(t) // user.create, user.password_change, token.create, user.signin
	if v := h.verifyAudit(t); !v.OK || v.Entries < 8 {
		t.Fatalf("intact log: %+v", v)
	}
	db := openDB(t, h)
	var last int64
	if err := db.QueryRow(`SELECT MAX(seq) FROM audit_log`).Scan(&last); err != nil {
		t.Fatal(err)
	}
	const middle = 4
	cases := []struct {
		name    string
		tamper  func(t *testing.T) (undo func())
		wantSeq int64
		problem string
	}{
		{"edited actor", func(t *testing.T) func() {
			row := backupRow(t, db, middle)
			execDB(t, db, `UPDATE audit_log SET actor = 'officer1' WHERE seq = ?`, middle)
			return func() { execDB(t, db, `UPDATE audit_log SET actor = ? WHERE seq = ?`, row[2], middle) }
		}, middle, "altered"},
		{"edited detail of the last entry", func(t *testing.T) func() {
			row := backupRow(t, db, last)
			execDB(t, db, `UPDATE audit_log SET detail = 'nothing to see' WHERE seq = ?`, last)
			return func() { execDB(t, db, `UPDATE audit_log SET detail = ? WHERE seq = ?`, row[8], last) }
		}, last, "altered"},
		{"deleted middle row", func(t *testing.T) func() {
			row := backupRow(t, db, middle)
			execDB(t, db, `DELETE FROM audit_log WHERE seq = ?`, middle)
			return func() { restoreRow(t, db, row) }
		}, middle + 1, "removed"},
		{"deleted last row", func(t *testing.T) func() {
			row := backupRow(t, db, last)
			execDB(t, db, `DELETE FROM audit_log WHERE seq = ?`, last)
			return func() { restoreRow(t, db, row) }
		}, last, "removed"},
		{"deleted head record", func(t *testing.T) func() {
			var head string
			if err := db.QueryRow(`SELECT value FROM meta WHERE key = 'audit_head'`).Scan(&head); err != nil {
				t.Fatal(err)
			}
			execDB(t, db, `DELETE FROM meta WHERE key = 'audit_head'`)
			return func() { execDB(t, db, `INSERT INTO meta(key, value) VALUES('audit_head', ?)`, head) }
		}, last, "head"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			undo := c.tamper(t)
			v := h.verifyAudit(t)
			if v.OK || v.FirstBadSeq != c.wantSeq || !strings.Contains(v.Problem, c.problem) {
				t.Errorf("verify after tampering: %+v, want first bad entry %d (%s)", v, c.wantSeq, c.problem)
			}
			undo()
			if v := h.verifyAudit(t); !v.OK {
				t.Fatalf("verify after undoing: %+v", v)
			}
		})
	}
	// Removing the newest entry must stay visible after the controller
	// writes more, here a failed sign-in anyone can cause.
	t.Run("deleted last row, then more entries", func(t *testing.T) {
		execDB(t, db, `DELETE FROM audit_log WHERE seq = ?`, last)
		for i := 0; i < 2; i++ {
			h.signIn(t, apiClient, SignIn{Name: fmt.Sprintf("guess%d", i), Password: "Wrong-pass-2026"})
		}
		v := h.verifyAudit(t)
		if v.OK || v.FirstBadSeq != last+1 || !strings.Contains(v.Problem, "removed") {
			t.Fatalf("verify: %+v, want the removal reported at entry %d", v, last+1)
		}
	})
}
