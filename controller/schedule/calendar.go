package schedule

import (
	"fmt"
	"strconv"
	"strings"
	"time"
)

// Date is a civil date (a day on the county's calendar), without a time
// or a zone. Its text form is "2006-01-02"; the zero Date is "".
type Date struct {
	Year  int
	Month time.Month
	Day   int
}

// ParseDate reads "2006-01-02".
func ParseDate(s string) (Date, error) {
	t, err := time.Parse(time.DateOnly, strings.TrimSpace(s))
	if err != nil {
		return Date{}, fmt.Errorf("date %q must be YYYY-MM-DD", s)
	}
	return Date{t.Year(), t.Month(), t.Day()}, nil
}

// DateOf is the date of t on the calendar of loc.
func DateOf(t time.Time, loc *time.Location) Date {
	y, m, d := t.In(loc).Date()
	return Date{y, m, d}
}

// IsZero reports whether d is unset.
func (d Date) IsZero() bool { return d == Date{} }

func (d Date) String() string {
	if d.IsZero() {
		return ""
	}
	return fmt.Sprintf("%04d-%02d-%02d", d.Year, d.Month, d.Day)
}

// utc is d's midnight in UTC, for calendar arithmetic free of any zone's
// daylight saving.
func (d Date) utc() time.Time { return time.Date(d.Year, d.Month, d.Day, 0, 0, 0, 0, time.UTC) }

// dayNumber counts days since 1970-01-01.
func (d Date) dayNumber() int64 { return d.utc().Unix() / 86400 }

// AddDays returns the date n days later (earlier when n < 0).
func (d Date) AddDays(n int) Date {
	t := d.utc().AddDate(0, 0, n)
	return Date{t.Year(), t.Month(), t.Day()}
}

// Compare returns -1, 0 or +1 as d is before, equal to or after o.
func (d Date) Compare(o Date) int { return d.utc().Compare(o.utc()) }

// Weekday is the day of the week d falls on.
func (d Date) Weekday() time.Weekday { return d.utc().Weekday() }

// In returns the first instant of d in loc.
func (d Date) In(loc *time.Location) time.Time { return At(d, 0, loc) }

// MarshalText writes "2006-01-02" ("" for the zero date).
func (d Date) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// UnmarshalText reads "2006-01-02"; "" is the zero date.
func (d *Date) UnmarshalText(b []byte) error {
	if len(b) == 0 {
		*d = Date{}
		return nil
	}
	v, err := ParseDate(string(b))
	if err != nil {
		return err
	}
	*d = v
	return nil
}

// Clock is a time of day in minutes after midnight, 0..1439. Its text
// form is "07:00".
type Clock int

// ParseClock reads "HH:MM" (24-hour; "7:00" is accepted).
func ParseClock(s string) (Clock, error) {
	h, m, ok := strings.Cut(strings.TrimSpace(s), ":")
	hh, err1 := strconv.Atoi(h)
	mm, err2 := strconv.Atoi(m)
	if !ok || err1 != nil || err2 != nil || len(m) != 2 || hh < 0 || hh > 23 || mm < 0 || mm > 59 {
		return 0, fmt.Errorf("time of day %q must be HH:MM between 00:00 and 23:59", s)
	}
	return Clock(hh*60 + mm), nil
}

// ClockOf is the wall-clock time of day of t in loc, to the minute.
func ClockOf(t time.Time, loc *time.Location) Clock {
	l := t.In(loc)
	return Clock(l.Hour()*60 + l.Minute())
}

func (c Clock) String() string { return fmt.Sprintf("%02d:%02d", int(c)/60, int(c)%60) }

func (c Clock) valid() bool { return c >= 0 && c < 24*60 }

// MarshalText writes "HH:MM".
func (c Clock) MarshalText() ([]byte, error) {
	if !c.valid() {
		return nil, fmt.Errorf("time of day %d minutes is outside 00:00..23:59", int(c))
	}
	return []byte(c.String()), nil
}

// UnmarshalText reads "HH:MM".
func (c *Clock) UnmarshalText(b []byte) error {
	v, err := ParseClock(string(b))
	if err != nil {
		return err
	}
	*c = v
	return nil
}

// Weekday is a day of the week whose text form is "mon" … "sun".
type Weekday time.Weekday

var weekdayNames = [7]string{"sun", "mon", "tue", "wed", "thu", "fri", "sat"}

// ParseWeekday reads "mon" or "monday" (any case).
func ParseWeekday(s string) (Weekday, error) {
	v := strings.ToLower(strings.TrimSpace(s))
	for i, n := range weekdayNames {
		if v == n || v == strings.ToLower(time.Weekday(i).String()) {
			return Weekday(i), nil
		}
	}
	return 0, fmt.Errorf("weekday %q must be one of mon, tue, wed, thu, fri, sat, sun", s)
}

func (w Weekday) String() string {
	if w < 0 || w > 6 {
		return fmt.Sprintf("weekday(%d)", int(w))
	}
	return weekdayNames[w]
}

// MarshalText writes "mon" … "sun".
func (w Weekday) MarshalText() ([]byte, error) {
	if w < 0 || w > 6 {
		return nil, fmt.Errorf("weekday %d is outside 0..6", int(w))
	}
	return []byte(w.String()), nil
}

// UnmarshalText reads "mon" … "sun".
func (w *Weekday) UnmarshalText(b []byte) error {
	v, err := ParseWeekday(string(b))
	if err != nil {
		return err
	}
	*w = v
	return nil
}

// At is the instant the wall clocks of loc show c on d. Daylight saving
// makes two cases need a rule, and both are decided here so that every
// controller computes the same instants:
//   - c does not exist that day (clocks jump forward over it, e.g. 02:30 on
//     Europe/Berlin's spring day): the instant lies as far after the jump
//     as c lies after its start, i.e. 02:30 plays at 03:30 summer time.
//   - c happens twice (clocks fall back over it): the first one.
func At(d Date, c Clock, loc *time.Location) time.Time {
	naive := time.Date(d.Year, d.Month, d.Day, int(c)/60, int(c)%60, 0, 0, time.UTC)
	_, before := naive.Add(-24 * time.Hour).In(loc).Zone()
	_, after := naive.Add(24 * time.Hour).In(loc).Zone()
	var best time.Time
	for _, off := range []int{before, after} {
		t := naive.Add(-time.Duration(off) * time.Second)
		l := t.In(loc)
		if y, m, dd := l.Date(); y != d.Year || m != d.Month || dd != d.Day || l.Hour()*60+l.Minute() != int(c) {
			continue
		}
		if best.IsZero() || t.Before(best) {
			best = t
		}
	}
	if best.IsZero() { // in a gap: read the wall time with the offset in force before the jump
		best = naive.Add(-time.Duration(before) * time.Second)
	}
	return best.In(loc)
}
