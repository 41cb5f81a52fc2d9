package schedule

import (
	"fmt"
	"strings"
	"time"
)

// QuietHours is a daily span of wall-clock time in which routine content
// does not play, e.g. 22:00-06:00 (it may run over midnight). The zero
// value has no quiet hours. Emergencies are never held back by it; that
// is the caller's rule, since only the caller knows what is routine.
type QuietHours struct {
	Start, End Clock
	set        bool
}

// ParseQuietHours reads "HH:MM-HH:MM"; "" means none. Start and end must
// differ: a whole day of quiet is no schedule at all.
func ParseQuietHours(s string) (QuietHours, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return QuietHours{}, nil
	}
	a, b, ok := strings.Cut(s, "-")
	if !ok {
		return QuietHours{}, fmt.Errorf("%q must be HH:MM-HH:MM, e.g. 22:00-06:00", s)
	}
	start, err := ParseClock(a)
	if err != nil {
		return QuietHours{}, err
	}
	end, err := ParseClock(b)
	if err != nil {
		return QuietHours{}, err
	}
	if start == end {
		return QuietHours{}, fmt.Errorf("%q starts and ends at the same time", s)
	}
	return QuietHours{Start: start, End: end, set: true}, nil
}

// IsZero reports whether there are no quiet hours.
func (q QuietHours) IsZero() bool { return !q.set }

// Contains reports whether t falls inside the quiet hours on the wall clock
// of loc: from Start (inclusive) to End (exclusive), to the minute.
func (q QuietHours) Contains(t time.Time, loc *time.Location) bool {
	return q.ContainsClock(ClockOf(t, loc))
}

// ContainsClock reports whether a time of day lies inside the quiet hours.
func (q QuietHours) ContainsClock(c Clock) bool {
	if !q.set {
		return false
	}
	if q.Start < q.End {
		return c >= q.Start && c < q.End
	}
	return c >= q.Start || c < q.End
}

func (q QuietHours) String() string {
	if !q.set {
		return ""
	}
	return q.Start.String() + "-" + q.End.String()
}
