package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"dalaba/controller/schedule"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// Program limits and defaults.
const (
	MaxProgramMedia    = 8
	DefaultLateMinutes = 10
	MaxLateMinutes     = 720
)

// programPriorities are the places on the ladder a program may take:
// routine and daily notice for anyone who manages programs, emergency
// levels for those who may send emergencies.
// Programs are routine content. An emergency priority would let one person
// schedule an emergency-level broadcast past the two-person rule, so it is
// not offered: a siren test is a drill alert, approved like any other.
var programPriorities = []int{protocol.PriorityProgram, protocol.PriorityDaily}

// ProgramRequest creates a program. Zero values take defaults.
type ProgramRequest struct {
	Title       string        `json:"title"`
	Media       []string      `json:"media"` // sha256 of uploaded media, in play order
	Areas       []string      `json:"areas"`
	Terminals   []string      `json:"terminals"`
	Volume      int           `json:"volume"`       // 0: each terminal's own
	Priority    int           `json:"priority"`     // default protocol.PriorityProgram (10); 20 daily notice
	Repeat      int           `json:"repeat"`       // default 1
	LateMinutes int           `json:"late_minutes"` // how late it may still start; default 10
	Rule        schedule.Rule `json:"rule"`         // rule.from defaults to today
}

// ProgramPatch changes the fields it carries and keeps the others.
type ProgramPatch struct {
	Title       *string        `json:"title"`
	Media       *[]string      `json:"media"`
	Areas       *[]string      `json:"areas"`
	Terminals   *[]string      `json:"terminals"`
	Volume      *int           `json:"volume"`
	Priority    *int           `json:"priority"`
	Repeat      *int           `json:"repeat"`
	LateMinutes *int           `json:"late_minutes"`
	Rule        *schedule.Rule `json:"rule"`
}

// ProgramView is a program as the API shows it.
type ProgramView struct {
	store.Program
	Schedule string      `json:"schedule"`       // the rule in words
	Next     []time.Time `json:"next,omitempty"` // the next few occurrences that will play
	Notes    []string    `json:"notes,omitempty"`
}

func newProgramID() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// programFrom fills a request's defaults into a new program.
func programFrom(req ProgramRequest) store.Program {
	p := store.Program{Title: strings.TrimSpace(req.Title), Media: req.Media, Targets: protocol.Targets{Areas: req.Areas, Terminals: req.Terminals},
		Volume: req.Volume, Priority: req.Priority, Repeat: req.Repeat, LateMinutes: req.LateMinutes, Rule: req.Rule}
	if p.Priority == 0 {
		p.Priority = protocol.PriorityProgram
	}
	if p.Repeat == 0 {
		p.Repeat = 1
	}
	if p.LateMinutes == 0 {
		p.LateMinutes = DefaultLateMinutes
	}
	return p
}

// apply changes p by a patch and reports whether when or where it plays
// changed (its rule, targets or late window).
func (pt ProgramPatch) apply(p *store.Program) (replanned bool) {
	set := func(dst *string, v *string) {
		if v != nil {
			*dst = strings.TrimSpace(*v)
		}
	}
	setInt := func(dst *int, v *int) {
		if v != nil {
			*dst = *v
		}
	}
	set(&p.Title, pt.Title)
	setInt(&p.Volume, pt.Volume)
	setInt(&p.Priority, pt.Priority)
	setInt(&p.Repeat, pt.Repeat)
	if pt.Media != nil {
		p.Media = *pt.Media
	}
	if pt.Areas != nil {
		p.Targets.Areas, replanned = *pt.Areas, true
	}
	if pt.Terminals != nil {
		p.Targets.Terminals, replanned = *pt.Terminals, true
	}
	if pt.LateMinutes != nil {
		p.LateMinutes, replanned = *pt.LateMinutes, true
	}
	if pt.Rule != nil {
		p.Rule, replanned = *pt.Rule, true
	}
	return replanned
}

// checkProgram validates a program, filling rule.from with today; errors
// name the request field.
func (c *Controller) checkProgram(ctx context.Context, p *store.Program, now time.Time) error {
	today := schedule.DateOf(now, c.sched.loc)
	switch {
	case p.Title == "" || len(p.Title) > 200:
		return invalid("title", "a title of 1..200 bytes is required")
	case len(p.Media) == 0 || len(p.Media) > MaxProgramMedia:
		return invalid("media", "give 1..%d uploaded media (sha256), not %d", MaxProgramMedia, len(p.Media))
	case p.Volume < 0 || p.Volume > 100:
		return invalid("volume", "%d must be 0..100 (0: each terminal's own volume)", p.Volume)
	case !slices.Contains(programPriorities, p.Priority):
		return invalid("priority", "%d must be 10 (program) or 20 (daily notice); emergencies are alerts, approved by a second person", p.Priority)
	case p.Repeat < 1 || p.Repeat > 100:
		return invalid("repeat", "%d must be 1..100", p.Repeat)
	case p.LateMinutes < 1 || p.LateMinutes > MaxLateMinutes:
		return invalid("late_minutes", "%d must be 1..%d", p.LateMinutes, MaxLateMinutes)
	}
	for _, sha := range p.Media {
		if _, err := c.store.MediaByHash(ctx, sha); errors.Is(err, store.ErrNotFound) {
			return invalid("media", "no uploaded media with sha256 %q", sha)
		} else if err != nil {
			return err
		}
	}
	if err := p.Targets.Validate(); err != nil {
		field := "areas"
		if len(p.Targets.Areas) == 0 && len(p.Targets.Terminals) > 0 {
			field = "terminals"
		}
		return invalid(field, "%v", err)
	}
	if p.Rule.From.IsZero() {
		p.Rule.From = today
	}
	if err := p.Rule.Validate(); err != nil {
		var re *schedule.Error
		if errors.As(err, &re) {
			return invalid("rule."+re.Field, "%s", re.Msg)
		}
		return invalid("rule", "%v", err)
	}
	if !p.Rule.Until.IsZero() && p.Rule.Until.Compare(today) < 0 {
		return invalid("rule.until", "%s has passed", p.Rule.Until)
	}
	return nil
}

// mayManageProgram checks a principal may create, change or delete a
// program like p: every target in their areas.
func (c *Controller) mayManageProgram(ctx context.Context, pr *principal, p store.Program) error {
	return c.alertInScope(ctx, pr, p.Targets)
}

// targetsVisible: a program is visible to a principal whose areas share
// any place with its targets.
func (c *Controller) targetsVisible(ctx context.Context, pr *principal, t protocol.Targets) bool {
	return c.alertVisible(ctx, pr, store.Alert{Targets: t})
}

// CreateProgram stores a checked program and pushes the schedules it
// changes. Permission is the caller's to check.
func (c *Controller) CreateProgram(ctx context.Context, by string, p store.Program) (store.Program, error) {
	now := c.now()
	p.ID, p.CreatedAt, p.CreatedBy, p.UpdatedAt, p.UpdatedBy, p.EffectiveAt = newProgramID(), now, by, now, by, now
	if err := c.store.CreateProgram(ctx, p); err != nil {
		return p, err
	}
	c.log.Info("program created", "program", p.ID, "by", by, "title", p.Title, "schedule", p.Rule.String())
	c.schedulesChanged(ctx, p.Targets)
	return p, nil
}

// UpdateProgram stores a changed program and pushes the schedules of its
// old and new targets.
func (c *Controller) UpdateProgram(ctx context.Context, by string, old, p store.Program, replanned bool) (store.Program, error) {
	now := c.now()
	p.UpdatedAt, p.UpdatedBy = now, by
	if replanned {
		p.EffectiveAt = now
	}
	if err := c.store.UpdateProgram(ctx, p); err != nil {
		return p, err
	}
	c.log.Info("program changed", "program", p.ID, "by", by, "schedule", p.Rule.String())
	c.schedulesChanged(ctx, old.Targets, p.Targets)
	return p, nil
}

// DeleteProgram ends a program and pushes schedules without it.
func (c *Controller) DeleteProgram(ctx context.Context, by string, p store.Program) error {
	if err := c.store.DeleteProgram(ctx, p.ID, by, c.now()); err != nil {
		return err
	}
	c.log.Info("program deleted", "program", p.ID, "by", by)
	c.schedulesChanged(ctx, p.Targets)
	return nil
}

// viewProgram describes a program with its next occurrences.
func (c *Controller) viewProgram(p store.Program, next int) ProgramView {
	v := ProgramView{Program: p, Schedule: p.Rule.String()}
	for _, t := range p.Rule.Times {
		if c.sched.quiet.ContainsClock(t) {
			v.Notes = append(v.Notes, fmt.Sprintf("%s lies in the quiet hours %s: it will not play", t, c.sched.quiet))
		}
	}
	if !p.DeletedAt.IsZero() || next == 0 {
		return v
	}
	from := c.now()
	if p.EffectiveAt.After(from) {
		from = p.EffectiveAt
	}
	end := from.AddDate(2, 0, 0) // a rule with nothing in two years shows no next
	for len(v.Next) < next && from.Before(end) {
		until := from.AddDate(0, 2, 0)
		for _, t := range schedule.Occurrences(p.Rule, from, until, c.sched.loc) {
			if len(v.Next) < next && !c.quietFor(p, t) {
				v.Next = append(v.Next, t)
			}
		}
		from = until
	}
	return v
}
