package controller

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"

	"dalaba/controller/store"
)

// TestIngestAlert: an external source's alert follows the source's policy
// (draft or auto, whatever the county's policy says), is scoped to the
// county, audited with the source as actor, and only its sender withdraws it.
func TestIngestAlert(t *testing.T) {
	t.Parallel()
	weather := Source{Kind: SourceCAP, Sender: "weather@gx.cma.gov.cn"}
	platform := Source{Kind: SourceEBD, Sender: "34502000000000000000001"}
	h := startController(t, func(c *Config) {
		c.Sources = []SourceConfig{
			{Kind: SourceCAP, Sender: weather.Sender, Issue: IssueDraft},
			{Kind: SourceEBD, Sender: platform.Sender, Issue: IssueAuto},
		}
	})
	h.setPolicy(t, noApproval()) // the source's policy wins: the CAP draft still waits
	_, termA := h.enrolledTerminal(t, villageA, "大巷村一号")
	m := h.upload(t, tone(300*time.Millisecond))
	ctx := context.Background()
	req := AlertRequest{Level: 2, Title: "暴雨橙色预警", Areas: []string{township}, Media: []string{m.SHA256}}

	draft, err := h.c.ingestAlert(ctx, weather, req)
	if err != nil {
		t.Fatal(err)
	}
	if draft.Status != store.AlertPending || draft.CreatedBy != "cap:"+weather.Sender {
		t.Fatalf("CAP draft: status %s by %s, want pending by the source", draft.Status, draft.CreatedBy)
	}
	// Any approver may decide on it: its author is the source.
	var v AlertView
	h.approver(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+draft.ID+"/approve", decision{Comment: "核实无误"}, &v)
	h.waitDelivery(t, draft.ID, termA, "done")

	auto, err := h.c.ingestAlert(ctx, platform, req)
	if err != nil || auto.Status != store.AlertActive {
		t.Fatalf("EBD auto: %v, status %s, want active", err, auto.Status)
	}
	es := h.auditEntries(t, "")
	if !hasAudit(es, "alert.create", weather.Actor(), draft.ID) || !hasAudit(es, "alert.send", platform.Actor(), auto.ID) {
		t.Fatalf("audit lacks the sources' entries: %+v", es[:min(len(es), 5)])
	}

	// Only the sender withdraws its alert.
	if err := h.c.ingestCancel(ctx, weather, auto.ID, "not mine"); !errors.Is(err, errForbidden) {
		t.Fatalf("another source cancelled: %v", err)
	}
	if err := h.c.ingestCancel(ctx, platform, auto.ID, "解除"); err != nil {
		t.Fatal(err)
	}
	if got := h.view(t, auto.ID).Status; got != store.AlertCancelled {
		t.Fatalf("after cancel: %s", got)
	}
	pend, err := h.c.ingestAlert(ctx, weather, req)
	if err != nil {
		t.Fatal(err)
	}
	if err := h.c.ingestCancel(ctx, weather, pend.ID, "解除"); err != nil {
		t.Fatal(err)
	}
	if got := h.view(t, pend.ID).Status; got != store.AlertCancelled {
		t.Fatalf("withdrawn draft: %s, want cancelled", got)
	}

	for name, c := range map[string]struct {
		src   Source
		req   AlertRequest
		field string
		err   error
	}{
		"unknown sender":   {Source{SourceCAP, "nobody"}, req, "", ErrUnknownSource},
		"outside county":   {weather, AlertRequest{Level: 2, Title: "x", Areas: []string{"450225000000"}, Media: req.Media}, "areas", nil},
		"unknown terminal": {weather, AlertRequest{Level: 2, Title: "x", Terminals: []string{"64502241020030000000099"}, Media: req.Media}, "terminals", nil},
		"no title":         {weather, AlertRequest{Level: 2, Areas: []string{township}, Media: req.Media}, "title", nil},
	} {
		before := h.alertCount(t)
		_, err := h.c.ingestAlert(ctx, c.src, c.req)
		var ve *ValidationError
		switch {
		case c.err != nil && !errors.Is(err, c.err):
			t.Errorf("%s: %v, want %v", name, err, c.err)
		case c.err == nil && (!errors.As(err, &ve) || ve.Field != c.field):
			t.Errorf("%s: %v, want a validation error on %s", name, err, c.field)
		}
		if h.alertCount(t) != before {
			t.Errorf("%s: an alert was stored", name)
		}
	}
}

func TestSourceConfigValidated(t *testing.T) {
	for name, c := range map[string]struct {
		s  []SourceConfig
		ok bool
	}{
		"draft":            {[]SourceConfig{{Kind: "cap", Sender: "a@b"}}, true},
		"auto signed":      {[]SourceConfig{{Kind: "cap", Sender: "a@b", Issue: "auto", RequireSignature: true}}, true},
		"auto unsigned":    {[]SourceConfig{{Kind: "cap", Sender: "a@b", Issue: "auto"}}, false},
		"ebd auto":         {[]SourceConfig{{Kind: "ebd", Sender: "34502000000000000000001", Issue: "auto"}}, true},
		"bad kind":         {[]SourceConfig{{Kind: "rss", Sender: "a"}}, false},
		"empty sender":     {[]SourceConfig{{Kind: "cap"}}, false},
		"bad issue":        {[]SourceConfig{{Kind: "cap", Sender: "a", Issue: "now"}}, false},
		"duplicate sender": {[]SourceConfig{{Kind: "cap", Sender: "a"}, {Kind: "cap", Sender: "a"}}, false},
	} {
		cfg := DefaultConfig()
		cfg.Sources = c.s
		if err := cfg.Validate(); (err == nil) != c.ok {
			t.Errorf("%s: %v, want ok=%v", name, err, c.ok)
		}
	}
}
