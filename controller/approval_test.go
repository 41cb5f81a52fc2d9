package controller

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/store"
	"dalaba/protocol"
)

type pendingAlert struct {
	AlertView
	Approvers []string `json:"approvers"`
}

// assertUnsent checks that an alert has no deliveries and no signed command.
func assertUnsent(t *testing.T, h *testController, id string) {
	t.Helper()
	v := h.view(t, id)
	if len(v.Deliveries) != 0 || countTotal(v.Counts) != 0 {
		t.Fatalf("alert %s (%s) has deliveries %+v, counts %v", id, v.Status, v.Deliveries, v.Counts)
	}
	if status, raw := h.call(t, "GET", "/api/v1/alerts/"+id+"/command", nil, nil); status != http.StatusNotFound {
		t.Fatalf("signed command of %s alert: %d %s, want 404", v.Status, status, raw)
	}
}

// TestApprovalOfEmergencyAlert follows the default policy: an emergency
// alert waits, unsigned, for an approver other than its author, and is
// signed and delivered only when approved.
func TestApprovalOfEmergencyAlert(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(200*time.Millisecond))
	_, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	// The author holds the approver role too: only authorship stops them.
	author := h.newUser(t, "duty", []string{access.Officer, access.Approver}, county)
	approver := h.approver(t)
	compose := func(t *testing.T, title string) AlertView {
		var v AlertView
		author.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", AlertRequest{Title: title, Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}}, &v)
		if v.Status != store.AlertPending {
			t.Fatalf("emergency alert is %s under the default policy, want pending", v.Status)
		}
		assertUnsent(t, h, v.ID)
		return v
	}

	t.Run("approve", func(t *testing.T) {
		v := compose(t, "防汛预警")
		var pending []pendingAlert
		approver.mustCall(t, http.StatusOK, "GET", "/api/v1/approvals", nil, &pending)
		if len(pending) != 1 || pending[0].ID != v.ID || !slices.Equal(pending[0].Approvers, []string{approver.name}) {
			t.Fatalf("approvals %+v, want %s awaiting %s (not its author)", pending, v.ID, approver.name)
		}
		author.refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: "自己批准"})
		approver.refused(t, http.StatusBadRequest, "comment", "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{})
		approver.refused(t, http.StatusBadRequest, "comment", "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: " \t "})
		assertUnsent(t, h, v.ID)

		var got AlertView
		approver.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: "已与气象局核实"}, &got)
		if got.Status != store.AlertActive || got.ApprovedBy != approver.name || got.Comment != "已与气象局核实" || got.ApprovedAt.IsZero() {
			t.Fatalf("approved alert %+v", got.Alert)
		}
		h.waitDelivery(t, v.ID, id, protocol.DeliveryDone)
		var sc protocol.SignedCommand
		h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+v.ID+"/command", nil, &sc)
		ring := protocol.Keyring{}
		for _, k := range h.c.publicKeys() {
			ring.Add(k.PublicKey)
		}
		cmd, err := ring.Open(sc, protocol.Recipient{TerminalID: id, AreaCode: villageA}, time.Now())
		if err != nil || cmd.ID != v.CommandID || cmd.Alert.EBMID != v.ID || cmd.Alert.Title != "防汛预警" {
			t.Fatalf("signed command after approval: %+v, %v", cmd, err)
		}
		approver.refused(t, http.StatusConflict, "", "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: "再次批准"})
		approver.refused(t, http.StatusConflict, "", "POST", "/api/v1/alerts/"+v.ID+"/reject", decision{Comment: "事后驳回"})
	})

	t.Run("reject", func(t *testing.T) {
		v := compose(t, "误报")
		author.refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+v.ID+"/reject", decision{Comment: "撤回"})
		approver.refused(t, http.StatusBadRequest, "comment", "POST", "/api/v1/alerts/"+v.ID+"/reject", decision{})
		var got AlertView
		approver.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/reject", decision{Comment: "信息未核实"}, &got)
		if got.Status != store.AlertRejected || got.ApprovedBy != approver.name || got.Comment != "信息未核实" {
			t.Fatalf("rejected alert %+v", got.Alert)
		}
		approver.refused(t, http.StatusConflict, "", "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: "改为批准"})
		assertUnsent(t, h, v.ID)
		if states := receiptStates(h.receipts(t, id), v.ID); len(states) != 0 {
			t.Fatalf("terminal acted on a rejected alert: %v", states)
		}
	})

	t.Run("withdraw", func(t *testing.T) {
		v := compose(t, "撤回的预警")
		var got AlertView
		author.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/cancel", map[string]string{"reason": "发错了"}, &got)
		if got.Status != store.AlertCancelled || got.Comment != "发错了" || got.CancelledAt.IsZero() {
			t.Fatalf("withdrawn alert %+v", got.Alert)
		}
		approver.refused(t, http.StatusConflict, "", "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: "迟到的批准"})
		author.refused(t, http.StatusConflict, "", "POST", "/api/v1/alerts/"+v.ID+"/cancel", map[string]string{"reason": "再撤一次"})
		assertUnsent(t, h, v.ID)
		var pending []pendingAlert
		approver.mustCall(t, http.StatusOK, "GET", "/api/v1/approvals", nil, &pending)
		for _, p := range pending {
			if p.ID == v.ID {
				t.Fatalf("withdrawn alert %s still awaits approval", v.ID)
			}
		}
		if es := h.auditEntries(t, "action=alert.cancel"); !hasAudit(es, "alert.cancel", author.name, v.ID) {
			t.Fatalf("withdrawal not audited: %+v", es)
		}
	})
}

// TestPendingAlertExpires: an alert still waiting when its window ends
// becomes expired, says why, and can no longer be approved.
func TestPendingAlertExpires(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(100*time.Millisecond))
	activeTerminalInStore(t, h, villageA)
	short := AlertRequest{Title: "短时预警", Level: 3, Areas: []string{villageA}, Media: []string{media.SHA256}, ValidMinutes: 1}
	long := short
	long.Title, long.ValidMinutes = "长时预警", 30
	var s, l AlertView
	h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", short, &s)
	h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", long, &l)

	h.clock.advance(2 * time.Minute)
	got := h.waitStatus(t, s.ID, store.AlertExpired)
	if !strings.Contains(got.Comment, "validity window passed") {
		t.Fatalf("expired alert's comment %q does not say why", got.Comment)
	}
	if v := h.view(t, l.ID); v.Status != store.AlertPending {
		t.Fatalf("alert still inside its window is %s, want pending", v.Status)
	}
	h.approver(t).refused(t, http.StatusConflict, "", "POST", "/api/v1/alerts/"+s.ID+"/approve", decision{Comment: "迟到的批准"})
	assertUnsent(t, h, s.ID)
	var pending []pendingAlert
	h.approver(t).mustCall(t, http.StatusOK, "GET", "/api/v1/approvals", nil, &pending)
	if len(pending) != 1 || pending[0].ID != l.ID {
		t.Fatalf("approvals after expiry %+v, want only %s", pending, l.ID)
	}
}

// TestIssueNow: where the county enables it, a level 1 emergency goes out
// at once, marked for review and loudly audited; nothing else may skip
// approval that way.
func TestIssueNow(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(100*time.Millisecond))
	activeTerminalInStore(t, h, villageA)
	enabled := access.DefaultPolicy()
	enabled.IssueNowLevel1 = true
	req := func(level int) AlertRequest {
		return AlertRequest{Title: "紧急撤离", Level: level, Areas: []string{villageA}, Media: []string{media.SHA256}, IssueNow: true}
	}
	officer := h.officer(t)
	refusals := []struct {
		name   string
		policy access.Policy
		req    AlertRequest
	}{
		{"level 1 where the county has not enabled it", access.DefaultPolicy(), req(1)},
		{"level 2 where enabled", enabled, req(2)},
		{"level 4 where enabled", enabled, req(4)},
	}
	for _, c := range refusals {
		t.Run(c.name, func(t *testing.T) {
			h.setPolicy(t, c.policy)
			officer.refused(t, http.StatusBadRequest, "issue_now", "POST", "/api/v1/alerts", c.req)
			if n := h.alertCount(t); n != 0 {
				t.Fatalf("%d alerts stored after a refused issue-now", n)
			}
		})
	}

	h.setPolicy(t, enabled)
	var v AlertView
	officer.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", req(1), &v)
	if v.Status != store.AlertActive || !v.NeedsReview || v.Counts[protocol.DeliveryOffline] != 1 {
		t.Fatalf("issue-now alert: status %s, needs_review %v, counts %v", v.Status, v.NeedsReview, v.Counts)
	}
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+v.ID+"/command", nil, nil)
	if es := h.auditEntries(t, "action=alert.issue_now"); !hasAudit(es, "alert.issue_now", officer.name, v.ID) {
		t.Fatalf("no alert.issue_now audit entry for %s: %+v", v.ID, es)
	}
	var pending []pendingAlert
	h.approver(t).mustCall(t, http.StatusOK, "GET", "/api/v1/approvals", nil, &pending)
	if len(pending) != 1 || pending[0].ID != v.ID || !pending[0].NeedsReview {
		t.Fatalf("approvals %+v, want the issue-now alert awaiting review", pending)
	}

	// Review afterwards: by someone else, with a comment.
	reviewer := h.newUser(t, "duty", []string{access.Officer, access.Approver}, county)
	var own AlertView
	reviewer.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", req(1), &own)
	reviewer.refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+own.ID+"/review", decision{Comment: "自查"})
	h.approver(t).refused(t, http.StatusBadRequest, "comment", "POST", "/api/v1/alerts/"+v.ID+"/review", decision{})
	h.approver(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/review", decision{Comment: "处置得当"}, nil)
	if got := h.view(t, v.ID); got.NeedsReview || got.ReviewedBy != h.approver(t).name {
		t.Fatalf("after review: needs_review %v, reviewed_by %q", got.NeedsReview, got.ReviewedBy)
	}
	h.approver(t).refused(t, http.StatusNotFound, "", "POST", "/api/v1/alerts/"+v.ID+"/review", decision{Comment: "再审"})
}

// TestDrillRoles: drills (message kinds 3 to 5) only for the roles the
// county's policy names, and marked as drills.
func TestDrillRoles(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(100*time.Millisecond))
	activeTerminalInStore(t, h, villageA)
	cadre := h.newUser(t, "cadre-a", []string{access.Cadre}, villageA)
	officer := h.officer(t)
	cadreDrills := access.DefaultPolicy()
	cadreDrills.DrillRoles = []string{access.Cadre}
	drill := func(class string, msgType int) AlertRequest {
		level := 3
		if class == protocol.ClassDaily {
			level = 0
		}
		return AlertRequest{Class: class, MsgType: msgType, Level: level, Title: "演练", Areas: []string{villageA}, Media: []string{media.SHA256}}
	}
	cases := []struct {
		name   string
		policy access.Policy
		who    *client
		req    AlertRequest
		status int
	}{
		{"officer, platform drill, default policy", access.DefaultPolicy(), officer, drill(protocol.ClassEmergency, protocol.MsgPlatformDrill), http.StatusCreated},
		{"officer, terminal drill notice, default policy", access.DefaultPolicy(), officer, drill(protocol.ClassDaily, protocol.MsgTerminalDrill), http.StatusCreated},
		{"cadre, front-end drill notice, default policy", access.DefaultPolicy(), cadre, drill(protocol.ClassDaily, protocol.MsgFrontEndDrill), http.StatusForbidden},
		{"cadre, platform drill notice, cadres may drill", cadreDrills, cadre, drill(protocol.ClassDaily, protocol.MsgPlatformDrill), http.StatusCreated},
		{"cadre, actual notice, cadres may drill", cadreDrills, cadre, drill(protocol.ClassDaily, protocol.MsgActual), http.StatusCreated},
		{"officer, platform drill, cadres may drill", cadreDrills, officer, drill(protocol.ClassEmergency, protocol.MsgPlatformDrill), http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h.setPolicy(t, c.policy)
			if c.status != http.StatusCreated {
				before := h.alertCount(t)
				e := c.who.refused(t, c.status, "", "POST", "/api/v1/alerts", c.req)
				if !strings.Contains(e.Error, "drills may be sent by") || h.alertCount(t) != before {
					t.Fatalf("refusal %q; alerts %d, before %d", e.Error, h.alertCount(t), before)
				}
				return
			}
			var v AlertView
			c.who.mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", c.req, &v)
			if v.Drill != (c.req.MsgType >= protocol.MsgPlatformDrill) || v.MsgType != c.req.MsgType {
				t.Fatalf("alert of msg_type %d marked drill=%v", v.MsgType, v.Drill)
			}
		})
	}
}
