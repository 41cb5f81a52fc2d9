package controller

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	"dalaba/controller/store"
	"dalaba/protocol"
)

// maxBulkEnroll bounds one bulk enrollment request.
const maxBulkEnroll = 1000

// BulkEnrollRequest creates many terminals at once, for a rollout or the
// fleet simulator (dalaba sim). Each item is checked as for one terminal.
type BulkEnrollRequest struct {
	Terminals  []EnrollRequest `json:"terminals"`
	ValidHours int             `json:"valid_hours"` // default 72, for every token
}

func (c *Controller) apiBulkEnroll(w http.ResponseWriter, r *http.Request, p *principal) {
	var req BulkEnrollRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	for i, t := range req.Terminals {
		if !p.scope().Covers(t.AreaCode) {
			c.fail(w, r, forbidden("terminals[%d]: area %s is outside your areas", i, t.AreaCode))
			return
		}
	}
	res, err := c.bulkEnroll(r.Context(), p.name(), p.source, req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// bulkEnroll checks every item, then creates all the terminals in one
// transaction (all or none) and audits the request once, naming each id.
func (c *Controller) bulkEnroll(ctx context.Context, by, source string, req BulkEnrollRequest) ([]EnrollResult, error) {
	if n := len(req.Terminals); n == 0 || n > maxBulkEnroll {
		return nil, invalid("terminals", "%d terminals; send 1..%d per request", n, maxBulkEnroll)
	}
	if req.ValidHours == 0 {
		req.ValidHours = 72
	}
	if req.ValidHours < 1 || req.ValidHours > 24*30 {
		return nil, invalid("valid_hours", "%d is outside 1..720", req.ValidHours)
	}
	nts := make([]store.NewTerminal, len(req.Terminals))
	codes, hashes := make([]string, len(nts)), make([]string, len(nts))
	for i, t := range req.Terminals {
		if err := c.checkNewTerminal(ctx, t); err != nil {
			if ve, ok := err.(*ValidationError); ok {
				return nil, invalid(fmt.Sprintf("terminals[%d].%s", i, ve.Field), "%s", ve.Msg)
			}
			return nil, err
		}
		code, err := NewSecret()
		if err != nil {
			return nil, err
		}
		nts[i] = store.NewTerminal{AreaCode: t.AreaCode, Name: t.Name, Latitude: t.Latitude, Longitude: t.Longitude}
		codes[i], hashes[i] = code, HashSecret(code)
	}
	now := c.now()
	until := now.Add(time.Duration(req.ValidHours) * time.Hour)
	ts, err := c.store.CreateTerminals(ctx, nts, hashes, until, now)
	if err != nil {
		return nil, err
	}
	c.keyMu.RLock()
	fp := protocol.Fingerprint(c.keys[0].PublicKey)
	c.keyMu.RUnlock()
	out := make([]EnrollResult, len(ts))
	ids := make([]string, len(ts))
	for i, t := range ts {
		out[i] = EnrollResult{Terminal: t, EnrollToken: codes[i] + "." + fp, ValidUntil: until}
		ids[i] = t.ID
	}
	c.audit(ctx, by, source, "terminal.create_bulk", fmt.Sprintf("%d terminals", len(ts)), "", strings.Join(ids, ","),
		"one-time enrollment codes valid until "+until.Format(time.RFC3339))
	return out, nil
}
