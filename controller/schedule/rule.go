// Package schedule turns a program's recurrence rule into the concrete
// instants it plays, on the county's calendar and wall clock, and decides
// quiet hours. It is pure: no clock, no I/O. The same rule, window and
// zone always give the same instants, on every controller.
package schedule

import (
	"fmt"
	"slices"
	"strings"
	"time"
)

// Kinds of recurrence.
const (
	Once    = "once"    // on the From date only
	Daily   = "daily"   // every day
	Weekly  = "weekly"  // on the chosen weekdays
	Monthly = "monthly" // on the chosen days of the month
	Weeks   = "weeks"   // every EveryWeeks weeks, counted from the week of From
)

// Limits of a rule.
const (
	MaxTimes      = 48
	MaxExceptions = 366
	MaxEveryWeeks = 52
)

// Rule says when a program plays: on which dates, and at which times of day
// on each. Dates and times are the county's wall clock; the range From ..
// Until is inclusive.
//
// A monthly day that a month lacks (the 31st in April, the 29th of February
// in a common year) is skipped in that month: it does not move to the last
// day. Every-N-weeks counts whole weeks (Monday to Sunday) from the week
// that holds From, so "every 2 weeks" keeps its rhythm across a year's end.
type Rule struct {
	Kind       string    `json:"kind"`
	Times      []Clock   `json:"times"`                 // at least one
	Weekdays   []Weekday `json:"weekdays,omitempty"`    // weekly (required), weeks (default: From's weekday)
	MonthDays  []int     `json:"month_days,omitempty"`  // monthly: 1..31
	EveryWeeks int       `json:"every_weeks,omitempty"` // weeks: 1..52
	From       Date      `json:"from"`                  // first date; for once, the date
	Until      Date      `json:"until,omitzero"`        // last date, inclusive; zero: no end
	Except     []Date    `json:"except,omitempty"`      // dates skipped
}

// Error is a rule that breaks a limit. Field names the rule's JSON field.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Field + ": " + e.Msg }

func fail(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// Validate checks a rule; errors are *Error naming the field.
func (r *Rule) Validate() error {
	switch r.Kind {
	case Once, Daily, Weekly, Monthly, Weeks:
	default:
		return fail("kind", "%q must be one of once, daily, weekly, monthly, weeks", r.Kind)
	}
	if len(r.Times) == 0 || len(r.Times) > MaxTimes {
		return fail("times", "give 1..%d times of day, not %d", MaxTimes, len(r.Times))
	}
	for i, c := range r.Times {
		if !c.valid() {
			return fail("times", "%d minutes is outside 00:00..23:59", int(c))
		}
		if slices.Contains(r.Times[:i], c) {
			return fail("times", "%s is given twice", c)
		}
	}
	if r.From.IsZero() {
		return fail("from", "a first date is required")
	}
	if !r.Until.IsZero() && r.Until.Compare(r.From) < 0 {
		return fail("until", "%s is before from %s", r.Until, r.From)
	}
	if len(r.Except) > MaxExceptions {
		return fail("except", "%d dates, at most %d", len(r.Except), MaxExceptions)
	}
	if r.Kind != Weekly && r.Kind != Weeks && len(r.Weekdays) > 0 {
		return fail("weekdays", "only for kinds weekly and weeks, not %s", r.Kind)
	}
	for i, w := range r.Weekdays {
		if w < 0 || w > 6 {
			return fail("weekdays", "%d is outside 0..6", int(w))
		}
		if slices.Contains(r.Weekdays[:i], w) {
			return fail("weekdays", "%s is given twice", w)
		}
	}
	if r.Kind != Monthly && len(r.MonthDays) > 0 {
		return fail("month_days", "only for kind monthly, not %s", r.Kind)
	}
	if r.Kind != Weeks && r.EveryWeeks != 0 {
		return fail("every_weeks", "only for kind weeks, not %s", r.Kind)
	}
	switch r.Kind {
	case Once:
		if !r.Until.IsZero() && r.Until != r.From {
			return fail("until", "a one-off program plays on its from date only; leave until empty")
		}
	case Weekly:
		if len(r.Weekdays) == 0 {
			return fail("weekdays", "choose at least one weekday")
		}
	case Monthly:
		if len(r.MonthDays) == 0 {
			return fail("month_days", "choose at least one day of the month")
		}
		for i, d := range r.MonthDays {
			if d < 1 || d > 31 {
				return fail("month_days", "%d is outside 1..31", d)
			}
			if slices.Contains(r.MonthDays[:i], d) {
				return fail("month_days", "%d is given twice", d)
			}
		}
	case Weeks:
		if r.EveryWeeks < 1 || r.EveryWeeks > MaxEveryWeeks {
			return fail("every_weeks", "%d is outside 1..%d", r.EveryWeeks, MaxEveryWeeks)
		}
	}
	return nil
}

// Matches reports whether the rule plays on date d.
func (r *Rule) Matches(d Date) bool {
	if d.Compare(r.From) < 0 || (!r.Until.IsZero() && d.Compare(r.Until) > 0) || slices.Contains(r.Except, d) {
		return false
	}
	switch r.Kind {
	case Once:
		return d == r.From
	case Daily:
		return true
	case Weekly:
		return slices.Contains(r.Weekdays, Weekday(d.Weekday()))
	case Monthly:
		return slices.Contains(r.MonthDays, d.Day)
	case Weeks:
		days := r.Weekdays
		if len(days) == 0 {
			days = []Weekday{Weekday(r.From.Weekday())}
		}
		if !slices.Contains(days, Weekday(d.Weekday())) || r.EveryWeeks < 1 {
			return false
		}
		weeks := (monday(d) - monday(r.From)) / 7
		return weeks%int64(r.EveryWeeks) == 0
	}
	return false
}

// monday is the day number of the Monday that starts d's week.
func monday(d Date) int64 { return d.dayNumber() - int64((d.Weekday()+6)%7) }

// Occurrences lists, in order, the instants in [from, until) at which the
// rule plays, reading dates and times of day on the calendar and wall
// clock of loc (see At for the days daylight saving moves clocks).
func Occurrences(r Rule, from, until time.Time, loc *time.Location) []time.Time {
	if !until.After(from) {
		return nil
	}
	first, last := DateOf(from, loc).AddDays(-1), DateOf(until, loc)
	if first.Compare(r.From) < 0 {
		first = r.From
	}
	if !r.Until.IsZero() && last.Compare(r.Until) > 0 {
		last = r.Until
	}
	var out []time.Time
	for d := first; d.Compare(last) <= 0; d = d.AddDays(1) {
		if !r.Matches(d) {
			continue
		}
		for _, c := range r.Times {
			if t := At(d, c, loc); !t.Before(from) && t.Before(until) {
				out = append(out, t)
			}
		}
	}
	slices.SortFunc(out, func(a, b time.Time) int { return a.Compare(b) })
	return slices.CompactFunc(out, func(a, b time.Time) bool { return a.Equal(b) })
}

// String describes the rule for an operator, e.g. "mon, wed at 07:00 from
// 2026-12-01".
func (r Rule) String() string {
	var b strings.Builder
	switch r.Kind {
	case Once:
		fmt.Fprintf(&b, "once on %s", r.From)
	case Daily:
		b.WriteString("daily")
	case Weekly:
		b.WriteString(joinStrings(r.Weekdays))
	case Monthly:
		fmt.Fprintf(&b, "monthly on day %s", joinStrings(r.MonthDays))
	case Weeks:
		fmt.Fprintf(&b, "every %d weeks", r.EveryWeeks)
		if len(r.Weekdays) > 0 {
			fmt.Fprintf(&b, " on %s", joinStrings(r.Weekdays))
		}
	default:
		b.WriteString(r.Kind)
	}
	fmt.Fprintf(&b, " at %s", joinStrings(r.Times))
	if r.Kind != Once {
		fmt.Fprintf(&b, " from %s", r.From)
		if !r.Until.IsZero() {
			fmt.Fprintf(&b, " until %s", r.Until)
		}
	}
	if len(r.Except) > 0 {
		fmt.Fprintf(&b, " except %s", joinStrings(r.Except))
	}
	return b.String()
}

func joinStrings[T any](vs []T) string {
	s := make([]string, len(vs))
	for i, v := range vs {
		s[i] = fmt.Sprint(v)
	}
	return strings.Join(s, ", ")
}
