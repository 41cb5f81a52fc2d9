package terminal

import (
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// Tones told apart in the recordings: a routine program, an emergency, a
// second routine.
const (
	routineHz   = 1000
	emergencyHz = 2500
	otherHz     = 4000
)

// toneOf adds a tone WAV at freq to the controller.
func toneOf(ctl *fakeController, freq float64, d time.Duration) protocol.Media {
	return ctl.addMedia(audio.ToneWAV(freq, d, 16000, 0.5), 4096)
}

// item is a schedule item starting at start, startable until latest.
func item(id string, start, latest time.Time, media ...protocol.Media) protocol.ScheduleItem {
	it := protocol.ScheduleItem{ID: id, ProgramID: "prog-" + id, Title: id, Start: start, Latest: latest, Repeat: 1, Media: media}
	for _, m := range media {
		it.MediaIDs = append(it.MediaIDs, m.SHA256)
	}
	return it
}

// schedule builds a signed schedule command of version with items.
func (c *fakeController) schedule(version int64, items ...protocol.ScheduleItem) *protocol.Command {
	now := time.Now()
	return c.command(protocol.KindSchedule, func(cmd *protocol.Command) {
		cmd.Schedule = &protocol.Schedule{Version: version, From: now.Add(-time.Hour), Until: now.Add(24 * time.Hour), Items: items}
		seen := map[string]bool{}
		for _, it := range items {
			for _, m := range it.Media {
				if !seen[m.SHA256] {
					seen[m.SHA256] = true
					cmd.Schedule.Media = append(cmd.Schedule.Media, m)
				}
			}
		}
	})
}

// occurrences returns the occurrence reports of an item, in order.
func (c *fakeController) occurrences(itemID string) []protocol.Occurrence {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []protocol.Occurrence
	for _, r := range c.reports {
		if r.Occurrence != nil && r.Occurrence.ItemID == itemID {
			out = append(out, *r.Occurrence)
		}
	}
	return out
}

// waitOccurrence waits for the outcome of an item.
func (c *fakeController) waitOccurrence(itemID string) protocol.Occurrence {
	c.t.Helper()
	var got protocol.Occurrence
	c.waitFor("occurrence of "+itemID, func() bool {
		for _, r := range c.reports {
			if r.Occurrence != nil && r.Occurrence.ItemID == itemID {
				got = *r.Occurrence
				return true
			}
		}
		return false
	})
	return got
}

// switches returns the task-switch reports as "action from→to".
func (c *fakeController) switches() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []string
	for _, r := range c.reports {
		if r.Switch != nil {
			out = append(out, fmt.Sprintf("%s %s→%s", r.Switch.Action, r.Switch.From, r.Switch.To))
		}
	}
	return out
}

// heard is one WAV file the audio output wrote: which of the test tones it
// holds, and for how long.
type heard struct {
	freq float64
	dur  time.Duration
	peak float64
}

func (h heard) String() string {
	return fmt.Sprintf("%.0fHz %v", h.freq, h.dur.Round(time.Millisecond))
}

// heardTones returns, file by file in playing order, the tone each holds.
func (r *rig) heardTones() []heard {
	r.t.Helper()
	var out []heard
	for _, name := range r.wavs() {
		b, err := os.ReadFile(name)
		if err != nil {
			r.t.Fatal(err)
		}
		s, rate, err := audio.ReadWAV(b)
		if err != nil {
			r.t.Fatal(err)
		}
		h := heard{}
		for _, f := range []float64{routineHz, emergencyHz, otherHz} {
			var d time.Duration
			for _, seg := range audio.ToneSegments(s, rate, f) {
				d += seg.End - seg.Start
			}
			if d > h.dur {
				h.freq, h.dur = f, d
			}
		}
		for _, v := range s {
			h.peak = max(h.peak, float64(v), -float64(v))
		}
		out = append(out, h)
	}
	return out
}

// total sums how long freq sounded.
func total(hs []heard, freq float64) time.Duration {
	var d time.Duration
	for _, h := range hs {
		if h.freq == freq {
			d += h.dur
		}
	}
	return d
}

// order lists the tones in playing order, merging neighbours.
func order(hs []heard) []float64 {
	var out []float64
	for _, h := range hs {
		if h.dur > 0 && (len(out) == 0 || out[len(out)-1] != h.freq) {
			out = append(out, h.freq)
		}
	}
	return out
}

// relayOps returns the board's ON and OFF switches after the first skip
// frames.
func (r *rig) relayOps(skip int) []string {
	return slices.DeleteFunc(r.ops(skip), func(op string) bool { return op != "on" && op != "off" })
}

func near(got, want, tol time.Duration) bool { return got >= want-tol && got <= want+tol }

func joined(v []string) string { return strings.Join(v, ", ") }
