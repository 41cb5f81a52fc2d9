package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"testing"
	"time"
)

// statusView is what the API and console see of a terminal's status.
type statusView struct {
	State     string
	LastSeen  time.Time
	Volume    string // "" when unknown
	Firmware  string
	RelayOK   string
	AudioOK   string
	Heartbeat string
}

func viewOf(t Terminal, hb []byte) statusView {
	str := func(v any) string {
		switch v := v.(type) {
		case *int:
			if v != nil {
				return fmt.Sprint(*v)
			}
		case *bool:
			if v != nil {
				return fmt.Sprint(*v)
			}
		}
		return ""
	}
	return statusView{t.State, t.LastSeen, str(t.Volume), t.Firmware, str(t.RelayOK), str(t.AudioOK), string(hb)}
}

// rowView reads a terminal's status row as the table holds it.
func rowView(t *testing.T, s *Store, id string) statusView {
	t.Helper()
	var v statusView
	var seen sql.NullInt64
	var vol sql.NullInt64
	var relay, audio sql.NullBool
	var hb sql.NullString
	err := s.r.QueryRow(`SELECT state, last_seen, volume, firmware, relay_ok, audio_ok, heartbeat FROM terminals WHERE id = ?`, id).
		Scan(&v.State, &seen, &vol, &v.Firmware, &relay, &audio, &hb)
	if err != nil {
		t.Fatal(err)
	}
	v.LastSeen, v.Heartbeat = nullMS(seen), hb.String
	if vol.Valid {
		v.Volume = fmt.Sprint(vol.Int64)
	}
	if relay.Valid {
		v.RelayOK = fmt.Sprint(relay.Bool)
	}
	if audio.Valid {
		v.AudioOK = fmt.Sprint(audio.Bool)
	}
	return v
}

// readViews reads a terminal's status through every read that returns
// it, named.
func readViews(t *testing.T, s *Store, term Terminal) map[string]statusView {
	t.Helper()
	ctx := context.Background()
	hb, err := s.LastHeartbeat(ctx, term.ID)
	if err != nil {
		t.Fatal(err)
	}
	views := map[string]statusView{}
	one, err := s.Terminal(ctx, term.ID)
	if err != nil {
		t.Fatal(err)
	}
	views["Terminal"] = viewOf(one, hb)
	byKey, err := s.TerminalByKey(ctx, term.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	views["TerminalByKey"] = viewOf(byKey, hb)
	for _, area := range []string{"", township, villageA} {
		all, err := s.Terminals(ctx, area)
		if err != nil {
			t.Fatal(err)
		}
		for _, a := range all {
			if a.ID == term.ID {
				views[fmt.Sprintf("Terminals(%q)", area)] = viewOf(a, hb)
			}
		}
	}
	return views
}

func beat(id string, at time.Time, state string, vol int, firmware string, uptime int) HeartbeatIn {
	yes := true
	return HeartbeatIn{TerminalID: id,
		Status: Status{State: state, LastSeen: at, Volume: &vol, Firmware: firmware, RelayOK: &yes, AudioOK: &yes,
			Heartbeat: fmt.Appendf(nil, `{"state":%q,"volume":%d,"uptime_s":%d}`, state, vol, uptime)},
		Point: HeartbeatPoint{At: at, State: state, Volume: &vol, RelayOK: &yes, AudioOK: &yes}}
}

// beatenTwice makes a terminal with two idle heartbeats applied, at t0
// and 30 s later: the first written, the second (unchanged) only
// remembered.
func beatenTwice(t *testing.T, s *Store) Terminal {
	t.Helper()
	a := activeTerminal(t, s, villageA, "大巷村1号")
	for i, at := range []time.Time{t0, t0.Add(30 * time.Second)} {
		if _, errs := s.ApplyHeartbeats(context.Background(), []HeartbeatIn{beat(a.ID, at, "idle", 60, "1.0.0", i)}); errs[0] != nil {
			t.Fatal(errs[0])
		}
	}
	return a
}

// TestStatusWrittenOnlyWhenNew records the same statuses in two stores:
// one writes each at once (SetStatus, as every heartbeat was before), the
// other through ApplyHeartbeats, which writes a status row only when it
// says something new or its last write is HeartbeatSample old. Every read
// of the second sees what the first's row holds.
func TestStatusWrittenOnlyWhenNew(t *testing.T) {
	ctx := context.Background()
	ref, s := openStore(t), openStore(t)
	refTerm, term := activeTerminal(t, ref, villageA, "大巷村1号"), activeTerminal(t, s, villageA, "大巷村1号")
	played := t0.Add(150 * time.Second)
	steps := []struct {
		name    string
		in      HeartbeatIn
		connect bool // a session's start: SetStatus in both
		written bool
	}{
		{"first heartbeat", beat(term.ID, t0, "idle", 60, "1.0.0", 1), false, true},
		{"unchanged", beat(term.ID, t0.Add(30*time.Second), "idle", 60, "1.0.0", 31), false, false},
		{"unchanged again", beat(term.ID, t0.Add(60*time.Second), "idle", 60, "1.0.0", 61), false, false},
		{"volume changed", beat(term.ID, t0.Add(90*time.Second), "idle", 70, "1.0.0", 91), false, true},
		{"unchanged after the change", beat(term.ID, t0.Add(120*time.Second), "idle", 70, "1.0.0", 121), false, false},
		{"playing", beat(term.ID, played, "playing", 70, "1.0.0", 151), false, true},
		{"unchanged just before the sample", beat(term.ID, played.Add(HeartbeatSample-time.Millisecond), "playing", 70, "1.0.0", 450), false, false},
		{"unchanged, sample due", beat(term.ID, played.Add(HeartbeatSample), "playing", 70, "1.0.0", 451), false, true},
		{"unchanged after the sample", beat(term.ID, played.Add(HeartbeatSample+30*time.Second), "playing", 70, "1.0.0", 481), false, false},
		{"clock stepped back", beat(term.ID, t0.Add(time.Second), "playing", 70, "1.0.0", 511), false, true},
		{"unchanged after the step", beat(term.ID, t0.Add(31*time.Second), "playing", 70, "1.0.0", 541), false, false},
		{"fault", beat(term.ID, t0.Add(61*time.Second), "fault", 70, "1.0.0", 571), false, true},
		{"idle again", beat(term.ID, t0.Add(91*time.Second), "idle", 70, "1.0.0", 601), false, true},
		{"unchanged before going offline", beat(term.ID, t0.Add(121*time.Second), "idle", 70, "1.0.0", 631), false, false},
		{"offline, keeping the last heartbeat", HeartbeatIn{TerminalID: term.ID, Status: Status{State: "offline", LastSeen: t0.Add(125 * time.Second)},
			Point: HeartbeatPoint{At: t0.Add(125 * time.Second), State: "offline"}}, false, true},
		{"connected", HeartbeatIn{TerminalID: term.ID, Status: Status{State: "idle", LastSeen: t0.Add(10 * time.Minute)}}, true, true},
		{"first heartbeat of the session, as the row already says", beat(term.ID, t0.Add(10*time.Minute+time.Second), "idle", 70, "1.0.0", 1), false, false},
		{"firmware upgraded", beat(term.ID, t0.Add(10*time.Minute+31*time.Second), "idle", 70, "1.1.0", 31), false, true},
		{"no firmware said", beat(term.ID, t0.Add(10*time.Minute+61*time.Second), "idle", 70, "", 61), false, false},
	}
	for _, st := range steps {
		before := rowView(t, s, term.ID)
		if err := ref.SetStatus(ctx, refTerm.ID, st.in.Status); err != nil {
			t.Fatal(err)
		}
		if st.connect {
			if err := s.SetStatus(ctx, term.ID, st.in.Status); err != nil {
				t.Fatal(err)
			}
		} else if _, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{st.in}); errs[0] != nil {
			t.Fatalf("%s: %v", st.name, errs[0])
		}
		want := rowView(t, ref, refTerm.ID)
		if row := rowView(t, s, term.ID); st.written && row != want {
			t.Errorf("%s: row %+v, want it written: %+v", st.name, row, want)
		} else if !st.written && row != before {
			t.Errorf("%s: row %+v, want it as it was: %+v", st.name, row, before)
		}
		for read, got := range readViews(t, s, term) {
			if got != want {
				t.Errorf("%s: %s sees %+v, want %+v", st.name, read, got, want)
			}
		}
	}
}

// A terminal's heartbeats in one batch: the first written, the second
// (unchanged) not, and reads see the second.
func TestStatusTwiceInOneBatch(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a := activeTerminal(t, s, villageA, "大巷村1号")
	in := []HeartbeatIn{beat(a.ID, t0, "idle", 60, "1.0.0", 1), beat(a.ID, t0.Add(time.Second), "idle", 60, "1.0.0", 2)}
	if _, errs := s.ApplyHeartbeats(ctx, in); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	if row := rowView(t, s, a.ID); !row.LastSeen.Equal(t0) || row.Heartbeat != string(in[0].Status.Heartbeat) {
		t.Errorf("row %+v, want the first heartbeat", row)
	}
	if got := readViews(t, s, a)["Terminal"]; !got.LastSeen.Equal(t0.Add(time.Second)) || got.Heartbeat != string(in[1].Status.Heartbeat) {
		t.Errorf("Terminal sees %+v, want the second heartbeat", got)
	}
}

// A batch with nothing to write opens no transaction: with its context
// cancelled it still succeeds, while one with something to write fails.
func TestStatusBatchWithNothingToWrite(t *testing.T) {
	s := openStore(t)
	a := activeTerminal(t, s, villageA, "大巷村1号")
	b := activeTerminal(t, s, villageA, "大巷村2号")
	first := []HeartbeatIn{beat(a.ID, t0, "idle", 60, "1.0.0", 1), beat(b.ID, t0, "idle", 60, "1.0.0", 1)}
	if _, errs := s.ApplyHeartbeats(context.Background(), first); errs[0] != nil || errs[1] != nil {
		t.Fatal(errs)
	}
	cancelled, cancel := context.WithCancel(context.Background())
	cancel()
	same := []HeartbeatIn{beat(a.ID, t0.Add(30*time.Second), "idle", 60, "1.0.0", 31), beat(b.ID, t0.Add(30*time.Second), "idle", 60, "1.0.0", 31)}
	if wrote, errs := s.ApplyHeartbeats(cancelled, same); errs[0] != nil || errs[1] != nil || wrote[0] || wrote[1] {
		t.Fatalf("unchanged heartbeats: wrote %v, errors %v; want nothing written, no transaction", wrote, errs)
	}
	if got, _ := s.Terminal(context.Background(), b.ID); !got.LastSeen.Equal(t0.Add(30 * time.Second)) {
		t.Errorf("b last seen %s, want %s", got.LastSeen, t0.Add(30*time.Second))
	}
	for name, in := range map[string]HeartbeatIn{
		"status changed": beat(b.ID, t0.Add(60*time.Second), "playing", 60, "1.0.0", 61),
		"sample due":     beat(b.ID, t0.Add(HeartbeatSample), "idle", 60, "1.0.0", 300),
	} {
		if _, errs := s.ApplyHeartbeats(cancelled, []HeartbeatIn{in}); !errors.Is(errs[0], context.Canceled) {
			t.Errorf("%s: error %v, want the transaction to fail for the cancelled context", name, errs[0])
		}
	}
}

// A failed transaction leaves the remembered statuses as they were: the
// status it did not write is written by the next heartbeat saying it.
func TestStatusFailedTransaction(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a := activeTerminal(t, s, villageA, "大巷村1号")
	if _, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{beat(a.ID, t0, "idle", 60, "1.0.0", 1)}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	// The writer connection's own trigger fails every history point, after
	// the status is updated in the same transaction.
	if _, err := s.w.ExecContext(ctx, `CREATE TEMP TRIGGER fail_points BEFORE INSERT ON heartbeats BEGIN SELECT RAISE(ABORT, 'disk on fire'); END`); err != nil {
		t.Fatal(err)
	}
	playing := beat(a.ID, t0.Add(30*time.Second), "playing", 60, "1.0.0", 31)
	if _, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{playing}); errs[0] == nil {
		t.Fatal("heartbeat stored through a failing trigger")
	}
	if got, _ := s.Terminal(ctx, a.ID); got.State != "idle" || !got.LastSeen.Equal(t0) {
		t.Errorf("after the failure: %s last seen %s, want idle at %s", got.State, got.LastSeen, t0)
	}
	if hb, _ := s.LastHeartbeat(ctx, a.ID); string(hb) != `{"state":"idle","volume":60,"uptime_s":1}` {
		t.Errorf("after the failure: last heartbeat %s, want the first", hb)
	}
	if _, err := s.w.ExecContext(ctx, `DROP TRIGGER fail_points`); err != nil {
		t.Fatal(err)
	}
	again := beat(a.ID, t0.Add(60*time.Second), "playing", 60, "1.0.0", 61)
	if _, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{again}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if row := rowView(t, s, a.ID); row.State != "playing" || !row.LastSeen.Equal(t0.Add(60*time.Second)) {
		t.Errorf("row %+v, want playing written", row)
	}
}

// MarkAllOffline and Revoke write the state themselves: the next heartbeat
// that says the terminal is idle is written, and until then reads still
// see its newest last_seen and heartbeat.
func TestStatusMarkedOffline(t *testing.T) {
	for _, c := range []struct {
		name string
		mark func(s *Store, id string) error
	}{
		{"MarkAllOffline", func(s *Store, _ string) error { return s.MarkAllOffline(context.Background()) }},
		{"Revoke", func(s *Store, id string) error { return s.Revoke(context.Background(), id) }},
	} {
		t.Run(c.name, func(t *testing.T) {
			ctx := context.Background()
			s := openStore(t)
			a := beatenTwice(t, s)
			if err := c.mark(s, a.ID); err != nil {
				t.Fatal(err)
			}
			got := readViews(t, s, a)["Terminal"]
			if got.State != "offline" || !got.LastSeen.Equal(t0.Add(30*time.Second)) || got.Heartbeat != `{"state":"idle","volume":60,"uptime_s":1}` {
				t.Errorf("marked offline: %+v, want offline with the newest heartbeat", got)
			}
			if _, errs := s.ApplyHeartbeats(ctx, []HeartbeatIn{beat(a.ID, t0.Add(time.Minute), "idle", 60, "1.0.0", 2)}); errs[0] != nil {
				t.Fatal(errs[0])
			}
			if row := rowView(t, s, a.ID); row.State != "idle" || !row.LastSeen.Equal(t0.Add(time.Minute)) {
				t.Errorf("row %+v, want idle written at once", row)
			}
		})
	}
}

// EndHeartbeatHistory closes a history after the newest last_seen, which
// it writes first.
func TestStatusEndHeartbeatHistory(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	a := beatenTwice(t, s)
	if err := s.EndHeartbeatHistory(ctx); err != nil {
		t.Fatal(err)
	}
	ps, err := s.Heartbeats(ctx, a.ID, time.Time{})
	if err != nil || len(ps) != 2 || ps[1].State != "offline" || !ps[1].At.Equal(t0.Add(30*time.Second+time.Millisecond)) {
		t.Errorf("history %+v (%v), want offline just after the newest last_seen", ps, err)
	}
	if row := rowView(t, s, a.ID); !row.LastSeen.Equal(t0.Add(30*time.Second)) || row.Heartbeat != `{"state":"idle","volume":60,"uptime_s":1}` {
		t.Errorf("row %+v, want the newest last_seen and heartbeat written", row)
	}
}

// A status of an unknown terminal is remembered nowhere.
func TestStatusUnknownTerminal(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	const unknown = "64502241020030000000099"
	if err := s.SetStatus(ctx, unknown, Status{State: "idle", LastSeen: t0}); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.statuses.get(unknown); ok {
		t.Error("unknown terminal's status remembered")
	}
	if _, err := s.Terminal(ctx, unknown); !errors.Is(err, ErrNotFound) {
		t.Errorf("unknown terminal: %v, want ErrNotFound", err)
	}
}
