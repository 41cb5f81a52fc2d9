package store

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"
)

func TestHeartbeatHistory(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	term := activeTerminal(t, s, villageA, "大巷村1号")
	vol := func(v int) *int { return &v }
	yes, no := true, false
	idle := func(at time.Time, v int) HeartbeatPoint {
		return HeartbeatPoint{At: at, State: "idle", Volume: vol(v), RelayOK: &yes, RelayOn: &no, AudioOK: &yes}
	}
	start := t0.Add(-HeartbeatKeep - time.Hour)
	steps := []struct {
		name  string
		p     HeartbeatPoint
		wrote bool
	}{
		{"first", idle(start, 60), true},
		{"unchanged soon after", idle(start.Add(30*time.Second), 60), false},
		{"volume changed", idle(start.Add(time.Minute), 70), true},
		{"unchanged, sample due", idle(start.Add(time.Minute+HeartbeatSample), 70), true},
		{"offline", HeartbeatPoint{At: start.Add(10 * time.Minute), State: "offline"}, true},
		{"offline again", HeartbeatPoint{At: start.Add(11 * time.Minute), State: "offline"}, false},
		{"back a week later, pruning the old", idle(t0, 70), true},
		{"clock stepped back", HeartbeatPoint{At: t0.Add(-time.Second), State: "playing", Volume: vol(70), Playing: "x"}, true},
	}
	for _, st := range steps {
		wrote, err := s.AddHeartbeat(ctx, term.ID, st.p)
		if err != nil || wrote != st.wrote {
			t.Fatalf("%s: wrote %v, %v; want %v", st.name, wrote, err, st.wrote)
		}
	}
	all, err := s.Heartbeats(ctx, term.ID, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	// Everything older than a week before t0 is gone.
	if len(all) != 2 || !all[0].At.Equal(t0) || all[0].State != "idle" || *all[0].Volume != 70 ||
		all[1].State != "playing" || !all[1].At.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("history %+v: want t0 idle and playing 1 ms after", all)
	}
	since, err := s.Heartbeats(ctx, term.ID, t0.Add(time.Millisecond))
	if err != nil || len(since) != 2 || !since[0].At.Equal(t0) {
		t.Fatalf("since: %+v, %v; want the point before since, then the one at since", since, err)
	}
	if got, err := s.Heartbeats(ctx, "64502241020030000000099", time.Time{}); err != nil || len(got) != 0 {
		t.Fatalf("unknown terminal: %+v, %v", got, err)
	}
}

func TestEndHeartbeatHistory(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := activeTerminal(t, s, villageA, "大巷村1号")
	b := activeTerminal(t, s, villageA, "大巷村2号")
	vol := 60
	for _, id := range []string{a.ID, b.ID} {
		if _, err := s.AddHeartbeat(ctx, id, HeartbeatPoint{At: t0, State: "idle", Volume: &vol}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := s.AddHeartbeat(ctx, b.ID, HeartbeatPoint{At: t0.Add(time.Second), State: "offline"}); err != nil {
		t.Fatal(err)
	}
	if err := s.SetStatus(ctx, a.ID, Status{State: "idle", LastSeen: t0.Add(10 * time.Second)}); err != nil {
		t.Fatal(err)
	}
	for range 2 { // the second time finds nothing to close
		if err := s.EndHeartbeatHistory(ctx); err != nil {
			t.Fatal(err)
		}
	}
	pa, _ := s.Heartbeats(ctx, a.ID, time.Time{})
	if len(pa) != 2 || pa[1].State != "offline" || !pa[1].At.Equal(t0.Add(10*time.Second+time.Millisecond)) {
		t.Errorf("a's history %+v: want offline just after it was last seen", pa)
	}
	if pb, _ := s.Heartbeats(ctx, b.ID, time.Time{}); len(pb) != 2 {
		t.Errorf("b's history %+v: already offline, want nothing added", pb)
	}
}

// BenchmarkAddHeartbeat is the cost of one heartbeat on the controller's
// hot path: most are unchanged and written only every HeartbeatSample.
func BenchmarkAddHeartbeat(b *testing.B) {
	for _, changing := range []bool{false, true} {
		b.Run(fmt.Sprintf("changing=%v", changing), func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(filepath.Join(b.TempDir(), "dalaba.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.PutArea(ctx, Area{Code: villageA, Name: "大巷村"}); err != nil {
				b.Fatal(err)
			}
			term, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: villageA, Name: "大巷村1号"}, hashOf("c"), t0.Add(time.Hour), t0)
			if err != nil {
				b.Fatal(err)
			}
			yes := true
			at := t0
			for i := 0; b.Loop(); i++ {
				v := 60
				if changing {
					v = i % 100
				}
				at = at.Add(time.Second)
				if _, err := s.AddHeartbeat(ctx, term.ID, HeartbeatPoint{At: at, State: "idle", Volume: &v, RelayOK: &yes, AudioOK: &yes}); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// TestApplyHeartbeats records several terminals' heartbeats in one batch:
// each status is set, a point is kept only when it says something new,
// a terminal's second heartbeat in the batch sees its first, and a
// heartbeat of an unknown terminal fails alone.
func TestApplyHeartbeats(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := activeTerminal(t, s, villageA, "大巷村1号")
	b := activeTerminal(t, s, villageA, "大巷村2号")
	yes := true
	hb := func(id string, at time.Time, vol int) HeartbeatIn {
		return HeartbeatIn{TerminalID: id,
			Status: Status{State: "idle", LastSeen: at, Volume: &vol, RelayOK: &yes, AudioOK: &yes, Heartbeat: fmt.Appendf(nil, `{"volume":%d}`, vol)},
			Point:  HeartbeatPoint{At: at, State: "idle", Volume: &vol, RelayOK: &yes, AudioOK: &yes}}
	}
	in := []HeartbeatIn{
		hb(a.ID, t0, 60),
		hb(b.ID, t0, 60),
		hb(a.ID, t0.Add(30*time.Second), 60),  // unchanged: status only
		hb("64502241020030000000099", t0, 60), // unknown terminal
		hb(b.ID, t0.Add(30*time.Second), 70),  // changed
		hb(a.ID, t0.Add(HeartbeatSample), 60), // unchanged, sample due
	}
	wrote, errs := s.ApplyHeartbeats(ctx, in)
	for i, want := range []bool{true, true, false, false, true, true} {
		if (errs[i] != nil) != (i == 3) || wrote[i] != want {
			t.Errorf("heartbeat %d: wrote %v, %v; want %v and an error only for the unknown terminal", i, wrote[i], errs[i], want)
		}
	}
	for _, c := range []struct {
		id     string
		points int
		last   string
	}{{a.ID, 2, `{"volume":60}`}, {b.ID, 2, `{"volume":70}`}} {
		ps, err := s.Heartbeats(ctx, c.id, time.Time{})
		if err != nil || len(ps) != c.points {
			t.Errorf("terminal %s: %d points (%v), want %d", c.id, len(ps), err, c.points)
		}
		if raw, err := s.LastHeartbeat(ctx, c.id); err != nil || string(raw) != c.last {
			t.Errorf("terminal %s: last heartbeat %s (%v), want %s", c.id, raw, err, c.last)
		}
	}

	// A status without a point (a terminal coming online) adds none.
	c := activeTerminal(t, s, villageA, "大巷村3号")
	if _, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{{TerminalID: c.ID, Status: Status{State: "idle", LastSeen: t0}}}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	ps, err := s.Heartbeats(ctx, c.ID, time.Time{})
	row, err2 := s.Terminal(ctx, c.ID)
	if err != nil || err2 != nil || len(ps) != 0 || row.State != "idle" {
		t.Errorf("a status alone: %d points (%v), state %q (%v); want none and idle", len(ps), err, row.State, err2)
	}
}

// BenchmarkApplyHeartbeats measures heartbeats recorded per second (status
// and history) for 2,000 terminals in batches of 500, as the controller's
// group commit makes them, and one by one as before (SetStatus and
// AddHeartbeat each in its own transaction). heartbeats/cpu-s counts the
// process's CPU time, steadier than wall time on a shared machine.
func BenchmarkApplyHeartbeats(b *testing.B) {
	for _, c := range []struct {
		name     string
		batch    int
		changing bool
	}{{"batch=500/unchanged", 500, false}, {"batch=500/changing", 500, true}, {"one-by-one/unchanged", 1, false}, {"one-by-one/changing", 1, true}} {
		b.Run(c.name, func(b *testing.B) {
			ctx := context.Background()
			s, err := Open(filepath.Join(b.TempDir(), "dalaba.db"))
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			if err := s.PutArea(ctx, Area{Code: villageA, Name: "大巷村"}); err != nil {
				b.Fatal(err)
			}
			const terminals = 2000
			var ids []string
			for i := range terminals {
				term, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: villageA, Name: fmt.Sprint("大巷村", i)}, hashOf(fmt.Sprint("c", i)), t0.Add(time.Hour), t0)
				if err != nil {
					b.Fatal(err)
				}
				ids = append(ids, term.ID)
			}
			yes := true
			raw := []byte(`{"state":"idle","volume":60,"relay_ok":true,"audio_ok":true,"firmware":"1.0.0"}`)
			var in []HeartbeatIn
			b.ResetTimer()
			cpu := cpuClock(b)
			for i := range b.N {
				v := 60
				if c.changing {
					v = i / terminals % 100
				}
				at := t0.Add(time.Duration(i/terminals) * 30 * time.Second) // each terminal every 30 s
				id := ids[i%terminals]
				st := Status{State: "idle", LastSeen: at, Volume: &v, Firmware: "1.0.0", RelayOK: &yes, AudioOK: &yes, Heartbeat: raw}
				p := HeartbeatPoint{At: at, State: "idle", Volume: &v, RelayOK: &yes, RelayOn: &yes, AudioOK: &yes}
				if c.batch == 1 {
					if err := s.SetStatus(ctx, id, st); err != nil {
						b.Fatal(err)
					}
					if _, err := s.AddHeartbeat(ctx, id, p); err != nil {
						b.Fatal(err)
					}
					continue
				}
				in = append(in, HeartbeatIn{id, st, p})
				if len(in) == c.batch || i == b.N-1 {
					if _, errs := s.ApplyHeartbeats(ctx, in); errs[0] != nil {
						b.Fatal(errs[0])
					}
					in = in[:0]
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "heartbeats/s")
			b.ReportMetric(float64(b.N)/cpu.stop().Seconds(), "heartbeats/cpu-s")
		})
	}
}

// Two history points of a terminal in one millisecond, in separate
// batches (a heartbeat, then its going offline): the second moves to the
// next millisecond instead of failing on the table's one row per instant,
// which lost the terminal's offline record. The remembered last point
// must be at the table's precision for that.
func TestHeartbeatsInOneMillisecond(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := activeTerminal(t, s, villageA, "大巷村1号")
	at := t0.Add(300 * time.Microsecond)
	vol := 60
	beat := HeartbeatIn{TerminalID: a.ID, Status: Status{State: "idle", LastSeen: at, Volume: &vol},
		Point: HeartbeatPoint{At: at, State: "idle", Volume: &vol}}
	off := HeartbeatIn{TerminalID: a.ID, Status: Status{State: "offline", LastSeen: at.Add(400 * time.Microsecond)},
		Point: HeartbeatPoint{At: at.Add(400 * time.Microsecond), State: "offline"}}
	for _, in := range []HeartbeatIn{beat, off} {
		if wrote, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{in}); errs[0] != nil || !wrote[0] {
			t.Fatalf("%s point: wrote %v, %v", in.Point.State, wrote[0], errs[0])
		}
	}
	ps, err := s.Heartbeats(ctx, a.ID, time.Time{})
	if err != nil || len(ps) != 2 || ps[1].State != "offline" || !ps[1].At.Equal(t0.Add(time.Millisecond)) {
		t.Fatalf("history %+v (%v), want idle at %s then offline a millisecond later", ps, err, t0)
	}
	if got, err := s.Terminal(ctx, a.ID); err != nil || got.State != "offline" {
		t.Fatalf("terminal is %q (%v), want offline", got.State, err)
	}
}
