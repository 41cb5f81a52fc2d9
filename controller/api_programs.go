package controller

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"dalaba/controller/schedule"
	"dalaba/controller/store"
)

func (c *Controller) apiCreateProgram(w http.ResponseWriter, r *http.Request, pr *principal) {
	var req ProgramRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	p := programFrom(req)
	err := c.checkProgram(r.Context(), &p, c.now())
	if err == nil {
		err = c.mayManageProgram(r.Context(), pr, p)
	}
	if err == nil {
		p, err = c.CreateProgram(r.Context(), pr.name(), p)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), pr, "program.create", p.ID, "", jsonText(p), fmt.Sprintf("%q %s to %v", p.Title, p.Rule.String(), p.Targets))
	writeJSON(w, http.StatusCreated, c.viewProgram(p, 5))
}

func (c *Controller) apiPrograms(w http.ResponseWriter, r *http.Request, pr *principal) {
	ps, err := c.store.Programs(r.Context(), r.URL.Query().Get("deleted") == "true")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := []ProgramView{}
	for _, p := range ps {
		if c.targetsVisible(r.Context(), pr, p.Targets) {
			out = append(out, c.viewProgram(p, 1))
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// programVisible reads a program the principal may see; one outside their
// areas is not found.
func (c *Controller) programVisible(ctx context.Context, pr *principal, id string) (store.Program, error) {
	p, err := c.store.Program(ctx, id)
	if err == nil && !c.targetsVisible(ctx, pr, p.Targets) {
		err = fmt.Errorf("program %s: %w", id, store.ErrNotFound)
	}
	return p, err
}

func (c *Controller) apiProgram(w http.ResponseWriter, r *http.Request, pr *principal) {
	p, err := c.programVisible(r.Context(), pr, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c.viewProgram(p, 10))
}

func (c *Controller) apiUpdateProgram(w http.ResponseWriter, r *http.Request, pr *principal) {
	var patch ProgramPatch
	if err := readJSON(r, &patch); err != nil {
		c.fail(w, r, err)
		return
	}
	old, err := c.programVisible(r.Context(), pr, r.PathValue("id"))
	if err == nil && !old.DeletedAt.IsZero() {
		err = fmt.Errorf("program %s was deleted: %w", old.ID, store.ErrNotFound)
	}
	if err == nil {
		err = c.mayManageProgram(r.Context(), pr, old)
	}
	p := old
	replanned := patch.apply(&p)
	if err == nil {
		err = c.checkProgram(r.Context(), &p, c.now())
	}
	if err == nil {
		err = c.mayManageProgram(r.Context(), pr, p)
	}
	if err == nil {
		p, err = c.UpdateProgram(r.Context(), pr.name(), old, p, replanned)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), pr, "program.update", p.ID, jsonText(old), jsonText(p), p.Rule.String())
	writeJSON(w, http.StatusOK, c.viewProgram(p, 5))
}

func (c *Controller) apiDeleteProgram(w http.ResponseWriter, r *http.Request, pr *principal) {
	p, err := c.programVisible(r.Context(), pr, r.PathValue("id"))
	if err == nil && !p.DeletedAt.IsZero() {
		err = fmt.Errorf("program %s was already deleted: %w", p.ID, store.ErrNotFound)
	}
	if err == nil {
		err = c.mayManageProgram(r.Context(), pr, p)
	}
	if err == nil {
		err = c.DeleteProgram(r.Context(), pr.name(), p)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), pr, "program.delete", p.ID, jsonText(p), "", fmt.Sprintf("%q", p.Title))
	writeJSON(w, http.StatusOK, map[string]string{"deleted": p.ID})
}

// apiProgramOccurrences answers what happened to a program's occurrences
// from ?from= to ?until= (RFC 3339, or a date on the county's calendar;
// default the last three days and the next one), for the terminals in
// the principal's areas, or one ?terminal=.
func (c *Controller) apiProgramOccurrences(w http.ResponseWriter, r *http.Request, pr *principal) {
	p, err := c.programVisible(r.Context(), pr, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.now()
	from, err := c.timeParam(r, "from", now.Add(-72*time.Hour))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	until, err := c.timeParam(r, "until", now.Add(24*time.Hour))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if !until.After(from) || until.Sub(from) > MaxOccurrenceRange {
		c.fail(w, r, invalid("until", "the span %s..%s must be positive and at most %d days", from.Format(time.RFC3339),
			until.Format(time.RFC3339), int(MaxOccurrenceRange.Hours()/24)))
		return
	}
	only := r.URL.Query().Get("terminal")
	tab, err := c.WhatHappened(r.Context(), p, from, until, func(id string) bool {
		return (only == "" || id == only) && c.terminalVisible(r.Context(), pr, id)
	})
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, tab)
}

// timeParam reads a query parameter as RFC 3339 or as a date (its first
// instant on the county's calendar), or returns def when it is absent.
func (c *Controller) timeParam(r *http.Request, name string, def time.Time) (time.Time, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return def, nil
	}
	if t, err := time.Parse(time.RFC3339, v); err == nil {
		return t, nil
	}
	d, err := schedule.ParseDate(v)
	if err != nil {
		return time.Time{}, invalid(name, "%q must be RFC 3339 (2026-12-01T07:00:00+08:00) or a date (2026-12-01)", v)
	}
	return d.In(c.sched.loc), nil
}
