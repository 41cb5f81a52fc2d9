package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"time"

	"dalaba/controller"
	"dalaba/controller/schedule"
	"dalaba/protocol"
)

// ruleFlags are the command line's ways of saying when a program plays.
type ruleFlags struct {
	daily, weekdays, monthly, once, at, from, until, except string
	everyWeeks                                              int
}

// rule turns the flags into a recurrence rule; exactly one of --daily,
// --weekdays, --monthly, --every-weeks and --once says the kind.
func (f ruleFlags) rule() (schedule.Rule, error) {
	var r schedule.Rule
	kinds := 0
	for _, set := range []bool{f.daily != "", f.weekdays != "" && f.everyWeeks == 0, f.monthly != "", f.everyWeeks != 0, f.once != ""} {
		if set {
			kinds++
		}
	}
	if kinds != 1 {
		return r, errors.New("say when it plays with one of --daily, --weekdays, --monthly, --every-weeks or --once")
	}
	var err error
	switch {
	case f.daily != "":
		if f.at != "" {
			return r, errors.New("--daily takes the times itself; leave out --at")
		}
		r.Kind = schedule.Daily
		f.at = f.daily
	case f.monthly != "":
		r.Kind = schedule.Monthly
		for _, s := range splitList(f.monthly) {
			n, err := strconv.Atoi(s)
			if err != nil {
				return r, fmt.Errorf("--monthly: %q is not a day of the month", s)
			}
			r.MonthDays = append(r.MonthDays, n)
		}
	case f.everyWeeks != 0:
		r.Kind, r.EveryWeeks = schedule.Weeks, f.everyWeeks
	case f.weekdays != "":
		r.Kind = schedule.Weekly
	case f.once != "":
		r.Kind = schedule.Once
		day, clock, ok := strings.Cut(strings.TrimSpace(f.once), " ")
		if !ok {
			return r, fmt.Errorf(`--once: %q must be "YYYY-MM-DD HH:MM"`, f.once)
		}
		if f.from != "" || f.until != "" {
			return r, errors.New("--once: give the date in --once, not --from or --until")
		}
		f.from, f.at = day, clock
	}
	if f.weekdays != "" {
		for _, s := range splitList(f.weekdays) {
			w, err := schedule.ParseWeekday(s)
			if err != nil {
				return r, fmt.Errorf("--weekdays: %w", err)
			}
			r.Weekdays = append(r.Weekdays, w)
		}
	}
	if f.at == "" {
		return r, errors.New("--at: give the times of day, e.g. --at 07:00,18:30")
	}
	for _, s := range splitList(f.at) {
		c, err := schedule.ParseClock(s)
		if err != nil {
			return r, fmt.Errorf("--at: %w", err)
		}
		r.Times = append(r.Times, c)
	}
	if f.from != "" {
		if r.From, err = schedule.ParseDate(f.from); err != nil {
			return r, fmt.Errorf("--from: %w", err)
		}
	}
	if f.until != "" {
		if r.Until, err = schedule.ParseDate(f.until); err != nil {
			return r, fmt.Errorf("--until: %w", err)
		}
	}
	for _, s := range splitList(f.except) {
		d, err := schedule.ParseDate(s)
		if err != nil {
			return r, fmt.Errorf("--except: %w", err)
		}
		r.Except = append(r.Except, d)
	}
	return r, nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

// parsePriority reads "program", "daily" or a number on the ladder.
func parsePriority(s string) (int, error) {
	switch s {
	case "program", "":
		return protocol.PriorityProgram, nil
	case "daily":
		return protocol.PriorityDaily, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil {
		return 0, fmt.Errorf("--priority: %q must be program, daily or a number (40..70 for emergency levels 4..1)", s)
	}
	return n, nil
}

func cmdProgramAdd(ctx context.Context, args []string) error {
	fs := newFlags("program add")
	api := apiFlags(fs)
	var rf ruleFlags
	var areas, terms multi
	title := fs.String("title", "", "title (required)")
	audio := fs.String("audio", "", "MP3 or WAV files, comma separated, played in this order")
	fs.Var(&areas, "area", "target area code (repeatable or comma separated)")
	fs.Var(&terms, "terminal", "target terminal id (repeatable or comma separated)")
	fs.StringVar(&rf.daily, "daily", "", "every day at these times, e.g. 07:00,12:00")
	fs.StringVar(&rf.weekdays, "weekdays", "", "on these weekdays, e.g. mon,wed,fri (with --at; with --every-weeks, which days of the week)")
	fs.StringVar(&rf.monthly, "monthly", "", "on these days of the month, e.g. 1,15 (with --at); a month without the day skips it")
	fs.IntVar(&rf.everyWeeks, "every-weeks", 0, "every N weeks, counted from the week of --from (with --at)")
	fs.StringVar(&rf.once, "once", "", `once, e.g. "2026-12-01 07:00"`)
	fs.StringVar(&rf.at, "at", "", "times of day, e.g. 07:00,18:30")
	fs.StringVar(&rf.from, "from", "", "first date, YYYY-MM-DD (default today)")
	fs.StringVar(&rf.until, "until", "", "last date, inclusive (default no end)")
	fs.StringVar(&rf.except, "except", "", "dates to skip, comma separated")
	priority := fs.String("priority", "program", "program (10), daily (20, a daily notice) or a number on the ladder")
	volume := fs.Int("volume", 0, "0..100 (0: each terminal's own)")
	late := fs.Int("late", 0, "minutes it may still start late (default 10)")
	repeat := fs.Int("repeat", 1, "times the playlist plays")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *title == "" || *audio == "" || len(areas)+len(terms) == 0 {
		return errors.New("program add: --title, --audio and --area (or --terminal) are required")
	}
	rule, err := rf.rule()
	if err != nil {
		return fmt.Errorf("program add: %w", err)
	}
	prio, err := parsePriority(*priority)
	if err != nil {
		return err
	}
	c, err := api()
	if err != nil {
		return err
	}
	req := controller.ProgramRequest{Title: *title, Areas: splitList(areas.String()), Terminals: splitList(terms.String()),
		Volume: *volume, Priority: prio, Repeat: *repeat, LateMinutes: *late, Rule: rule}
	for _, f := range splitList(*audio) {
		m, err := c.upload(ctx, f)
		if err != nil {
			return err
		}
		req.Media = append(req.Media, m["sha256"].(string))
	}
	var v controller.ProgramView
	if err := c.post(ctx, "/api/v1/programs", req, &v); err != nil {
		return err
	}
	fmt.Printf("program %s: %s, %s\n", v.ID, v.Title, v.Schedule)
	for _, n := range v.Notes {
		fmt.Printf("  note: %s\n", n)
	}
	for _, t := range v.Next {
		fmt.Printf("  next: %s\n", t.Format("2006-01-02 15:04 Mon"))
	}
	return nil
}

func cmdPrograms(ctx context.Context, args []string) error {
	fs := newFlags("programs")
	api := apiFlags(fs)
	deleted := fs.Bool("deleted", false, "include deleted programs")
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var vs []controller.ProgramView
	if err := c.get(ctx, "/api/v1/programs?deleted="+strconv.FormatBool(*deleted), &vs); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "ID\tTITLE\tWHEN\tTARGETS\tPRIORITY\tNEXT")
	for _, v := range vs {
		next := "-"
		if len(v.Next) > 0 {
			next = v.Next[0].Format("01-02 15:04")
		}
		if !v.DeletedAt.IsZero() {
			next = "deleted " + v.DeletedAt.Local().Format("2006-01-02")
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\n", v.ID, v.Title, v.Schedule, strings.Join(append(v.Targets.Areas, v.Targets.Terminals...), ","), v.Priority, next)
	}
	return tw.Flush()
}

func cmdProgramShow(ctx context.Context, args []string) error {
	fs := newFlags("program show")
	api := apiFlags(fs)
	days := fs.Int("days", 3, "days back to explain")
	terminal := fs.String("terminal", "", "only this terminal")
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	var v controller.ProgramView
	if err := c.get(ctx, "/api/v1/programs/"+url.PathEscape(pos[0]), &v); err != nil {
		return err
	}
	now := time.Now()
	q := url.Values{"from": {now.AddDate(0, 0, -*days).Format(time.RFC3339)}, "until": {now.Add(24 * time.Hour).Format(time.RFC3339)}}
	if *terminal != "" {
		q.Set("terminal", *terminal)
	}
	var tab controller.OccurrenceTable
	if err := c.get(ctx, "/api/v1/programs/"+url.PathEscape(pos[0])+"/occurrences?"+q.Encode(), &tab); err != nil {
		return err
	}
	fmt.Printf("%s  %s\n%s · priority %d · late by up to %d min · to %s\n\n", v.ID, v.Title, v.Schedule, v.Priority, v.LateMinutes,
		strings.Join(append(v.Targets.Areas, v.Targets.Terminals...), ", "))
	for _, n := range v.Notes {
		fmt.Printf("note: %s\n", n)
	}
	tw := table()
	fmt.Fprintln(tw, "START\tTERMINAL\tSTATE\tWHAT HAPPENED")
	for _, r := range tab.Rows {
		name := r.TerminalID
		if r.TerminalName != "" {
			name += " " + r.TerminalName
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Start.Format("01-02 15:04"), name, r.State, occurrenceText(r))
	}
	tw.Flush()
	keys := make([]string, 0, len(tab.Counts))
	for k := range tab.Counts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	fmt.Println()
	for _, k := range keys {
		fmt.Printf("%s %d  ", k, tab.Counts[k])
	}
	fmt.Println()
	return nil
}

// occurrenceText says in words what happened to an occurrence.
func occurrenceText(r controller.OccurrenceRow) string {
	played := (time.Duration(r.PlayedMS) * time.Millisecond).Round(time.Second)
	switch r.State {
	case protocol.OccurrencePlayed:
		return fmt.Sprintf("played %s from %s", played, r.Started.Format("15:04:05"))
	case protocol.OccurrencePreempted:
		return fmt.Sprintf("cut off by %s after %s", r.PreemptedBy, played)
	case controller.OccurrencePending:
		return "not yet due"
	case controller.OccurrenceUnreported:
		return "the terminal has it but has not reported (offline since?)"
	}
	why := map[string]string{
		protocol.SkipOffline:         "never reached the terminal (offline)",
		protocol.SkipMediaMissing:    "the audio was not on the terminal in time",
		protocol.SkipOutsideValidity: "could not start within its late window",
		protocol.SkipQuietHours:      "inside the quiet hours",
		protocol.SkipReplaced:        "a newer schedule dropped it",
	}[r.Reason]
	if why == "" {
		why = r.Reason
	}
	return why
}

func cmdProgramDelete(ctx context.Context, args []string) error {
	fs := newFlags("program delete")
	api := apiFlags(fs)
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	if err := c.do(ctx, http.MethodDelete, "/api/v1/programs/"+url.PathEscape(pos[0]), nil, "", nil); err != nil {
		return err
	}
	fmt.Fprintf(os.Stdout, "program %s deleted; terminals get schedules without it\n", pos[0])
	return nil
}
