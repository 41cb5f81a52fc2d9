package controller

import (
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"dalaba/controller/store"
	"dalaba/protocol"
)

func (c *Controller) apiAreas(w http.ResponseWriter, r *http.Request, p *principal) {
	areas, err := c.store.Areas(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, areas)
}

func (c *Controller) apiPutArea(w http.ResponseWriter, r *http.Request, p *principal) {
	var a store.Area
	if err := readJSON(r, &a); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := protocol.ValidAreaCode(a.Code); err != nil {
		c.fail(w, r, invalid("code", "%v", err))
		return
	}
	if a.Parent != "" {
		if ok, err := c.store.AreaExists(r.Context(), a.Parent); err != nil || !ok {
			c.fail(w, r, invalid("parent", "area %s is not in the area tree", a.Parent))
			return
		}
		if !protocol.AreaContains(a.Parent, a.Code) || a.Parent == a.Code {
			c.fail(w, r, invalid("parent", "%s does not lie inside %s", a.Code, a.Parent))
			return
		}
	}
	if err := c.store.PutArea(r.Context(), a); err != nil {
		c.fail(w, r, invalid("name", "%v", err))
		return
	}
	c.auditAs(r.Context(), p, "area.put", a.Code, "", jsonText(a), "")
	writeJSON(w, http.StatusOK, a)
}

func (c *Controller) apiTerminals(w http.ResponseWriter, r *http.Request, p *principal) {
	area := r.URL.Query().Get("area")
	if area != "" && protocol.ValidAreaCode(area) != nil {
		c.fail(w, r, invalid("area", "%v", protocol.ValidAreaCode(area)))
		return
	}
	ts, err := c.store.Terminals(r.Context(), area)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := ts[:0]
	for _, t := range ts {
		if p.scope().Covers(t.AreaCode) {
			out = append(out, t)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Controller) apiTerminal(w http.ResponseWriter, r *http.Request, p *principal) {
	t, err := c.terminalInScope(r.Context(), p, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// EnrollRequest creates a terminal and its one-time enrollment token.
type EnrollRequest struct {
	AreaCode   string   `json:"area_code"`
	Name       string   `json:"name"`
	Latitude   *float64 `json:"latitude"`
	Longitude  *float64 `json:"longitude"`
	ValidHours int      `json:"valid_hours"` // default 72
}

// EnrollResult carries the token a technician puts in the terminal's config.
type EnrollResult struct {
	Terminal    store.Terminal `json:"terminal"`
	EnrollToken string         `json:"enroll_token"`
	ValidUntil  time.Time      `json:"valid_until"`
}

func (c *Controller) apiEnroll(w http.ResponseWriter, r *http.Request, p *principal) {
	var req EnrollRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	if !p.scope().Covers(req.AreaCode) {
		c.fail(w, r, forbidden("area %s is outside your areas", req.AreaCode))
		return
	}
	res, err := c.enroll(r.Context(), p.name(), p.source, req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// checkNewTerminal checks the area and name of a terminal to create.
func (c *Controller) checkNewTerminal(ctx context.Context, req EnrollRequest) error {
	if err := protocol.ValidAreaCode(req.AreaCode); err != nil {
		return invalid("area_code", "%v", err)
	}
	if ok, err := c.store.AreaExists(ctx, req.AreaCode); err != nil {
		return err
	} else if !ok {
		return invalid("area_code", "area %s is not in the area tree; add it first", req.AreaCode)
	}
	if strings.TrimSpace(req.Name) == "" {
		return invalid("name", "a name is required (e.g. 大塘村1号)")
	}
	return nil
}

// Enroll creates a terminal awaiting its first connection.
func (c *Controller) Enroll(ctx context.Context, by string, req EnrollRequest) (EnrollResult, error) {
	return c.enroll(ctx, by, "", req)
}

// enroll is Enroll for a request from source, which the audit entry names.
func (c *Controller) enroll(ctx context.Context, by, source string, req EnrollRequest) (EnrollResult, error) {
	if err := c.checkNewTerminal(ctx, req); err != nil {
		return EnrollResult{}, err
	}
	if req.ValidHours == 0 {
		req.ValidHours = 72
	}
	if req.ValidHours < 1 || req.ValidHours > 24*30 {
		return EnrollResult{}, invalid("valid_hours", "%d is outside 1..720", req.ValidHours)
	}
	code, err := NewSecret()
	if err != nil {
		return EnrollResult{}, err
	}
	now := c.now()
	until := now.Add(time.Duration(req.ValidHours) * time.Hour)
	t, err := c.store.CreateTerminal(ctx, store.NewTerminal{AreaCode: req.AreaCode, Name: req.Name, Latitude: req.Latitude, Longitude: req.Longitude},
		HashSecret(code), until, now)
	if err != nil {
		return EnrollResult{}, err
	}
	c.keyMu.RLock()
	fp := protocol.Fingerprint(c.keys[0].PublicKey)
	c.keyMu.RUnlock()
	c.audit(ctx, by, source, "terminal.create", t.ID, "", jsonText(t), "one-time enrollment code valid until "+until.Format(time.RFC3339))
	return EnrollResult{Terminal: t, EnrollToken: code + "." + fp, ValidUntil: until}, nil
}

func (c *Controller) apiPending(w http.ResponseWriter, r *http.Request, p *principal) {
	ps, err := c.store.PendingTerminals(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (c *Controller) apiApprove(w http.ResponseWriter, r *http.Request, p *principal) {
	var req EnrollRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.checkNewTerminal(r.Context(), req); err != nil {
		c.fail(w, r, err)
		return
	}
	if !p.scope().Covers(req.AreaCode) {
		c.fail(w, r, forbidden("area %s is outside your areas", req.AreaCode))
		return
	}
	t, err := c.store.ApprovePending(r.Context(), r.PathValue("kid"), store.NewTerminal{AreaCode: req.AreaCode, Name: req.Name,
		Latitude: req.Latitude, Longitude: req.Longitude}, c.now())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "terminal.approve", t.ID, "", jsonText(t), "pending key "+r.PathValue("kid"))
	writeJSON(w, http.StatusOK, t)
}

func (c *Controller) apiRevoke(w http.ResponseWriter, r *http.Request, p *principal) {
	id := r.PathValue("id")
	before, err := c.terminalInScope(r.Context(), p, id)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.store.Revoke(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	if s := c.hub.get(id); s != nil {
		s.close()
	}
	c.auditAs(r.Context(), p, "terminal.revoke", id, before.Status, store.TerminalRevoked, "")
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
}

func (c *Controller) apiConfigure(w http.ResponseWriter, r *http.Request, p *principal) {
	var cfg protocol.Config
	if err := readJSON(r, &cfg); err != nil {
		c.fail(w, r, err)
		return
	}
	if _, err := c.terminalInScope(r.Context(), p, r.PathValue("id")); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.ConfigureTerminal(r.Context(), p.name(), r.PathValue("id"), cfg); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "terminal.config", r.PathValue("id"), "", jsonText(cfg), "")
	writeJSON(w, http.StatusAccepted, map[string]string{"sent": r.PathValue("id")})
}

// apiTestTone makes one terminal in the caller's areas play the test tone
// (Controller.TestTone) and answers the alert, whose delivery view follows it.
func (c *Controller) apiTestTone(w http.ResponseWriter, r *http.Request, p *principal) {
	t, err := c.terminalInScope(r.Context(), p, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.TestTone(r.Context(), p.name(), t.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "terminal.test", t.ID, "", a.ID, fmt.Sprintf("%d Hz, %d s", TestToneHz, TestToneSeconds))
	writeJSON(w, http.StatusCreated, a)
}

func (c *Controller) apiReports(w http.ResponseWriter, r *http.Request, p *principal) {
	limit := 200
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			c.fail(w, r, invalid("limit", "%q must be 1..10000", v))
			return
		}
		limit = n
	}
	if id := r.PathValue("id"); id != "" {
		if _, err := c.terminalInScope(r.Context(), p, id); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	rs, err := c.store.Reports(r.Context(), r.PathValue("id"), r.URL.Query().Get("kind"), limit)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := rs[:0]
	for _, rep := range rs {
		if c.terminalVisible(r.Context(), p, rep.TerminalID) {
			out = append(out, rep)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Controller) apiFaults(w http.ResponseWriter, r *http.Request, p *principal) {
	fs, err := c.store.Faults(r.Context(), r.URL.Query().Get("active") != "false")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := fs[:0]
	for _, f := range fs {
		if c.terminalVisible(r.Context(), p, f.TerminalID) {
			out = append(out, f)
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// terminalInScope reads a terminal the principal may reach; one outside
// their areas is reported as not found, so ids elsewhere are not revealed.
func (c *Controller) terminalInScope(ctx context.Context, p *principal, id string) (store.Terminal, error) {
	t, err := c.store.Terminal(ctx, id)
	if err != nil {
		return t, err
	}
	if !p.scope().Covers(t.AreaCode) {
		return store.Terminal{}, fmt.Errorf("terminal %s: %w", id, store.ErrNotFound)
	}
	return t, nil
}

// terminalVisible reports whether a terminal lies in the principal's areas.
func (c *Controller) terminalVisible(ctx context.Context, p *principal, id string) bool {
	area, ok := c.terminalArea(ctx, id)
	return ok && p.scope().Covers(area)
}
