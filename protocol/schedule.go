package protocol

import (
	"fmt"
	"time"
)

// KindSchedule carries a terminal's timetable for the coming days.
const KindSchedule = "schedule"

// Limits of one schedule: its items, the media in its table, and the media
// one item plays.
const (
	MaxScheduleItems = 2000
	MaxScheduleMedia = 256
	MaxItemMedia     = 16
)

// Schedule is the whole timetable a terminal should keep for a window of
// days. A newer schedule (higher Version) replaces an older one entirely;
// a terminal plays it from its own clock and cache even while it cannot
// reach the controller, and reports each item's outcome afterwards.
//
// Each media file is described once, in Media; items name theirs by
// sha256, so that a program that plays many times in the window does not
// repeat its chunk hashes (which would outgrow a frame).
type Schedule struct {
	Version int64          `json:"version"` // grows with every schedule the controller makes for this terminal
	From    time.Time      `json:"from"`    // the window covered, controller time
	Until   time.Time      `json:"until"`
	Media   []Media        `json:"media"` // every media file the items play, each once
	Items   []ScheduleItem `json:"items"`
}

// ScheduleItem is one occurrence of a program.
type ScheduleItem struct {
	ID        string    `json:"id"`         // occurrence id, unique and stable: program id + "@" + start (RFC 3339)
	ProgramID string    `json:"program_id"` // the program it comes from
	Title     string    `json:"title"`
	Start     time.Time `json:"start"`    // controller time
	Latest    time.Time `json:"latest"`   // not started by then: skipped as outside validity
	Priority  int       `json:"priority"` // see Priority; programs rank lowest
	Volume    int       `json:"volume"`   // 0..100, 0: the terminal's own
	Repeat    int       `json:"repeat"`
	MediaIDs  []string  `json:"media_sha256"` // in play order, each in the schedule's Media

	// Media is MediaIDs looked up in the schedule's table by Resolve, for
	// the player; it does not travel.
	Media []Media `json:"-"`
}

// Validate checks a schedule.
func (s *Schedule) Validate() error {
	if s.Version <= 0 {
		return fmt.Errorf("schedule: version %d must be positive", s.Version)
	}
	if !s.Until.After(s.From) || s.Until.Sub(s.From) > MaxCommandLifetime {
		return fmt.Errorf("schedule: window %s..%s must be positive and at most %s", s.From.Format(time.RFC3339), s.Until.Format(time.RFC3339), MaxCommandLifetime)
	}
	if len(s.Items) > MaxScheduleItems {
		return fmt.Errorf("schedule: %d items, at most %d", len(s.Items), MaxScheduleItems)
	}
	if len(s.Media) > MaxScheduleMedia {
		return fmt.Errorf("schedule: %d media, at most %d", len(s.Media), MaxScheduleMedia)
	}
	used := make(map[string]bool, len(s.Media)) // sha256 → used by an item
	for i := range s.Media {
		m := &s.Media[i]
		if err := m.Validate(); err != nil {
			return fmt.Errorf("schedule media %d: %w", i, err)
		}
		if _, dup := used[m.SHA256]; dup {
			return fmt.Errorf("schedule media %s: listed twice", m.SHA256)
		}
		used[m.SHA256] = false
	}
	seen := map[string]bool{}
	for i := range s.Items {
		it := &s.Items[i]
		switch {
		case it.ID == "" || len(it.ID) > 200:
			return fmt.Errorf("schedule item %d: id must be 1..200 characters", i)
		case seen[it.ID]:
			return fmt.Errorf("schedule item %s: id repeated", it.ID)
		case !it.Latest.After(it.Start) && !it.Latest.Equal(it.Start):
			return fmt.Errorf("schedule item %s: latest is before start", it.ID)
		case it.Repeat < 1 || it.Repeat > 100:
			return fmt.Errorf("schedule item %s: repeat %d must be 1..100", it.ID, it.Repeat)
		case it.Volume < 0 || it.Volume > 100:
			return fmt.Errorf("schedule item %s: volume %d must be 0..100", it.ID, it.Volume)
		case len(it.MediaIDs) == 0 || len(it.MediaIDs) > MaxItemMedia:
			return fmt.Errorf("schedule item %s: %d media, want 1..%d", it.ID, len(it.MediaIDs), MaxItemMedia)
		}
		seen[it.ID] = true
		for _, sha := range it.MediaIDs {
			if _, ok := used[sha]; !ok {
				return fmt.Errorf("schedule item %s: media %q is not in the schedule's media", it.ID, sha)
			}
			used[sha] = true
		}
	}
	for _, m := range s.Media {
		if !used[m.SHA256] {
			return fmt.Errorf("schedule media %s: no item plays it", m.SHA256)
		}
	}
	return nil
}

// Resolve fills each item's Media from the table. Call it on a schedule
// that validated.
func (s *Schedule) Resolve() {
	table := make(map[string]Media, len(s.Media))
	for _, m := range s.Media {
		table[m.SHA256] = m
	}
	for i := range s.Items {
		it := &s.Items[i]
		it.Media = make([]Media, len(it.MediaIDs))
		for j, sha := range it.MediaIDs {
			it.Media[j] = table[sha]
		}
	}
}

// Priorities, highest first: emergency level 1 > 2 > 3 > 4 > live speech >
// daily notice > scheduled program. A higher value preempts a lower one; an
// equal one waits its turn.
const (
	PriorityProgram     = 10
	PriorityDaily       = 20
	PriorityLive        = 30
	PriorityEmergency4  = 40
	PriorityEmergency3  = 50
	PriorityEmergency2  = 60
	PriorityEmergency1  = 70
	PriorityMax         = 100
	priorityUnspecified = 0
)

// AlertPriority is an alert's place on the ladder when the controller did
// not set one (Alert.Priority 0): by class and level.
func AlertPriority(a *Alert) int {
	if a.Priority != priorityUnspecified {
		return a.Priority
	}
	if a.Class != ClassEmergency {
		return PriorityDaily
	}
	switch a.Level {
	case 1:
		return PriorityEmergency1
	case 2:
		return PriorityEmergency2
	case 3:
		return PriorityEmergency3
	}
	return PriorityEmergency4
}

// Report kinds for what a terminal's player did.
const (
	ReportOccurrence = "occurrence" // a schedule item's outcome
	ReportSwitch     = "switch"     // one item interrupted, resumed or followed another
)

// Occurrence states.
const (
	OccurrencePlayed    = "played"
	OccurrencePreempted = "preempted" // cut by a higher priority and dropped (or not resumed in time)
	OccurrenceSkipped   = "skipped"   // never started; Reason says why
)

// Reasons an occurrence was skipped. The controller adds "offline" for
// occurrences a terminal never received.
const (
	SkipMediaMissing    = "media_missing"
	SkipOutsideValidity = "outside_validity"
	SkipQuietHours      = "quiet_hours"
	SkipOffline         = "offline"
	SkipReplaced        = "replaced" // a newer schedule dropped it
)

// Occurrence reports what happened to one schedule item on a terminal.
type Occurrence struct {
	ScheduleVersion int64     `json:"schedule_version"`
	ItemID          string    `json:"item_id"`
	ProgramID       string    `json:"program_id"`
	State           string    `json:"state"`
	Reason          string    `json:"reason,omitempty"`
	PreemptedBy     string    `json:"preempted_by,omitempty"` // EBM id or item id
	Started         time.Time `json:"started,omitempty"`
	Ended           time.Time `json:"ended,omitempty"`
	PlayedMS        int64     `json:"played_ms"`
}

// Switch reports a change of what the loudspeaker plays, like the field
// standard's task-switch report.
type Switch struct {
	Action string    `json:"action"` // "preempt", "resume", "start", "end"
	From   string    `json:"from,omitempty"`
	To     string    `json:"to,omitempty"`
	At     time.Time `json:"at"`
}
