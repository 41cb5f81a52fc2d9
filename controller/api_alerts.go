package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

func (c *Controller) apiUpload(w http.ResponseWriter, r *http.Request, p *principal) {
	max := int64(c.cfg.MaxUploadMB) << 20
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("upload is larger than the limit of %d MB", c.cfg.MaxUploadMB))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("upload interrupted: %v", err))
		return
	}
	m, err := c.AddMedia(r.Context(), r.URL.Query().Get("name"), data)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "media.upload", m.SHA256, "", "", fmt.Sprintf("%s, %d bytes, %d ms", m.Name, m.Size, m.DurationMS))
	writeJSON(w, http.StatusCreated, m)
}

func (c *Controller) apiMediaList(w http.ResponseWriter, r *http.Request, p *principal) {
	ms, err := c.store.MediaList(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ms)
}

func (c *Controller) apiCreateAlert(w http.ResponseWriter, r *http.Request, p *principal) {
	var req AlertRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.mayCompose(r.Context(), p, req); err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.CreateAlert(r.Context(), p.name(), req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	action := "alert.create"
	switch {
	case a.NeedsReview:
		action = "alert.issue_now"
	case a.Status == store.AlertActive:
		action = "alert.send"
	}
	c.auditAs(r.Context(), p, action, a.ID, "", a.Status, fmt.Sprintf("%s level %d %q to %v", a.Class, a.Level, a.Title, a.Targets))
	v, err := c.View(r.Context(), a.ID, false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (c *Controller) apiAlerts(w http.ResponseWriter, r *http.Request, p *principal) {
	as, err := c.store.Alerts(r.Context(), 200)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := make([]AlertView, 0, len(as))
	for _, a := range as {
		if !c.alertVisible(r.Context(), p, a) {
			continue
		}
		v, err := c.viewFor(r.Context(), p, a.ID, false)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

// apiAlert answers one alert with its deliveries, or with their counts
// only when asked ?deliveries=false (a client following a large alert's
// progress, so that 15,000 rows are not listed every second).
func (c *Controller) apiAlert(w http.ResponseWriter, r *http.Request, p *principal) {
	with := true
	switch q := r.URL.Query().Get("deliveries"); q {
	case "", "true":
	case "false":
		with = false
	default:
		c.fail(w, r, invalid("deliveries", "%q is neither true nor false", q))
		return
	}
	a, err := c.visibleAlert(r.Context(), p, r.PathValue("id"))
	var v AlertView
	if err == nil {
		v, err = c.viewFor(r.Context(), p, a.ID, with)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// viewFor is View as p may see it: deliveries to terminals outside their
// areas are left out of the list and of the counts.
func (c *Controller) viewFor(ctx context.Context, p *principal, id string, withDeliveries bool) (AlertView, error) {
	v, err := c.View(ctx, id, withDeliveries)
	if err != nil || c.alertInScope(ctx, p, v.Targets) == nil {
		return v, err // every target is theirs, so is every delivery
	}
	ds, err := c.store.Deliveries(ctx, id)
	if err != nil {
		return v, err
	}
	v.Counts, v.Deliveries = map[string]int{}, nil
	for _, d := range ds {
		if c.terminalVisible(ctx, p, d.TerminalID) {
			v.Counts[d.State]++
			if withDeliveries {
				v.Deliveries = append(v.Deliveries, d)
			}
		}
	}
	return v, nil
}

// apiAlertCommand returns the signed command exactly as terminals got it,
// for audit and for checking signatures independently.
func (c *Controller) apiAlertCommand(w http.ResponseWriter, r *http.Request, p *principal) {
	a, err := c.visibleAlert(r.Context(), p, r.PathValue("id"))
	if err == nil && len(a.Signed) == 0 {
		err = fmt.Errorf("alert %s is %s and has no signed command: %w", a.ID, a.Status, store.ErrNotFound)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(a.Signed)
}

func (c *Controller) apiCancel(w http.ResponseWriter, r *http.Request, p *principal) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &body); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	a, err := c.visibleAlert(r.Context(), p, r.PathValue("id"))
	if err == nil {
		err = c.alertInScope(r.Context(), p, a.Targets)
	}
	if err == nil && a.Class == protocol.ClassEmergency && !p.can(access.SendEmergency) {
		err = forbidden("only a county officer may cancel an emergency alert")
	}
	if err == nil {
		err = c.CancelAlert(r.Context(), p.name(), a.ID, body.Reason)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "alert.cancel", a.ID, a.Status, store.AlertCancelled, body.Reason)
	v, err := c.View(r.Context(), r.PathValue("id"), false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// apiEvents streams events as Server-Sent Events; ?alert=ID narrows them to
// one alert's deliveries.
func (c *Controller) apiEvents(w http.ResponseWriter, r *http.Request, p *principal) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	alert := r.URL.Query().Get("alert")
	sub := c.events.Subscribe(1024, func(e events.Event) bool {
		return (alert == "" || e.AlertID == alert) && c.eventVisible(p, e)
	})
	defer c.events.Unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": dalaba events\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			fmt.Fprintf(w, ": keep-alive dropped=%d\n\n", sub.Dropped())
		case e := <-sub.C:
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, data)
		}
		fl.Flush()
	}
}

// mayCompose checks a principal may send this alert: the class needs its
// role, a drill needs a drill role, and every target lies in their areas.
func (c *Controller) mayCompose(ctx context.Context, p *principal, req AlertRequest) error {
	if (req.Class == "" || req.Class == protocol.ClassEmergency) && !p.can(access.SendEmergency) {
		return forbidden("your roles (%s) may send daily notices only (class \"daily\")", strings.Join(p.user.Roles, ", "))
	}
	if req.MsgType >= protocol.MsgPlatformDrill {
		policy, err := c.Policy(ctx)
		if err != nil {
			return err
		}
		if !policy.MaySendDrill(p.user.Roles) {
			return forbidden("drills may be sent by %s only", strings.Join(policy.DrillRoles, ", "))
		}
	}
	for _, a := range req.Areas {
		if err := protocol.ValidAreaCode(a); err != nil {
			return invalid("areas", "%v", err)
		}
	}
	for _, id := range req.Terminals {
		if protocol.ValidEBRID(id) != nil {
			return invalid("terminals", "%v", protocol.ValidEBRID(id))
		}
	}
	return c.alertInScope(ctx, p, protocol.Targets{Areas: req.Areas, Terminals: req.Terminals})
}

// eventVisible filters live events by the principal's areas.
func (c *Controller) eventVisible(p *principal, e events.Event) bool {
	ctx := context.Background()
	switch d := e.Data.(type) {
	case store.Delivery:
		return c.terminalVisible(ctx, p, d.TerminalID)
	case store.Alert:
		return c.alertVisible(ctx, p, d)
	case map[string]any:
		for _, k := range []string{"id", "terminal_id"} {
			if id, ok := d[k].(string); ok {
				return c.terminalVisible(ctx, p, id)
			}
		}
	}
	return false
}

func (c *Controller) apiApprovals(w http.ResponseWriter, r *http.Request, p *principal) {
	as, err := c.store.Alerts(r.Context(), 500)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	type pendingView struct {
		AlertView
		Approvers []string `json:"approvers"` // who may decide
	}
	out := []pendingView{}
	for _, a := range as {
		if (a.Status != store.AlertPending && !a.NeedsReview) || !c.alertVisible(r.Context(), p, a) {
			continue
		}
		v, err := c.viewFor(r.Context(), p, a.ID, false)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		who, err := c.approversFor(r.Context(), a)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		out = append(out, pendingView{v, who})
	}
	writeJSON(w, http.StatusOK, out)
}

type decision struct {
	Comment string `json:"comment"`
}

func (c *Controller) apiApproveAlert(w http.ResponseWriter, r *http.Request, p *principal) {
	c.decide(w, r, p, true)
}

func (c *Controller) apiRejectAlert(w http.ResponseWriter, r *http.Request, p *principal) {
	c.decide(w, r, p, false)
}

func (c *Controller) decide(w http.ResponseWriter, r *http.Request, p *principal, approve bool) {
	var d decision
	if err := readJSON(r, &d); err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.visibleAlert(r.Context(), p, r.PathValue("id"))
	if err == nil {
		err = c.alertInScope(r.Context(), p, a.Targets)
	}
	if err == nil {
		a, err = c.Decide(r.Context(), p.name(), a.ID, approve, d.Comment)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, map[bool]string{true: "alert.approve", false: "alert.reject"}[approve], a.ID, store.AlertPending, a.Status, d.Comment)
	v, err := c.View(r.Context(), a.ID, false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

func (c *Controller) apiReviewAlert(w http.ResponseWriter, r *http.Request, p *principal) {
	var d decision
	if err := readJSON(r, &d); err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.visibleAlert(r.Context(), p, r.PathValue("id"))
	if err == nil {
		err = c.alertInScope(r.Context(), p, a.Targets)
	}
	switch {
	case err != nil:
	case a.CreatedBy == p.name():
		err = forbidden("%v", ErrOwnAlert)
	case strings.TrimSpace(d.Comment) == "":
		err = invalid("comment", "say what the review found")
	default:
		err = c.store.MarkReviewed(r.Context(), a.ID, p.name(), d.Comment)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "alert.review", a.ID, "needs review", "reviewed", d.Comment)
	writeJSON(w, http.StatusOK, map[string]string{"reviewed": a.ID})
}

// visibleAlert reads an alert the principal may see; one outside their
// areas is reported as not found, so its id reveals nothing.
func (c *Controller) visibleAlert(ctx context.Context, p *principal, id string) (store.Alert, error) {
	a, err := c.store.Alert(ctx, id)
	if err == nil && !c.alertVisible(ctx, p, a) {
		return store.Alert{}, fmt.Errorf("alert %s: %w", id, store.ErrNotFound)
	}
	return a, err
}
