package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"dalaba/protocol"
)

// TestMigration0008 migrates a database of version 7 holding reports and
// deliveries in every kind of state, and finds everything readable as
// before, the acknowledged sequences kept, and the migrated rows working
// with new reports.
func TestMigration0008(t *testing.T) {
	old := newOldDB(t, 7)
	const t1, t2 = "64502241020030000000001", "64502241020030000000002"
	a1, _ := protocol.NewEBMID("44502240000000000000001", t0, 1)
	a2, _ := protocol.NewEBMID("44502240000000000000001", t0, 2)
	report := func(seq uint64, at time.Time, r protocol.Report) []any {
		r.Seq, r.At = seq, at
		body, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		return []any{seq, ms(at), ms(at), r.Kind, string(body)}
	}
	rcpt := func(cmd, state string) protocol.Report {
		return protocol.Report{Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: cmd, State: state}}
	}
	fault := protocol.Report{Kind: protocol.ReportFault, Fault: &protocol.Fault{Code: protocol.FaultRelay, Active: true, Message: "no answer"}}
	old.terminals(t1, t2)
	old.exec(`UPDATE terminals SET acked_seq = CASE id WHEN ? THEN 3 ELSE 1 END`, t1)
	old.alerts([]string{a1, a2}, []string{AlertActive, AlertCancelled})
	for _, d := range []struct{ alert, terminal, state string }{
		{a1, t1, protocol.DeliveryDone}, {a1, t2, protocol.DeliverySent},
		{a2, t1, protocol.DeliveryPlaying}, {a2, t2, protocol.DeliveryCancelled},
	} {
		old.exec(`INSERT INTO deliveries(alert_id, terminal_id, state, reason, detail, updated_at) VALUES (?, ?, ?, 'r', 'd', ?)`,
			d.alert, d.terminal, d.state, ms(t0))
	}
	cmd1, cmd2 := fmt.Sprintf("%032x", 1), fmt.Sprintf("%032x", 2)
	for _, r := range []struct {
		terminal string
		row      []any
	}{ // in the order received; t1's third report came before its second
		{t1, report(1, t0.Add(1*time.Second), rcpt(cmd1, protocol.DeliveryAccepted))},
		{t2, report(1, t0.Add(2*time.Second), fault)},
		{t1, report(3, t0.Add(3*time.Second), rcpt(cmd2, protocol.DeliveryPlaying))},
		{t1, report(2, t0.Add(4*time.Second), rcpt(cmd1, protocol.DeliveryDone))},
	} {
		old.exec(`INSERT INTO reports(terminal_id, seq, at, received_at, kind, body) VALUES (?, ?, ?, ?, ?, ?)`, append([]any{r.terminal}, r.row...)...)
	}
	s := old.migrate(8)
	ctx := context.Background()

	rs, err := s.Reports(ctx, "", "", 10)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, r := range rs {
		got = append(got, fmt.Sprintf("%s/%d", r.TerminalID[len(r.TerminalID)-1:], r.Report.Seq))
	}
	if strings.Join(got, " ") != "1/2 1/3 2/1 1/1" {
		t.Fatalf("reports newest first: %v, want 1/2 1/3 2/1 1/1", got)
	}
	if rs[0].Report.Receipt == nil || rs[0].Report.Receipt.State != protocol.DeliveryDone || !rs[0].ReceivedAt.Equal(t0.Add(4*time.Second)) {
		t.Fatalf("newest report %+v, want t1's done receipt received at %v", rs[0], t0.Add(4*time.Second))
	}
	if rs, err := s.Reports(ctx, t1, protocol.ReportReceipt, 10); err != nil || len(rs) != 3 {
		t.Fatalf("t1's receipts: %d (%v), want 3", len(rs), err)
	}
	if rs, err := s.Reports(ctx, "", protocol.ReportFault, 10); err != nil || len(rs) != 1 || rs[0].Report.Fault == nil {
		t.Fatalf("faults: %+v (%v), want t2's", rs, err)
	}

	if st := deliveryStates(t, s, a1); st[t1] != protocol.DeliveryDone || st[t2] != protocol.DeliverySent {
		t.Fatalf("deliveries of %s: %v", a1, st)
	}
	if c, err := s.Counts(ctx, a2); err != nil || c[protocol.DeliveryPlaying] != 1 || c[protocol.DeliveryCancelled] != 1 {
		t.Fatalf("counts of %s: %v (%v)", a2, c, err)
	}
	outstanding := func(id string) string {
		t.Helper()
		list, err := s.OutstandingFor(ctx, id, t0)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, o := range list {
			out = append(out, o.AlertID+" "+o.State+" "+string(o.Signed))
		}
		return strings.Join(out, "; ")
	}
	if got, want := outstanding(t1), a2+" playing cancel "+a2; got != want {
		t.Fatalf("outstanding for t1: %q, want %q", got, want)
	}
	if got, want := outstanding(t2), a1+" sent signed "+a1; got != want {
		t.Fatalf("outstanding for t2: %q, want %q", got, want)
	}
	for id, want := range map[string]uint64{t1: 3, t2: 1} {
		if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != want {
			t.Fatalf("acked_seq of %s: %d (%v), want %d", id, term.AckedSeq, err, want)
		}
	}

	// The migrated rows take new reports: an old sequence is a repeat, the
	// next one moves t1's cancelled delivery to its end.
	in := []ReportIn{
		{t1, protocol.Report{Seq: 2, At: t0, Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: cmd2, State: protocol.DeliveryDone}}},
		{t1, protocol.Report{Seq: 4, At: t0, Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: cmd2, State: protocol.DeliveryCancelled}}},
	}
	aps, errs := s.ApplyReports(ctx, in, t0.Add(time.Minute))
	if errs[0] != nil || errs[1] != nil || !aps[0].Duplicate || aps[1].Duplicate || aps[1].Delivery == nil {
		t.Fatalf("new reports after the migration: %+v %v", aps, errs)
	}
	if got := outstanding(t1); got != "" {
		t.Fatalf("outstanding for t1 after its cancel receipt: %q, want nothing", got)
	}
	if rs, err := s.Reports(ctx, t1, "", 10); err != nil || len(rs) != 4 || rs[0].Report.Seq != 4 {
		t.Fatalf("t1's reports after a new one: %d (%v), want 4, newest seq 4", len(rs), err)
	}
}
