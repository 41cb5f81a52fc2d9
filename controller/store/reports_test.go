package store

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	osexec "os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"dalaba/protocol"
)

func receipt(seq uint64, cmdID, state string) protocol.Report {
	return protocol.Report{Seq: seq, At: t0, Kind: protocol.ReportReceipt,
		Receipt: &protocol.Receipt{CommandID: cmdID, State: state}}
}

// TestApplyReportsBatch applies receipts of several terminals in one
// batch: each is stored once (a repeat in the same batch is a duplicate),
// deliveries move forward, and all of it is there after the store is
// closed and opened again.
func TestApplyReportsBatch(t *testing.T) {
	path := filepath.Join(t.TempDir(), "dalaba.db")
	s := openStoreAt(t, path)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		ids = append(ids, activeTerminal(t, s, villageA, fmt.Sprint("t", i)).ID)
	}
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), ids...)
	var in []ReportIn
	for _, id := range ids {
		in = append(in, ReportIn{id, receipt(1, a.CommandID, protocol.DeliveryAccepted)}, ReportIn{id, receipt(2, a.CommandID, protocol.DeliveryDone)})
	}
	in = append(in, ReportIn{ids[0], receipt(2, a.CommandID, protocol.DeliveryDone)}) // sent again
	aps, errs := s.ApplyReports(ctx, in, t0)
	for i, err := range errs {
		if err != nil {
			t.Fatalf("report %d: %v", i, err)
		}
	}
	for i, ap := range aps {
		if ap.Duplicate != (i == len(in)-1) {
			t.Fatalf("report %d: duplicate %v", i, ap.Duplicate)
		}
	}
	var sync int
	if err := s.w.QueryRow(`PRAGMA synchronous`).Scan(&sync); err != nil || sync != 1 {
		t.Fatalf("after the batch: synchronous = %d (%v), want 1 (NORMAL) again", sync, err)
	}
	s.Close()
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	counts, err := s.Counts(ctx, a.ID)
	if err != nil || counts[protocol.DeliveryDone] != 3 {
		t.Fatalf("after reopening: deliveries %v (%v), want 3 done", counts, err)
	}
	rs, err := s.Reports(ctx, "", protocol.ReportReceipt, 100)
	if err != nil || len(rs) != 6 {
		t.Fatalf("after reopening: %d receipts stored (%v), want 6", len(rs), err)
	}
}

// BenchmarkApplyReports measures delivery-state updates written per
// second, in batches of 500 as the controller's group commit makes them
// when many terminals report at once (target ≥ 50,000/s).
func BenchmarkApplyReports(b *testing.B) {
	s := openStore(b)
	ctx := context.Background()
	const terminals, batch = 2000, 500
	var ids []string
	for i := range terminals {
		code := fmt.Sprint("c", i)
		s.CreateTerminal(ctx, NewTerminal{AreaCode: villageA, Name: code}, hashOf(code), t0.Add(time.Hour), t0)
		pub := make([]byte, 32)
		copy(pub, fmt.Sprintf("%032d", i))
		term, err := s.Enroll(ctx, hashOf(code), pub, t0)
		if err != nil {
			b.Fatal(err)
		}
		ids = append(ids, term.ID)
	}
	states := []string{protocol.DeliveryAccepted, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone}
	b.ResetTimer()
	cpu := cpuClock(b)
	var in []ReportIn
	seq := map[string]uint64{}
	alerts := 0
	var a Alert
	for i := range b.N {
		k := i % (terminals * len(states))
		if k == 0 {
			b.StopTimer()
			cpu.stop()
			alerts++
			a = newAlertB(b, s, alerts, ids)
			cpu.start()
			b.StartTimer()
		}
		id := ids[k%terminals]
		seq[id]++
		in = append(in, ReportIn{id, receipt(seq[id], a.CommandID, states[k/terminals])})
		if len(in) == batch || i == b.N-1 {
			if _, errs := s.ApplyReports(ctx, in, t0); errs[0] != nil {
				b.Fatal(errs[0])
			}
			in = in[:0]
		}
	}
	b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "receipts/s")
	b.ReportMetric(float64(b.N)/cpu.stop().Seconds(), "receipts/cpu-s")
}

func newAlertB(b *testing.B, s *Store, seq int, terminals []string) Alert {
	id, _ := protocol.NewEBMID("44502240000000000000001", t0, seq)
	a := Alert{ID: id, CommandID: fmt.Sprintf("%032x", seq), Class: protocol.ClassDaily, MsgType: 1, Level: 4,
		EventType: "00000", Title: "bench", CreatedAt: t0, CreatedBy: "bench", NotBefore: t0, Expires: t0.Add(time.Hour), Signed: []byte("{}")}
	if err := s.CreateAlert(context.Background(), a, terminals, t0); err != nil {
		b.Fatal(err)
	}
	return a
}

// cpuTimer adds up the process's CPU time (user and system, all threads)
// while it runs: on a machine shared with other work a benchmark's
// wall-clock rate varies with the load, its CPU time much less.
type cpuTimer struct {
	b       testing.TB
	total   time.Duration
	started time.Duration
	running bool
}

func cpuClock(b testing.TB) *cpuTimer {
	c := &cpuTimer{b: b}
	c.start()
	return c
}

func (c *cpuTimer) now() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		c.b.Fatalf("getrusage: %v", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func (c *cpuTimer) start() { c.started, c.running = c.now(), true }

// stop pauses the timer and returns the CPU time so far.
func (c *cpuTimer) stop() time.Duration {
	if c.running {
		c.total += c.now() - c.started
		c.running = false
	}
	return c.total
}

// TestReportsSurviveKill applies batches of receipts in a child process
// that prints each report's sequence number once ApplyReports has
// returned (when the controller acknowledges it), kills that process with
// SIGKILL in the middle of its work, and finds every acknowledged report
// stored, once, after opening the database again.
func TestReportsSurviveKill(t *testing.T) {
	if path := os.Getenv("DALABA_TEST_REPORTS_DB"); path != "" {
		applyUntilKilled(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "dalaba.db")
	s := openStoreAt(t, path)
	ctx := context.Background()
	id := activeTerminal(t, s, villageA, "大巷村1号").ID
	s.Close()

	cmd := osexec.Command(os.Args[0], "-test.run=^TestReportsSurviveKill$")
	cmd.Env = append(os.Environ(), "DALABA_TEST_REPORTS_DB="+path, "DALABA_TEST_TERMINAL="+id)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var acked []uint64
	sc := bufio.NewScanner(out)
	for sc.Scan() && len(acked) < 3000 {
		seq, err := strconv.ParseUint(sc.Text(), 10, 64)
		if err != nil {
			t.Fatalf("child printed %q", sc.Text())
		}
		acked = append(acked, seq)
	}
	cmd.Process.Kill() // no clean close: as a crash or power cut of the process
	cmd.Wait()
	if len(acked) < 3000 {
		t.Fatalf("child acknowledged only %d reports before it stopped", len(acked))
	}

	if s, err = Open(path); err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	rs, err := s.Reports(ctx, id, "", 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	stored := map[uint64]int{}
	for _, r := range rs {
		stored[r.Report.Seq]++
	}
	for _, seq := range acked {
		if stored[seq] != 1 {
			t.Fatalf("report %d was acknowledged but is stored %d times after the kill", seq, stored[seq])
		}
	}
	t.Logf("%d reports acknowledged before SIGKILL, %d stored", len(acked), len(rs))
}

// applyUntilKilled is TestReportsSurviveKill's child: it stores fault
// reports in batches of 100 and prints each one's sequence number once
// stored, until it is killed.
func applyUntilKilled(t *testing.T, path string) {
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	id := os.Getenv("DALABA_TEST_TERMINAL")
	w := bufio.NewWriter(os.Stdout)
	for seq := uint64(1); ; {
		in := make([]ReportIn, 100)
		for i := range in {
			in[i] = ReportIn{id, protocol.Report{Seq: seq, At: t0, Kind: protocol.ReportFault,
				Fault: &protocol.Fault{Code: "relay", Active: seq%2 == 0, Message: "test"}}}
			seq++
		}
		_, errs := s.ApplyReports(context.Background(), in, t0)
		for i, err := range errs {
			if err != nil {
				t.Fatal(err)
			}
			fmt.Fprintln(w, in[i].Report.Seq)
		}
		w.Flush()
	}
}

// TestApplyReportsRepeats sends what a terminal sends again: a report
// whose acknowledgement was lost (in the same batch and in a later one)
// and an old sequence. Each is recognised, acknowledged as a duplicate
// and changes nothing; a report of a terminal that does not exist fails
// alone, naming it, and the rest of its batch is stored.
func TestApplyReportsRepeats(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	id := activeTerminal(t, s, villageA, "a").ID
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), id)
	apply := func(in ...ReportIn) ([]Applied, []error) {
		t.Helper()
		return s.ApplyReports(ctx, in, t0)
	}
	aps, errs := apply(ReportIn{id, receipt(1, a.CommandID, protocol.DeliveryAccepted)}, ReportIn{id, receipt(2, a.CommandID, protocol.DeliveryPlaying)},
		ReportIn{id, receipt(2, a.CommandID, protocol.DeliveryPlaying)})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || aps[0].Duplicate || aps[1].Duplicate || !aps[2].Duplicate {
		t.Fatalf("first batch: %+v %v, want the repeated 2 a duplicate", aps, errs)
	}
	const missing = "64502241020039999999999"
	aps, errs = apply(ReportIn{id, receipt(2, a.CommandID, protocol.DeliveryDone)}, // lost ack: sent again, changed meanwhile
		ReportIn{id, receipt(1, a.CommandID, protocol.DeliveryFailed)}, // an old sequence
		ReportIn{missing, receipt(1, a.CommandID, protocol.DeliveryDone)},
		ReportIn{id, receipt(3, a.CommandID, protocol.DeliveryDone)})
	if !aps[0].Duplicate || !aps[1].Duplicate || aps[0].Delivery != nil || aps[1].Delivery != nil {
		t.Fatalf("repeats: %+v, want duplicates that move nothing", aps[:2])
	}
	if !errors.Is(errs[2], ErrNotFound) || !strings.Contains(errs[2].Error(), missing) {
		t.Fatalf("report of a missing terminal: %v, want not found naming %s", errs[2], missing)
	}
	if errs[3] != nil || aps[3].Duplicate || aps[3].Delivery == nil || aps[3].Delivery.State != protocol.DeliveryDone {
		t.Fatalf("report 3: %+v (%v), want it to move the delivery to done", aps[3], errs[3])
	}
	rs, err := s.Reports(ctx, id, "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var seqs []uint64
	for _, r := range rs {
		seqs = append(seqs, r.Report.Seq)
	}
	if fmt.Sprint(seqs) != "[3 2 1]" || rs[1].Report.Receipt.State != protocol.DeliveryPlaying {
		t.Fatalf("stored %v (2: %s), want [3 2 1] with 2 as first received", seqs, rs[1].Report.Receipt.State)
	}
	if rs, err := s.Reports(ctx, missing, "", 10); err != nil || len(rs) != 0 {
		t.Fatalf("reports of the missing terminal: %d (%v), want none", len(rs), err)
	}
	if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != 3 {
		t.Fatalf("acked_seq %d (%v), want 3", term.AckedSeq, err)
	}
}

// TestMoveDeliveries moves deliveries in batches as SetDeliveries and
// ApplyReports do, against the rule they must keep: the moves of a batch
// take effect as if one after another, each only if it advances its
// delivery (protocol.DeliveryAdvances) from where the moves before it left
// it. Named cases (a delivery moved two and three times in one batch,
// backward moves, an unknown state, final states closing the delivery)
// and random batches over two alerts; every batch's moves that took
// effect, and every delivery's state and open flag, are checked against
// that rule.
func TestMoveDeliveries(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 40 {
		ids = append(ids, activeTerminal(t, s, villageA, fmt.Sprint("t", i)).ID)
	}
	alerts := []Alert{newAlert(t, s, 1, t0, t0.Add(time.Hour), ids...), newAlert(t, s, 2, t0, t0.Add(time.Hour), ids...)}
	type deliveryKey struct{ alertID, terminalID string }
	state := map[deliveryKey]string{}
	for _, a := range alerts {
		for id, st := range deliveryStates(t, s, a.ID) {
			state[deliveryKey{a.ID, id}] = st
		}
	}
	check := func(t *testing.T, batch []Delivery) {
		t.Helper()
		var want []string
		for _, d := range batch {
			k := deliveryKey{d.AlertID, d.TerminalID}
			if protocol.DeliveryAdvances(state[k], d.State) {
				state[k] = d.State
				want = append(want, fmt.Sprint(d.AlertID, " ", d.TerminalID, " ", d.State, " ", d.Reason))
			}
		}
		moved, errs := s.SetDeliveries(ctx, batch)
		if len(moved) != len(batch) || len(errs) != len(batch) {
			t.Fatalf("%d moved flags and %d errors for %d deliveries", len(moved), len(errs), len(batch))
		}
		var got []string
		for i, d := range batch {
			if errs[i] != nil {
				t.Fatal(errs[i])
			}
			if moved[i] {
				got = append(got, fmt.Sprint(d.AlertID, " ", d.TerminalID, " ", d.State, " ", d.Reason))
			}
		}
		if strings.Join(got, "\n") != strings.Join(want, "\n") {
			t.Fatalf("moves that took effect:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
		rows, err := s.r.QueryContext(ctx, `SELECT a.id, t.id, d.state, d.open FROM deliveries d JOIN alert_nums a ON a.num = d.alert_num JOIN terminal_nums t ON t.num = d.terminal_num`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for ; rows.Next(); n++ {
			var k deliveryKey
			var st string
			var open bool
			if err := rows.Scan(&k.alertID, &k.terminalID, &st, &open); err != nil {
				t.Fatal(err)
			}
			if st != state[k] || open == protocol.DeliveryFinal(st) {
				t.Fatalf("delivery %v: %s, open %v; want %s, open %v", k, st, open, state[k], !protocol.DeliveryFinal(state[k]))
			}
		}
		if n != len(state) {
			t.Fatalf("%d deliveries, want %d", n, len(state))
		}
	}
	move := func(a Alert, id, st, reason string) Delivery {
		return Delivery{AlertID: a.ID, TerminalID: id, State: st, Reason: reason, UpdatedAt: t0}
	}

	t.Run("named cases", func(t *testing.T) {
		var batch []Delivery
		for _, id := range ids { // twice each, in one batch: both steps
			batch = append(batch, move(alerts[0], id, protocol.DeliveryAccepted, "1"), move(alerts[0], id, protocol.DeliveryPlaying, "2"))
		}
		batch = append(batch,
			move(alerts[0], ids[0], protocol.DeliveryFetching, "backwards"), // after playing: no effect
			move(alerts[0], ids[0], protocol.DeliveryDone, "final"),         // a third move, closing it
			move(alerts[1], ids[0], protocol.DeliveryOffline, ""),
			move(alerts[1], ids[0], protocol.DeliveryQueued, "back in line"), // offline may go back to queued
			move(alerts[1], ids[1], protocol.DeliveryFailed, "closed"),
			move(alerts[1], ids[1], protocol.DeliveryPlaying, "after final"),
			move(alerts[1], ids[2], "bogus", "unknown state"))
		check(t, batch)
	})
	t.Run("random", func(t *testing.T) {
		rnd := rand.New(rand.NewPCG(1, 2))
		states := append([]string{"bogus"}, allDeliveryStates...)
		for range 8 {
			batch := make([]Delivery, 1+rnd.IntN(300))
			for i := range batch {
				batch[i] = move(alerts[rnd.IntN(2)], ids[rnd.IntN(len(ids))], states[rnd.IntN(len(states))], fmt.Sprint(i))
			}
			check(t, batch)
		}
	})
}

// TestApplyReportsOneRepeated sends a batch in which each terminal has one
// report and one of them is a repeat: the statement that raises every
// terminal's acknowledged sequence at once finds that not all rose, is
// undone, and the reports are told apart one by one: the others stored
// and applied, the repeat a duplicate that changes nothing.
func TestApplyReportsOneRepeated(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	var ids []string
	for i := range 3 {
		ids = append(ids, activeTerminal(t, s, villageA, fmt.Sprint("t", i)).ID)
	}
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), ids...)
	if _, errs := s.ApplyReports(ctx, []ReportIn{{ids[1], receipt(1, a.CommandID, protocol.DeliveryAccepted)}}, t0); errs[0] != nil {
		t.Fatal(errs[0])
	}
	aps, errs := s.ApplyReports(ctx, []ReportIn{{ids[0], receipt(1, a.CommandID, protocol.DeliveryAccepted)},
		{ids[1], receipt(1, a.CommandID, protocol.DeliveryDone)}, // seq 1 again
		{ids[2], receipt(1, a.CommandID, protocol.DeliveryPlaying)}}, t0)
	for i, want := range []string{protocol.DeliveryAccepted, "", protocol.DeliveryPlaying} {
		if errs[i] != nil {
			t.Fatalf("report %d: %v", i, errs[i])
		}
		if aps[i].Duplicate != (want == "") || (want != "") != (aps[i].Delivery != nil) || (want != "" && aps[i].Delivery.State != want) {
			t.Fatalf("report %d: %+v, want moved to %q (a duplicate if none)", i, aps[i], want)
		}
	}
	if got := deliveryStates(t, s, a.ID); got[ids[0]] != protocol.DeliveryAccepted || got[ids[1]] != protocol.DeliveryAccepted || got[ids[2]] != protocol.DeliveryPlaying {
		t.Fatalf("deliveries %v", got)
	}
	for _, id := range ids {
		rs, err := s.Reports(ctx, id, "", 10)
		if err != nil || len(rs) != 1 || rs[0].Report.Seq != 1 {
			t.Fatalf("reports of %s: %+v (%v), want seq 1 once", id, rs, err)
		}
		if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != 1 {
			t.Fatalf("acked_seq of %s: %d (%v), want 1", id, term.AckedSeq, err)
		}
	}
}

// A report whose sequence SQLite cannot store (above 2^63-1) fails alone;
// the terminal's next report is stored as usual.
func TestApplyReportsSequenceTooLarge(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	id := activeTerminal(t, s, villageA, "大巷村1号").ID
	a := newAlert(t, s, 1, t0, t0.Add(time.Hour), id)
	aps, errs := s.ApplyReports(ctx, []ReportIn{{id, receipt(1<<63, a.CommandID, protocol.DeliveryAccepted)},
		{id, receipt(1, a.CommandID, protocol.DeliveryAccepted)}}, t0)
	if errs[0] == nil || !strings.Contains(errs[0].Error(), "9223372036854775808") {
		t.Fatalf("report 2^63: %+v (%v), want an error naming it", aps[0], errs[0])
	}
	if errs[1] != nil || aps[1].Duplicate || aps[1].Delivery == nil {
		t.Fatalf("report 1: %+v (%v), want it stored, moving the delivery", aps[1], errs[1])
	}
	if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != 1 {
		t.Fatalf("acked_seq %d (%v), want 1", term.AckedSeq, err)
	}
}
