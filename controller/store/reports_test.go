package store

import (
	"context"
	"fmt"
	"path/filepath"
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
	s, err := Open(path)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, a := range []Area{{Code: county, Name: "融安县"}, {Code: township, Name: "长安镇", Parent: county}, {Code: villageA, Name: "大巷村", Parent: township}} {
		if err := s.PutArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
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
	s.Close()
	if s, err = Open(path); err != nil {
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
	s, err := Open(filepath.Join(b.TempDir(), "dalaba.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ctx := context.Background()
	for _, a := range []Area{{Code: county, Name: "融安县"}, {Code: township, Name: "长安镇", Parent: county}, {Code: villageA, Name: "大巷村", Parent: township}} {
		s.PutArea(ctx, a)
	}
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
	var in []ReportIn
	seq := map[string]uint64{}
	alerts := 0
	var a Alert
	for i := range b.N {
		k := i % (terminals * len(states))
		if k == 0 {
			b.StopTimer()
			alerts++
			a = newAlertB(b, s, alerts, ids)
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
