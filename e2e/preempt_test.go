package e2e

import (
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/audio/pulsetest"
	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// Preemption in real audio: tones told apart in the recording.
const (
	routineHz    = 700
	emergencyHz  = 1900
	routineLen   = 4 * time.Second
	emergencyLen = 1500 * time.Millisecond
	cutAfter     = 1500 * time.Millisecond // the routine sounds this long before the emergency
)

// TestPreemptAndResume: a village cadre's one-off program plays a routine
// tone on a terminal process into PulseAudio; an officer's level 1
// emergency cuts it, and when the emergency ends the routine resumes from
// where it stopped. From the one recording: routine, emergency, routine,
// with the routine heard for its length in all (not restarted); the relay
// stayed ON across both switches; and the switch reports and the
// occurrence's outcome reached the controller's API.
func TestPreemptAndResume(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	f := newField(t)
	f.noApproval()
	cadre := f.person("zhao", "cadre", village)
	officer := f.person("wang", "officer", county)
	pulse := pulsetest.Start(t)
	ft := f.terminal("大巷村1号", "lcus", "lcus", pulse.Env(), nil)
	waitOnline(t, f.admin, ft)

	routine := filepath.Join(f.dir, "news.wav")
	if err := os.WriteFile(routine, audio.ToneWAV(routineHz, routineLen, 44100, 0.4), 0o644); err != nil {
		t.Fatal(err)
	}
	siren := officer.upload(t, "siren.wav", audio.ToneWAV(emergencyHz, emergencyLen, 44100, 0.4))

	// Programs start on the minute: the next one at least 5 s away, so the
	// schedule and its media reach the terminal first.
	loc, _ := time.LoadLocation("Asia/Shanghai")
	slot := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(slot) < 5*time.Second {
		slot = slot.Add(time.Minute)
	}
	out := cadre.run("program", "add", "--title", "早间新闻", "--audio", routine, "--terminal", ft.id, "--once", slot.In(loc).Format("2006-01-02 15:04"))
	m := regexp.MustCompile(`program (\w+):`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("program add printed no id:\n%s", out)
	}
	programID := m[1]
	time.Sleep(time.Until(slot.Add(-time.Second)))
	before := len(ft.ops())
	rec := pulse.StartRecording(t, filepath.Join(f.dir, "preempt.wav"))

	var itemID string
	eventually(t, 10*time.Second, "the program to start", func() bool {
		for _, s := range switches(t, f.admin, ft.id) {
			if s.Action == "start" && s.From == "" {
				itemID = s.To
				return true
			}
		}
		return false
	})
	time.Sleep(cutAfter)
	var alert controller.AlertView
	officer.do(t, http.MethodPost, "/api/v1/alerts", map[string]any{
		"class": protocol.ClassEmergency, "level": 1, "title": "山洪预警", "terminals": []string{ft.id}, "media": []string{siren},
	}, &alert)
	waitDone(t, officer.api, alert.ID)

	var row controller.OccurrenceRow
	eventually(t, routineLen+10*time.Second, "the program's outcome at the controller", func() bool {
		var tab controller.OccurrenceTable
		f.admin.get(t, "/api/v1/programs/"+programID+"/occurrences?terminal="+ft.id, &tab)
		for _, r := range tab.Rows {
			if r.ItemID == itemID && r.Source == store.OutcomeTerminal {
				row = r
				return true
			}
		}
		return false
	})
	eventually(t, 5*time.Second, "relay OFF", func() bool { return !ft.board.On(1) })
	time.Sleep(200 * time.Millisecond) // the last audio reaches the recording
	rec.Stop()

	// What was heard.
	samples := readRecording(t, rec.Path())
	rawR := audio.ToneSegments(samples, pulsetest.RecordRate, routineHz)
	rawE := audio.ToneSegments(samples, pulsetest.RecordRate, emergencyHz)
	t.Logf("routine heard %v, emergency heard %v", rawR, rawE)
	// A machine too busy to feed the audio server in time leaves short
	// dropouts inside a tone (the samples come late, none are lost): bridge
	// them to find the stretches, and sum the sound itself for durations.
	rs, es := bridged(rawR, dropout), bridged(rawE, dropout)
	if len(rs) != 2 || len(es) != 1 {
		t.Fatalf("recording holds %d routine and %d emergency segments (%v, %v), want 2 and 1: routine, emergency, routine", len(rs), len(es), rs, es)
	}
	if !(rs[0].End <= es[0].Start+30*time.Millisecond && es[0].End <= rs[1].Start+30*time.Millisecond) {
		t.Fatalf("order routine %v, emergency %v: want routine → emergency → routine", rs, es)
	}
	heard := sounded(rawR)
	if !near(heard, routineLen, 150*time.Millisecond) {
		t.Errorf("routine heard %v in all, want its length %v (resumed, not restarted)", heard, routineLen)
	}
	if first := rs[0].End - rs[0].Start; !near(first, cutAfter, 400*time.Millisecond) {
		t.Errorf("routine played %v before the cut, want about %v", first, cutAfter)
	}
	if d := sounded(rawE); !near(d, emergencyLen, 100*time.Millisecond) {
		t.Errorf("emergency heard %v, want %v", d, emergencyLen)
	}
	if gap := es[0].Start - rs[0].End; gap > 150*time.Millisecond {
		t.Errorf("silence of %v between the cut and the emergency, want it at once", gap)
	}
	t.Logf("routine %v, then emergency %v after %v, then routine %v after %v: routine %v in all",
		(rs[0].End - rs[0].Start).Round(time.Millisecond), (es[0].End - es[0].Start).Round(time.Millisecond), (es[0].Start - rs[0].End).Round(time.Millisecond),
		(rs[1].End - rs[1].Start).Round(time.Millisecond), (rs[1].Start - es[0].End).Round(time.Millisecond), heard.Round(time.Millisecond))

	// The amplifier stayed on across both switches.
	if ops := opNames(ft.ops()[before:]); !slices.Equal(ops, []string{"on", "off"}) {
		t.Errorf("relay switched %v, want ON once and OFF once", ops)
	}

	// Which item interrupted which, as the controller stored it.
	var got []string
	for _, s := range switches(t, f.admin, ft.id) {
		got = append(got, fmt.Sprintf("%s %s→%s", s.Action, s.From, s.To))
	}
	want := []string{"start →" + itemID, "preempt " + itemID + "→" + alert.ID, "start " + itemID + "→" + alert.ID,
		"end " + alert.ID + "→", "resume " + alert.ID + "→" + itemID, "end " + itemID + "→"}
	if !slices.Equal(got, want) {
		t.Errorf("switch reports\n  %s\nwant\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	if row.State != protocol.OccurrencePlayed || !near(time.Duration(row.PlayedMS)*time.Millisecond, routineLen, 150*time.Millisecond) {
		t.Errorf("what happened: %+v, want played for about %v", row, routineLen)
	}
}

// switches returns a terminal's task-switch reports as the controller
// stored them, oldest first.
func switches(t testing.TB, a api, terminalID string) []protocol.Switch {
	t.Helper()
	var reps []store.StoredReport
	a.get(t, "/api/v1/terminals/"+terminalID+"/reports?kind="+protocol.ReportSwitch, &reps)
	slices.SortFunc(reps, func(x, y store.StoredReport) int { return int(x.Report.Seq) - int(y.Report.Seq) })
	var out []protocol.Switch
	for _, r := range reps {
		if r.Report.Switch != nil {
			out = append(out, *r.Report.Switch)
		}
	}
	return out
}

// dropout is the longest gap inside one stretch of a tone.
const dropout = 200 * time.Millisecond

// bridged joins segments less than gap apart.
func bridged(segs []audio.Segment, gap time.Duration) []audio.Segment {
	var out []audio.Segment
	for _, s := range segs {
		if n := len(out); n > 0 && s.Start-out[n-1].End < gap {
			out[n-1].End = s.End
			continue
		}
		out = append(out, s)
	}
	return out
}

// sounded sums how long segments sounded.
func sounded(segs []audio.Segment) time.Duration {
	var d time.Duration
	for _, s := range segs {
		d += s.End - s.Start
	}
	return d
}

// near reports whether got is within tol of want.
func near(got, want, tol time.Duration) bool { return (got - want).Abs() <= tol }
