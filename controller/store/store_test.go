package store

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/protocol"
)

// Areas of Rong'an county used by every test.
const (
	county   = "450224000000"
	township = "450224102000"
	villageA = "450224102003"
	villageB = "450224102004"
)

var t0 = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

func openStore(t testing.TB) *Store {
	t.Helper()
	return openStoreAt(t, filepath.Join(t.TempDir(), "dalaba.db"))
}

// openStoreAt opens the store at path, closed at the test's end, with the
// test's area tree.
func openStoreAt(t testing.TB, path string) *Store {
	t.Helper()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	ctx := context.Background()
	for _, a := range []Area{
		{Code: county, Name: "融安县"},
		{Code: township, Name: "长安镇", Parent: county},
		{Code: villageA, Name: "大巷村", Parent: township},
		{Code: villageB, Name: "大将村", Parent: township},
	} {
		if err := s.PutArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func newPub(t *testing.T) ed25519.PublicKey {
	t.Helper()
	pub, _, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return pub
}

func hashOf(code string) string {
	sum := sha256.Sum256([]byte(code))
	return hex.EncodeToString(sum[:])
}

// activeTerminal creates and enrolls a terminal in village.
func activeTerminal(t *testing.T, s *Store, village, name string) Terminal {
	t.Helper()
	ctx := context.Background()
	code := "code-" + name
	if _, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: village, Name: name}, hashOf(code), t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	term, err := s.Enroll(ctx, hashOf(code), newPub(t), t0)
	if err != nil {
		t.Fatal(err)
	}
	return term
}

// newAlert stores an alert (expiring at exp) with a delivery per terminal.
func newAlert(t *testing.T, s *Store, seq int, created, exp time.Time, terminals ...string) Alert {
	t.Helper()
	id, err := protocol.NewEBMID("44502240000000000000001", created, seq)
	if err != nil {
		t.Fatal(err)
	}
	a := Alert{ID: id, CommandID: fmt.Sprintf("%032x", seq), Class: protocol.ClassEmergency, MsgType: 1, Level: 2,
		EventType: "11000", Title: "防汛预警", Targets: protocol.Targets{Areas: []string{township}},
		CreatedAt: created, CreatedBy: "admin", NotBefore: created, Expires: exp, Signed: []byte(`{"alert":"` + id + `"}`)}
	if err := s.CreateAlert(context.Background(), a, terminals, created); err != nil {
		t.Fatal(err)
	}
	return a
}

// moveTo puts a delivery into state through allowed forward moves.
func moveTo(t *testing.T, s *Store, alertID, terminalID, state string) {
	t.Helper()
	if state == protocol.DeliveryQueued {
		return
	}
	changed, err := s.SetDelivery(context.Background(), Delivery{AlertID: alertID, TerminalID: terminalID, State: state, UpdatedAt: t0})
	if err != nil || !changed {
		t.Fatalf("move delivery of %s on %s to %s: changed=%v err=%v", alertID, terminalID, state, changed, err)
	}
}

func deliveryStates(t *testing.T, s *Store, alertID string) map[string]string {
	t.Helper()
	ds, err := s.Deliveries(context.Background(), alertID)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, d := range ds {
		out[d.TerminalID] = d.State
	}
	return out
}

func TestMigrationsApplyOnce(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "dalaba.db")
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.PutArea(ctx, Area{Code: county, Name: "融安县"}); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(migrations, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations: %v %v", names, err)
	}
	want := len(names) // migrations are numbered 1..n without gaps

	for i := 0; i < 2; i++ { // reopening must not run a migration again ("table already exists")
		s, err = Open(path)
		if err != nil {
			t.Fatalf("reopen %d: %v", i+1, err)
		}
		var version int
		if err := s.w.QueryRowContext(ctx, `PRAGMA user_version`).Scan(&version); err != nil {
			t.Fatal(err)
		}
		if version != want {
			t.Fatalf("user_version %d after reopen, want %d", version, want)
		}
		areas, err := s.Areas(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(areas) != 1 || areas[0].Code != county {
			t.Fatalf("areas after reopen: %+v", areas)
		}
		var journal string
		if err := s.w.QueryRowContext(ctx, `PRAGMA journal_mode`).Scan(&journal); err != nil || journal != "wal" {
			t.Fatalf("journal_mode %q (%v), want wal", journal, err)
		}
		s.Close()
	}
}

func TestCreateTerminalSequentialEBRIDs(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	cases := []struct {
		name, area, want string
	}{
		{"first in village A", villageA, "64502241020030000000001"},
		{"second in village A", villageA, "64502241020030000000002"},
		{"first in village B starts at 1", villageB, "64502241020040000000001"},
		{"third in village A", villageA, "64502241020030000000003"},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			term, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: c.area, Name: fmt.Sprintf("喇叭%d", i)}, hashOf(c.name), t0.Add(time.Hour), t0)
			if err != nil {
				t.Fatal(err)
			}
			if term.ID != c.want {
				t.Fatalf("id %s, want %s", term.ID, c.want)
			}
			if err := protocol.ValidEBRID(term.ID); err != nil {
				t.Fatal(err)
			}
			if term.Status != TerminalEnrolling || term.AreaCode != c.area || term.State != "offline" {
				t.Fatalf("new terminal %+v", term)
			}
		})
	}
	t.Run("ids keep counting past 9", func(t *testing.T) {
		var last Terminal
		for i := 0; i < 8; i++ {
			var err error
			if last, err = s.CreateTerminal(ctx, NewTerminal{AreaCode: villageB, Name: "x"}, hashOf(fmt.Sprint("b", i)), t0, t0); err != nil {
				t.Fatal(err)
			}
		}
		if last.ID != "64502241020040000000009" {
			t.Fatalf("ninth id %s", last.ID)
		}
		next, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: villageB, Name: "x"}, hashOf("b10"), t0, t0)
		if err != nil || next.ID != "64502241020040000000010" {
			t.Fatalf("tenth id %s (%v)", next.ID, err)
		}
	})
	refused := []struct {
		name string
		nt   NewTerminal
	}{
		{"area not in the tree", NewTerminal{AreaCode: "450224102099", Name: "x"}},
		{"malformed area", NewTerminal{AreaCode: "4502", Name: "x"}},
		{"blank name", NewTerminal{AreaCode: villageA, Name: "  "}},
	}
	for _, c := range refused {
		t.Run(c.name, func(t *testing.T) {
			if _, err := s.CreateTerminal(ctx, c.nt, hashOf(c.name), t0, t0); err == nil {
				t.Fatal("accepted")
			}
		})
	}
	ts, err := s.Terminals(ctx, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 4+9 {
		t.Fatalf("%d terminals stored, want 13 (refused ones must store nothing)", len(ts))
	}
}

func TestEnrollConsumesCode(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	until := t0.Add(time.Hour)
	fresh, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: villageA, Name: "大巷村1号"}, hashOf("good"), until, t0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: villageA, Name: "大巷村2号"}, hashOf("late"), until, t0); err != nil {
		t.Fatal(err)
	}
	pendingKey := newPub(t)
	if err := s.NotePending(ctx, Pending{PublicKey: pendingKey, FirstSeen: t0, LastSeen: t0, RemoteAddr: "127.0.0.1:1"}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		code   string
		pub    ed25519.PublicKey
		now    time.Time
		wantID string // "" means refused with ErrEnrollCode
	}{
		{"wrong code", "bad", newPub(t), t0, ""},
		{"good code, a pending key", "good", pendingKey, t0.Add(time.Minute), fresh.ID},
		{"same code again", "good", newPub(t), t0.Add(2 * time.Minute), ""},
		{"expired code", "late", newPub(t), until.Add(time.Millisecond), ""},
		{"code at its last millisecond", "late", newPub(t), until, "64502241020030000000002"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			term, err := s.Enroll(ctx, hashOf(c.code), c.pub, c.now)
			if c.wantID == "" {
				if !errors.Is(err, ErrEnrollCode) {
					t.Fatalf("Enroll = %+v, %v; want ErrEnrollCode", term, err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if term.ID != c.wantID || term.Status != TerminalActive || !term.PublicKey.Equal(c.pub) {
				t.Fatalf("enrolled %+v", term)
			}
			byKey, err := s.TerminalByKey(ctx, c.pub)
			if err != nil || byKey.ID != c.wantID {
				t.Fatalf("TerminalByKey: %+v %v", byKey, err)
			}
		})
	}
	if ps, err := s.PendingTerminals(ctx); err != nil || len(ps) != 0 {
		t.Fatalf("pending after its key enrolled: %+v %v", ps, err)
	}
}

func TestApplyReportOnceAndForwardOnly(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	term := activeTerminal(t, s, villageA, "a")
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), term.ID)
	moveTo(t, s, a.ID, term.ID, protocol.DeliverySent)

	receipt := func(seq uint64, state string) protocol.Report {
		return protocol.Report{Seq: seq, At: t0, Kind: protocol.ReportReceipt,
			Receipt: &protocol.Receipt{CommandID: a.CommandID, EBMID: a.ID, State: state}}
	}
	steps := []struct {
		name      string
		report    protocol.Report
		duplicate bool
		moved     bool   // the report moved the delivery
		state     string // delivery state afterwards
		acked     uint64
	}{
		{"accepted", receipt(1, protocol.DeliveryAccepted), false, true, protocol.DeliveryAccepted, 1},
		{"playing", receipt(2, protocol.DeliveryPlaying), false, true, protocol.DeliveryPlaying, 2},
		{"same seq again", receipt(2, protocol.DeliveryPlaying), true, false, protocol.DeliveryPlaying, 2},
		{"done", receipt(3, protocol.DeliveryDone), false, true, protocol.DeliveryDone, 3},
		{"late playing after done", receipt(4, protocol.DeliveryPlaying), false, false, protocol.DeliveryDone, 4},
		{"failed after done", receipt(5, protocol.DeliveryFailed), false, false, protocol.DeliveryDone, 5},
		{"receipt of an unknown command", protocol.Report{Seq: 6, At: t0, Kind: protocol.ReportReceipt,
			Receipt: &protocol.Receipt{CommandID: "ffffffffffffffffffffffffffffffff", State: protocol.DeliveryDone}}, false, false, protocol.DeliveryDone, 6},
		{"fault", protocol.Report{Seq: 7, At: t0, Kind: protocol.ReportFault,
			Fault: &protocol.Fault{Code: protocol.FaultRelay, Active: true, Message: "no answer"}}, false, false, protocol.DeliveryDone, 7},
		{"fault replayed", protocol.Report{Seq: 7, At: t0, Kind: protocol.ReportFault,
			Fault: &protocol.Fault{Code: protocol.FaultRelay, Active: false, Message: "replay must not clear it"}}, true, false, protocol.DeliveryDone, 7},
	}
	for _, c := range steps {
		t.Run(c.name, func(t *testing.T) {
			ap, err := s.ApplyReport(ctx, term.ID, c.report, t0)
			if err != nil {
				t.Fatal(err)
			}
			if ap.Duplicate != c.duplicate {
				t.Fatalf("Duplicate = %v, want %v", ap.Duplicate, c.duplicate)
			}
			if (ap.Delivery != nil) != c.moved {
				t.Fatalf("Delivery = %+v, want moved=%v", ap.Delivery, c.moved)
			}
			if got := deliveryStates(t, s, a.ID)[term.ID]; got != c.state {
				t.Fatalf("delivery %s, want %s", got, c.state)
			}
			got, err := s.Terminal(ctx, term.ID)
			if err != nil || got.AckedSeq != c.acked {
				t.Fatalf("acked_seq %d (%v), want %d", got.AckedSeq, err, c.acked)
			}
		})
	}
	rs, err := s.Reports(ctx, term.ID, "", 100)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != 7 {
		t.Fatalf("%d reports stored, want 7 (one per seq)", len(rs))
	}
	fs, err := s.Faults(ctx, true)
	if err != nil || len(fs) != 1 || fs[0].Code != protocol.FaultRelay || !fs[0].Active {
		t.Fatalf("active faults %+v (%v)", fs, err)
	}
}

func TestCancelAlertOnlyCancelsUndelivered(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	states := []string{protocol.DeliveryQueued, protocol.DeliveryOffline, protocol.DeliverySent,
		protocol.DeliveryAccepted, protocol.DeliveryPlaying, protocol.DeliveryDone}
	want := map[string]string{}
	var ids []string
	for i, st := range states {
		term := activeTerminal(t, s, villageA, fmt.Sprint("t", i))
		ids = append(ids, term.ID)
		want[term.ID] = st
	}
	want[ids[0]], want[ids[1]] = protocol.DeliveryCancelled, protocol.DeliveryCancelled
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), ids...)
	other := newAlert(t, s, 2, t0, t0.Add(time.Hour), ids[0])
	for i, st := range states {
		moveTo(t, s, a.ID, ids[i], st)
	}

	changed, err := s.CancelAlert(ctx, a.ID, []byte("cancel"), t0.Add(time.Minute))
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != 2 {
		t.Fatalf("CancelAlert changed %+v, want the queued and the offline delivery", changed)
	}
	for _, d := range changed {
		if d.State != protocol.DeliveryCancelled || d.AlertID != a.ID || (d.TerminalID != ids[0] && d.TerminalID != ids[1]) {
			t.Fatalf("changed delivery %+v", d)
		}
	}
	got := deliveryStates(t, s, a.ID)
	for i, st := range states {
		t.Run("from "+st, func(t *testing.T) {
			if got[ids[i]] != want[ids[i]] {
				t.Fatalf("state %s, want %s", got[ids[i]], want[ids[i]])
			}
		})
	}
	stored, err := s.Alert(ctx, a.ID)
	if err != nil || stored.Status != AlertCancelled || string(stored.CancelSign) != "cancel" || stored.CancelledAt.IsZero() {
		t.Fatalf("cancelled alert %+v (%v)", stored, err)
	}
	if st := deliveryStates(t, s, other.ID)[ids[0]]; st != protocol.DeliveryQueued {
		t.Fatalf("another alert's delivery became %s", st)
	}
	if _, err := s.CancelAlert(ctx, a.ID, []byte("again"), t0.Add(2*time.Minute)); !errors.Is(err, ErrNotActive) {
		t.Fatalf("second cancel: %v, want ErrNotActive", err)
	}
	if _, err := s.CancelAlert(ctx, "44502240000000000000001202611269999", nil, t0); !errors.Is(err, ErrNotActive) {
		t.Fatalf("cancel of an unknown alert: %v", err)
	}
}

func TestExpireAlerts(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	states := []string{protocol.DeliveryQueued, protocol.DeliveryOffline, protocol.DeliverySent, protocol.DeliveryAccepted,
		protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone}
	expires := map[string]bool{protocol.DeliveryQueued: true, protocol.DeliveryOffline: true, protocol.DeliverySent: true,
		protocol.DeliveryAccepted: true, protocol.DeliveryFetching: true}
	var ids []string
	for i := range states {
		ids = append(ids, activeTerminal(t, s, villageA, fmt.Sprint("t", i)).ID)
	}
	end := t0.Add(time.Hour)
	a := newAlert(t, s, 1, t0, end, ids...)
	later := newAlert(t, s, 2, t0, end.Add(time.Minute), ids[0])
	for i, st := range states {
		moveTo(t, s, a.ID, ids[i], st)
	}

	if changed, err := s.ExpireAlerts(ctx, end.Add(-time.Millisecond)); err != nil || len(changed) != 0 {
		t.Fatalf("before expiry: changed %+v (%v)", changed, err)
	}
	changed, err := s.ExpireAlerts(ctx, end)
	if err != nil {
		t.Fatal(err)
	}
	if len(changed) != len(expires) {
		t.Fatalf("changed %d deliveries, want %d: %+v", len(changed), len(expires), changed)
	}
	got := deliveryStates(t, s, a.ID)
	for i, st := range states {
		t.Run("from "+st, func(t *testing.T) {
			want := st
			if expires[st] {
				want = protocol.DeliveryExpired
			}
			if got[ids[i]] != want {
				t.Fatalf("state %s, want %s", got[ids[i]], want)
			}
		})
	}
	if stored, _ := s.Alert(ctx, a.ID); stored.Status != AlertExpired {
		t.Fatalf("alert status %s, want expired", stored.Status)
	}
	if stored, _ := s.Alert(ctx, later.ID); stored.Status != AlertActive {
		t.Fatalf("alert expiring later: status %s", stored.Status)
	}
	if changed, err := s.ExpireAlerts(ctx, end.Add(time.Second)); err != nil || len(changed) != 0 {
		t.Fatalf("second run changed %+v (%v)", changed, err)
	}
	if _, err := s.CancelAlert(ctx, a.ID, nil, end); !errors.Is(err, ErrNotActive) {
		t.Fatalf("cancel of an expired alert: %v", err)
	}
}

func TestOutstandingFor(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	term := activeTerminal(t, s, villageA, "a")
	other := activeTerminal(t, s, villageB, "b")
	now := t0.Add(10 * time.Minute)
	type alertCase struct {
		name       string
		state      string // this terminal's delivery state
		cancelled  bool
		expired    bool // validity ended before now
		want       bool
		wantCancel bool // the outstanding command is the cancel
	}
	cases := []alertCase{
		{"active queued", protocol.DeliveryQueued, false, false, true, false},
		{"active offline", protocol.DeliveryOffline, false, false, true, false},
		{"active sent, receipt not yet back", protocol.DeliverySent, false, false, true, false},
		{"active accepted", protocol.DeliveryAccepted, false, false, false, false},
		{"active playing", protocol.DeliveryPlaying, false, false, false, false},
		{"active done", protocol.DeliveryDone, false, false, false, false},
		{"active offline but expired", protocol.DeliveryOffline, false, true, false, false},
		{"cancelled while sent", protocol.DeliverySent, true, false, true, true},
		{"cancelled while accepted", protocol.DeliveryAccepted, true, false, true, true},
		{"cancelled while playing", protocol.DeliveryPlaying, true, false, true, true},
		{"cancelled before it was sent", protocol.DeliveryOffline, true, false, false, false},
		{"cancelled after done", protocol.DeliveryDone, true, false, false, false},
	}
	wantOrder := []string{}
	wantByID := map[string]alertCase{}
	for i, c := range cases {
		created := t0.Add(time.Duration(i) * time.Second)
		exp := now.Add(time.Hour)
		if c.expired {
			exp = now
		}
		a := newAlert(t, s, i+1, created, exp, term.ID, other.ID)
		moveTo(t, s, a.ID, term.ID, c.state)
		if c.cancelled {
			if _, err := s.CancelAlert(ctx, a.ID, []byte("cancel "+a.ID), created); err != nil {
				t.Fatal(err)
			}
		}
		if c.want {
			wantOrder = append(wantOrder, a.ID)
		}
		wantByID[a.ID] = c
	}
	out, err := s.OutstandingFor(ctx, term.ID, now)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]Outstanding{}
	for i, o := range out {
		got[o.AlertID] = o
		if i < len(wantOrder) && o.AlertID != wantOrder[i] {
			t.Errorf("outstanding[%d] = %s, want %s (oldest first)", i, o.AlertID, wantOrder[i])
		}
	}
	for id, c := range wantByID {
		t.Run(c.name, func(t *testing.T) {
			o, ok := got[id]
			if ok != c.want {
				t.Fatalf("outstanding = %v, want %v", ok, c.want)
			}
			if !ok {
				return
			}
			wantSigned := `{"alert":"` + id + `"}`
			if c.wantCancel {
				wantSigned = "cancel " + id
			}
			if string(o.Signed) != wantSigned || o.State != c.state {
				t.Fatalf("outstanding %s in state %s, want %q in %s", o.Signed, o.State, wantSigned, c.state)
			}
		})
	}
	// The other terminal's deliveries stayed queued (or were cancelled).
	if out, err := s.OutstandingFor(ctx, other.ID, now); err != nil || len(out) != 6 {
		t.Fatalf("other terminal has %d outstanding (%v), want the 6 active unexpired alerts", len(out), err)
	}
}

// An alert to a terminal that does not exist is not stored, nor any of
// its deliveries.
func TestCreateAlertUnknownTerminal(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	known := activeTerminal(t, s, villageA, "大巷村1号")
	const unknown = "64502241020030000000099"
	id, _ := protocol.NewEBMID("44502240000000000000001", t0, 1)
	a := Alert{ID: id, CommandID: fmt.Sprintf("%032x", 1), Class: protocol.ClassEmergency, MsgType: 1, Level: 2,
		EventType: "11000", Title: "防汛预警", CreatedAt: t0, CreatedBy: "admin", NotBefore: t0, Expires: t0.Add(time.Hour)}
	if err := s.CreateAlert(ctx, a, []string{known.ID, unknown}, t0); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), unknown) {
		t.Fatalf("alert to an unknown terminal: %v, want ErrNotFound naming %s", err, unknown)
	}
	if _, err := s.Alert(ctx, id); !errors.Is(err, ErrNotFound) {
		t.Fatalf("the alert after its failure: %v, want ErrNotFound", err)
	}
	if ds, err := s.Deliveries(ctx, id); err != nil || len(ds) != 0 {
		t.Fatalf("deliveries after the failure: %v (%v), want none", ds, err)
	}
}

// An alert to more terminals than one statement holds, named in no
// particular order, gets one queued delivery on each, and each moves.
func TestCreateAlertManyTerminals(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	const n = 2*rowsPerStatement + 43 // full statements and every smaller shape
	nts := make([]NewTerminal, n)
	hashes := make([]string, n)
	for i := range nts {
		nts[i], hashes[i] = NewTerminal{AreaCode: villageA, Name: fmt.Sprint("t", i)}, hashOf(fmt.Sprint(i))
	}
	terms, err := s.CreateTerminals(ctx, nts, hashes, t0.Add(time.Hour), t0)
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := range terms {
		ids = append(ids, terms[(i*7)%n].ID) // 7 and n share no factor: each once
	}
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), ids...)
	st := deliveryStates(t, s, a.ID)
	if len(st) != n {
		t.Fatalf("%d deliveries, want %d", len(st), n)
	}
	for _, id := range ids {
		if st[id] != protocol.DeliveryQueued {
			t.Fatalf("delivery to %s: %q, want queued", id, st[id])
		}
	}
	moveTo(t, s, a.ID, ids[n-1], protocol.DeliverySent)
	if c, err := s.Counts(ctx, a.ID); err != nil || c[protocol.DeliveryQueued] != n-1 || c[protocol.DeliverySent] != 1 {
		t.Fatalf("counts %v (%v), want %d queued and 1 sent", c, err, n-1)
	}
}

// An enrolling terminal's code is found through an index, not by reading
// every terminal: at 15,000 terminals the scan took 43 % of the
// controller's CPU while a new fleet first came online.
func TestEnrollFindsCodeByIndex(t *testing.T) {
	s := openStore(t)
	rows, err := s.r.QueryContext(context.Background(), `EXPLAIN QUERY PLAN `+enrollLookup, hashOf("x"), TerminalEnrolling)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var plan []string
	for rows.Next() {
		var id, parent, unused int
		var detail string
		if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
			t.Fatal(err)
		}
		plan = append(plan, detail)
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	if got := strings.Join(plan, "; "); !strings.Contains(got, "USING INDEX terminals_enroll_hash") {
		t.Fatalf("the enrolment's lookup is planned as %q, want a search of terminals_enroll_hash", got)
	}
}

// An alert reaches the active terminals its targets name, by area or by
// id, in id order; one still enrolling or revoked is not among them.
func TestActiveTargets(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a1, a2 := activeTerminal(t, s, villageA, "a1"), activeTerminal(t, s, villageA, "a2")
	b1 := activeTerminal(t, s, villageB, "b1")
	gone := activeTerminal(t, s, villageB, "gone")
	if err := s.Revoke(ctx, gone.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := s.CreateTerminal(ctx, NewTerminal{AreaCode: villageA, Name: "new"}, hashOf("code-new"), t0.Add(time.Hour), t0); err != nil {
		t.Fatal(err)
	}
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }
	for _, c := range []struct {
		name    string
		targets protocol.Targets
		want    []string
	}{
		{"county", protocol.Targets{Areas: []string{county}}, sorted(a1.ID, a2.ID, b1.ID)},
		{"village A", protocol.Targets{Areas: []string{villageA}}, sorted(a1.ID, a2.ID)},
		{"one terminal and village B", protocol.Targets{Terminals: []string{a2.ID}, Areas: []string{villageB}}, sorted(a2.ID, b1.ID)},
		{"the revoked one by id", protocol.Targets{Terminals: []string{gone.ID}}, nil},
	} {
		got, err := s.ActiveTargets(ctx, c.targets)
		if err != nil || !slices.Equal(got, c.want) {
			t.Errorf("%s: %v (%v), want %v", c.name, got, err, c.want)
		}
	}
}

// BenchmarkResolveTargets compares the two ways to find an alert's
// terminals among 5,000: whole rows (Terminals, then filtered) and the
// two deciding columns (ActiveTargets). Every loudspeaker waits for it.
func BenchmarkResolveTargets(b *testing.B) {
	s := openStore(b)
	ctx := context.Background()
	const n = 5000
	nts, hashes := make([]NewTerminal, n), make([]string, n)
	for i := range nts {
		nts[i], hashes[i] = NewTerminal{AreaCode: villageA, Name: fmt.Sprint("t", i)}, hashOf(fmt.Sprint(i))
	}
	if _, err := s.CreateTerminals(ctx, nts, hashes, t0.Add(time.Hour), t0); err != nil {
		b.Fatal(err)
	}
	if _, err := s.w.ExecContext(ctx, `UPDATE terminals SET status = ?`, TerminalActive); err != nil {
		b.Fatal(err)
	}
	county := protocol.Targets{Areas: []string{county}}
	b.Run("whole rows", func(b *testing.B) {
		for b.Loop() {
			all, err := s.Terminals(ctx, "")
			var ids []string
			for _, t := range all {
				if t.Status == TerminalActive && county.Includes(t.ID, t.AreaCode) {
					ids = append(ids, t.ID)
				}
			}
			if err != nil || len(ids) != n {
				b.Fatalf("%d terminals (%v)", len(ids), err)
			}
		}
	})
	b.Run("two columns", func(b *testing.B) {
		for b.Loop() {
			ids, err := s.ActiveTargets(ctx, county)
			if err != nil || len(ids) != n {
				b.Fatalf("%d terminals (%v)", len(ids), err)
			}
		}
	})
}
