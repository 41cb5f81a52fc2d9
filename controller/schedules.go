package controller

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"
	_ "time/tzdata" // the county's zone must load on a system without a zone database

	"dalaba/controller/schedule"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// scheduler keeps what the controller needs to make terminals' schedules:
// the county's calendar, its quiet hours, and what was sent on which
// connection.
type scheduler struct {
	loc   *time.Location
	quiet schedule.QuietHours
	days  int

	mu    sync.Mutex     // guards set
	set   *programSet    // live programs with their media; nil after a change
	sent  sync.Map       // terminal id → sentSchedule on its current connection
	terms [64]sync.Mutex // by terminal (terminalLock): one schedule at a time, versions grow without clashes
}

// terminalLock holds the lock of id's schedule, and returns what releases
// it. A lock per terminal (64, shared by hash): with one for all, every
// terminal coming online waited its turn for the database read of its last
// schedule, and a 15,000-terminal reconnect storm came online at about 150
// a second.
func (sc *scheduler) terminalLock(id string) func() {
	h := fnv.New32a()
	h.Write([]byte(id))
	m := &sc.terms[h.Sum32()%uint32(len(sc.terms))]
	m.Lock()
	return m.Unlock
}

// sentSchedule is a schedule sent on a connection and not yet confirmed.
type sentSchedule struct {
	s    *session
	hash string
}

// programSet is every live program with the media its items carry.
type programSet struct {
	progs []store.Program
	media map[string]protocol.Media
}

func newScheduler(cfg Config) (*scheduler, error) {
	loc, err := time.LoadLocation(cfg.TimeZone)
	if err != nil {
		return nil, fmt.Errorf("time_zone: %w", err)
	}
	quiet, err := schedule.ParseQuietHours(cfg.QuietHours)
	if err != nil {
		return nil, fmt.Errorf("quiet_hours: %w", err)
	}
	return &scheduler{loc: loc, quiet: quiet, days: cfg.ScheduleDays}, nil
}

// validateSchedules checks the schedule keys of a config.
func (c Config) validateSchedules() []error {
	var errs []error
	if _, err := time.LoadLocation(c.TimeZone); err != nil || c.TimeZone == "" {
		errs = append(errs, fmt.Errorf("time_zone: %q is not a known time zone (e.g. Asia/Shanghai)", c.TimeZone))
	}
	if _, err := schedule.ParseQuietHours(c.QuietHours); err != nil {
		errs = append(errs, fmt.Errorf("quiet_hours: %v", err))
	}
	if c.ScheduleDays < 1 || c.ScheduleDays > 7 {
		errs = append(errs, fmt.Errorf("schedule_days: %d is outside 1..7", c.ScheduleDays))
	}
	return errs
}

// quietFor reports whether an occurrence of a program at start is held
// back by the quiet hours. Programs are routine content (emergencies are
// alerts), so the quiet hours hold every program back.
func (c *Controller) quietFor(p store.Program, start time.Time) bool {
	return c.sched.quiet.Contains(start, c.sched.loc)
}

// scheduleWindow is what a schedule made at now covers: from the start of
// today on the county's calendar to the end of the ScheduleDays days after
// today, within a command's lifetime.
func (c *Controller) scheduleWindow(now time.Time) (from, until time.Time) {
	today := schedule.DateOf(now, c.sched.loc)
	from, until = today.In(c.sched.loc), today.AddDays(c.sched.days+1).In(c.sched.loc)
	if limit := from.Add(protocol.MaxCommandLifetime); until.After(limit) {
		until = limit
	}
	return from, until
}

// schedulePlan is a terminal's schedule before it is signed.
type schedulePlan struct {
	from, until time.Time
	items       []protocol.ScheduleItem // still playable, not quiet; in start order
	planned     []store.PlannedItem     // the same items, for the store
	quiet       []store.Outcome         // held back by the quiet hours
	hash        string                  // of the window and all its occurrences
	media       map[string]protocol.Media
}

// table lists the media the plan's items play, each once, in order of
// first use.
func (pl *schedulePlan) table() []protocol.Media {
	var out []protocol.Media
	seen := map[string]bool{}
	for _, it := range pl.items {
		for _, sha := range it.MediaIDs {
			if !seen[sha] {
				seen[sha] = true
				out = append(out, pl.media[sha])
			}
		}
	}
	return out
}

// plan computes a terminal's schedule at now from the live programs.
func (c *Controller) plan(set *programSet, terminalID, area string, now time.Time) schedulePlan {
	pl := schedulePlan{media: set.media}
	pl.from, pl.until = c.scheduleWindow(now)
	h := sha256.New()
	fmt.Fprintf(h, "%d %d\n", pl.from.UnixMilli(), pl.until.UnixMilli())
	for _, p := range set.progs {
		if !p.Targets.Includes(terminalID, area) {
			continue
		}
		late := time.Duration(p.LateMinutes) * time.Minute
		for _, start := range schedule.Occurrences(p.Rule, pl.from, pl.until, c.sched.loc) {
			if start.Before(p.EffectiveAt) {
				continue // the rule did not yet say so when this time came
			}
			id, latest, quiet := schedule.ItemID(p.ID, start, c.sched.loc), start.Add(late), c.quietFor(p, start)
			fmt.Fprintf(h, "%s|%q|%d|%d|%d|%d|%s|%v\n", id, p.Title, p.Priority, p.Volume, p.Repeat, p.LateMinutes, strings.Join(p.Media, ","), quiet)
			switch {
			case quiet:
				pl.quiet = append(pl.quiet, store.Outcome{TerminalID: terminalID, ItemID: id, ProgramID: p.ID, Start: start,
					State: protocol.OccurrenceSkipped, Reason: protocol.SkipQuietHours, Source: store.OutcomeController, ReportedAt: now})
			case latest.After(now):
				pl.items = append(pl.items, protocol.ScheduleItem{ID: id, ProgramID: p.ID, Title: p.Title, Start: start, Latest: latest,
					Priority: p.Priority, Volume: p.Volume, Repeat: p.Repeat, MediaIDs: slices.Clone(p.Media)})
			}
		}
	}
	slices.SortStableFunc(pl.items, func(a, b protocol.ScheduleItem) int { return a.Start.Compare(b.Start) })
	for _, it := range pl.items {
		pl.planned = append(pl.planned, store.PlannedItem{ItemID: it.ID, ProgramID: it.ProgramID, Start: it.Start, Latest: it.Latest})
	}
	pl.hash = hex.EncodeToString(h.Sum(nil))
	return pl
}

// programs returns the live programs with their media, loaded once after
// each change. Call with sched.mu held.
func (c *Controller) programs(ctx context.Context) (*programSet, error) {
	if c.sched.set != nil {
		return c.sched.set, nil
	}
	progs, err := c.store.Programs(ctx, false)
	if err != nil {
		return nil, err
	}
	set := &programSet{media: map[string]protocol.Media{}}
	for _, p := range progs {
		ok := true
		for _, sha := range p.Media {
			if _, seen := set.media[sha]; seen {
				continue
			}
			m, err := c.store.MediaByHash(ctx, sha)
			if err != nil {
				c.log.Error("program media unreadable; program left out of schedules", "program", p.ID, "sha256", sha, "err", err)
				ok = false
				break
			}
			set.media[sha] = m.Media
		}
		if ok {
			set.progs = append(set.progs, p)
		}
	}
	c.sched.set = set
	return set, nil
}

// pushSchedule makes a terminal's schedule and sends it on s, unless the
// terminal already holds the same one, or it went on this connection and
// its receipt is awaited. Nothing is sent to a terminal that never had a
// schedule and has nothing scheduled.
func (c *Controller) pushSchedule(ctx context.Context, s *session) error {
	defer c.sched.terminalLock(s.terminalID)()
	c.sched.mu.Lock() // the set is taken under the terminal's lock: a change's push comes after, with the new set
	set, err := c.programs(ctx)
	c.sched.mu.Unlock()
	if err != nil {
		return err
	}
	now := c.now()
	pl := c.plan(set, s.terminalID, s.areaCode, now)
	last, err := c.store.LatestSchedule(ctx, s.terminalID)
	switch {
	case errors.Is(err, store.ErrNotFound):
		if len(pl.items) == 0 && len(pl.quiet) == 0 {
			return nil
		}
	case err != nil:
		return err
	case last.Hash == pl.hash && !last.AckedAt.IsZero():
		return nil
	}
	if v, ok := c.sched.sent.Load(s.terminalID); ok && v.(sentSchedule) == (sentSchedule{s, pl.hash}) {
		return nil
	}
	v := store.ScheduleVersion{TerminalID: s.terminalID, Version: last.Version + 1, MadeAt: now, Hash: pl.hash}
	msg, err := c.signSchedule(&v, &pl, now)
	if err != nil {
		return err
	}
	if err := c.store.AddSchedule(ctx, v, pl.planned, pl.quiet); err != nil {
		return err
	}
	if s.send(msg) {
		c.sched.sent.Store(s.terminalID, sentSchedule{s, pl.hash})
		s.log.Info("schedule sent", "version", v.Version, "items", len(pl.items), "until", v.Until.Format(time.RFC3339), "command", v.CommandID)
	}
	return nil
}

// signSchedule signs a plan as version v for its terminal and returns the
// command frame. A schedule too large for one frame is cut at the end,
// and its window with it: the terminal gets the rest in a later version.
func (c *Controller) signSchedule(v *store.ScheduleVersion, pl *schedulePlan, now time.Time) ([]byte, error) {
	for {
		expires := pl.until
		if limit := now.Add(protocol.MaxCommandLifetime); expires.After(limit) {
			expires = limit
		}
		cmd := &protocol.Command{ID: newCommandID(), Kind: protocol.KindSchedule, IssuedAt: now, NotBefore: now.Add(-time.Minute),
			Expires: expires, Targets: protocol.Targets{Terminals: []string{v.TerminalID}},
			Schedule: &protocol.Schedule{Version: v.Version, From: pl.from, Until: pl.until, Media: pl.table(), Items: pl.items}}
		if err := cmd.Validate(); err != nil {
			return nil, fmt.Errorf("schedule %d of terminal %s: %w", v.Version, v.TerminalID, err)
		}
		sc, err := c.sign(cmd)
		if err != nil {
			return nil, err
		}
		msg, err := json.Marshal(protocol.Frame{Type: protocol.TypeCommand, Body: mustJSON(sc)})
		if err != nil {
			return nil, err
		}
		if len(msg) <= protocol.MaxFrameBytes {
			v.CommandID, v.From, v.Until = cmd.ID, pl.from, pl.until
			return msg, nil
		}
		cut := len(pl.items) * 3 / 4
		if cut == 0 {
			return nil, fmt.Errorf("schedule of terminal %s: one item is larger than a frame (%d bytes)", v.TerminalID, len(msg))
		}
		c.log.Warn("schedule too large for one frame; shortening its window", "terminal", v.TerminalID, "bytes", len(msg), "items", len(pl.items), "keep", cut)
		pl.until, pl.items, pl.planned = pl.items[cut].Start, pl.items[:cut], pl.planned[:cut]
	}
}

// scheduleOnline sends a terminal that just connected its schedule.
func (c *Controller) scheduleOnline(ctx context.Context, s *session) {
	if err := c.pushSchedule(ctx, s); err != nil {
		s.log.Error("make schedule", "err", err)
	}
}

// schedulesChanged forgets the loaded programs and pushes new schedules to
// the connected terminals that any of targets reaches (every connected
// terminal when none are given).
func (c *Controller) schedulesChanged(ctx context.Context, targets ...protocol.Targets) {
	c.sched.mu.Lock()
	c.sched.set = nil
	c.sched.mu.Unlock()
	for _, s := range c.sessions() {
		reached := len(targets) == 0
		for _, t := range targets {
			reached = reached || t.Includes(s.terminalID, s.areaCode)
		}
		if !reached {
			continue
		}
		if err := c.pushSchedule(ctx, s); err != nil {
			s.log.Error("make schedule", "err", err)
		}
	}
}

// sessions lists the connected terminals' sessions.
func (c *Controller) sessions() []*session {
	c.hub.mu.RLock()
	defer c.hub.mu.RUnlock()
	out := make([]*session, 0, len(c.hub.sessions))
	for _, s := range c.hub.sessions {
		out = append(out, s)
	}
	return out
}

// scheduleLoop checks every hour whether a connected terminal's schedule
// must be extended (a new day) or was never confirmed, and sends it.
func (c *Controller) scheduleLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			c.refreshSchedules(ctx)
		}
	}
}

// refreshSchedules pushes every connected terminal's schedule where it
// changed (the hour loop; tests call it after moving the clock).
func (c *Controller) refreshSchedules(ctx context.Context) {
	for _, s := range c.sessions() {
		if err := c.pushSchedule(ctx, s); err != nil && ctx.Err() == nil {
			s.log.Error("make schedule", "err", err)
		}
	}
}
