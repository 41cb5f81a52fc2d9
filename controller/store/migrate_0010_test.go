package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"reflect"
	"testing"
	"time"

	"dalaba/protocol"
)

// tableRows lists what query returns, each row its columns printed as Go
// values.
func tableRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		vals := make([]any, len(cols))
		ptrs := make([]any, len(cols))
		for i := range vals {
			ptrs[i] = &vals[i]
		}
		if err := rows.Scan(ptrs...); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%#v", vals))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigration0010 migrates a database of version 9 whose terminals are
// numbered or not (a terminal was numbered with its first delivery),
// with acknowledged sequences and reports of both, and finds every
// terminal numbered (the numbers given before unchanged), the
// acknowledged sequences and the reports as they were, the store's
// readers answering as before, and the migrated rows taking new reports.
func TestMigration0010(t *testing.T) {
	old := newOldDB(t, 9)
	// t1 has a delivery (so a number) and reports; t2 reports but has no
	// delivery; t3 has neither.
	const t1, t2, t3 = "64502241020030000000001", "64502241020030000000002", "64502241020030000000003"
	old.terminals(t3, t2, t1)
	a1, _ := protocol.NewEBMID("44502240000000000000001", t0, 1)
	old.alerts([]string{a1}, []string{AlertActive})
	old.exec(`INSERT INTO alert_nums(id) VALUES (?)`, a1)
	old.exec(`INSERT INTO terminal_nums(id) VALUES (?)`, t1)
	old.exec(`INSERT INTO deliveries(key, alert_num, terminal_num, state, updated_at) VALUES ((1 << 32) | 1, 1, 1, 'playing', ?)`, ms(t0))
	old.exec(`INSERT INTO report_acks(terminal_id, seq) VALUES (?, 3), (?, 1)`, t1, t2)
	cmd1 := fmt.Sprintf("%032x", 1)
	for i, r := range []struct {
		terminal string
		report   protocol.Report
	}{ // in the order received; t1's third report came before its second
		{t1, receipt(1, cmd1, protocol.DeliveryAccepted)},
		{t2, protocol.Report{Seq: 1, At: t0, Kind: protocol.ReportFault, Fault: &protocol.Fault{Code: protocol.FaultRelay, Active: true, Message: "继电器无应答"}}},
		{t1, receipt(3, cmd1, protocol.DeliveryPlaying)},
		{t1, receipt(2, cmd1, protocol.DeliveryFetching)},
	} {
		body, err := json.Marshal(r.report)
		if err != nil {
			t.Fatal(err)
		}
		old.exec(`INSERT INTO reports(terminal_id, seq, received_at, kind, body) VALUES (?, ?, ?, ?, ?)`,
			r.terminal, r.report.Seq, ms(t0.Add(time.Duration(i)*time.Second)), r.report.Kind, string(body))
	}
	// A gap in the rowids, as the table may have; the order is the rowids'.
	old.exec(`UPDATE reports SET rowid = rowid + 10 WHERE rowid > 2`)
	acksBefore := tableRows(t, old.db, `SELECT terminal_id, seq FROM report_acks ORDER BY terminal_id`)
	reportsBefore := tableRows(t, old.db, `SELECT rowid, terminal_id, seq, received_at, kind, body FROM reports ORDER BY rowid`)
	deliveriesBefore := deliveryRows(t, old.db, `SELECT n.id, t.id, d.state, d.reason, d.detail, d.updated_at, d.open
		FROM deliveries d JOIN alert_nums n ON n.num = d.alert_num JOIN terminal_nums t ON t.num = d.terminal_num ORDER BY 1, 2`)
	s := old.migrate(10)
	ctx := context.Background()

	if got := tableRows(t, s.w, `SELECT num, id FROM terminal_nums ORDER BY num`); !reflect.DeepEqual(got, []string{
		fmt.Sprintf("%#v", []any{int64(1), t1}), fmt.Sprintf("%#v", []any{int64(2), t2}), fmt.Sprintf("%#v", []any{int64(3), t3}),
	}) {
		t.Fatalf("terminal numbers after the migration: %v, want t1's kept, then t2 and t3 in id order", got)
	}
	if got := tableRows(t, s.w, `SELECT n.id, a.seq FROM report_acks a JOIN terminal_nums n ON n.num = a.terminal_num ORDER BY n.id`); !reflect.DeepEqual(got, acksBefore) {
		t.Fatalf("acknowledged sequences after the migration:\n%v\nwant\n%v", got, acksBefore)
	}
	if got := tableRows(t, s.w, `SELECT r.rowid, n.id, r.seq, r.received_at, r.kind, r.body
		FROM reports r JOIN terminal_nums n ON n.num = r.terminal_num ORDER BY r.rowid`); !reflect.DeepEqual(got, reportsBefore) {
		t.Fatalf("reports after the migration:\n%v\nwant\n%v", got, reportsBefore)
	}
	if got := deliveryRows(t, s.w, `SELECT n.id, t.id, d.state, d.reason, d.detail, d.updated_at, d.open
		FROM deliveries d JOIN alert_nums n ON n.num = d.alert_num JOIN terminal_nums t ON t.num = d.terminal_num ORDER BY 1, 2`); !reflect.DeepEqual(got, deliveriesBefore) {
		t.Fatalf("deliveries after the migration:\n%q\nwant\n%q", got, deliveriesBefore)
	}

	// The readers by id: Terminal, Terminals and Reports.
	acked := map[string]uint64{t1: 3, t2: 1, t3: 0}
	for id, want := range acked {
		if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != want {
			t.Fatalf("acked_seq of %s: %d (%v), want %d", id, term.AckedSeq, err, want)
		}
	}
	all, err := s.Terminals(ctx, "")
	if err != nil || len(all) != 3 {
		t.Fatalf("terminals: %d (%v), want 3", len(all), err)
	}
	for _, term := range all {
		if term.AckedSeq != acked[term.ID] {
			t.Fatalf("Terminals: acked_seq of %s %d, want %d", term.ID, term.AckedSeq, acked[term.ID])
		}
	}
	reports := func(id, kind string) string {
		t.Helper()
		rs, err := s.Reports(ctx, id, kind, 10)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for _, r := range rs {
			out += fmt.Sprintf("%s/%d/%s/%d ", r.TerminalID[len(r.TerminalID)-1:], r.Report.Seq, r.Report.Kind, r.ReceivedAt.Sub(t0)/time.Second)
		}
		return out
	}
	for _, c := range []struct{ id, kind, want string }{
		{"", "", "1/2/receipt/3 1/3/receipt/2 2/1/fault/1 1/1/receipt/0 "},
		{t1, "", "1/2/receipt/3 1/3/receipt/2 1/1/receipt/0 "},
		{t2, "", "2/1/fault/1 "},
		{t3, "", ""},
		{"", protocol.ReportFault, "2/1/fault/1 "},
		{t1, protocol.ReportFault, ""},
		{"64502241020030000000099", "", ""},
	} {
		if got := reports(c.id, c.kind); got != c.want {
			t.Fatalf("reports of %q, kind %q: %q, want %q", c.id, c.kind, got, c.want)
		}
	}
	if rs, err := s.Reports(ctx, t2, "", 1); err != nil || rs[0].Report.Fault == nil || rs[0].Report.Fault.Message != "继电器无应答" {
		t.Fatalf("t2's fault after the migration: %+v (%v)", rs, err)
	}

	// New reports on top: a repeat and a new receipt of t1, the first
	// reports of t3 (numbered by the migration) and of a terminal created
	// after it, neither with a delivery.
	fresh := activeTerminal(t, s, villageA, "fresh")
	fault := protocol.Report{Seq: 1, At: t0, Kind: protocol.ReportFault, Fault: &protocol.Fault{Code: protocol.FaultAudio, Active: true}}
	aps, errs := s.ApplyReports(ctx, []ReportIn{
		{t1, receipt(3, cmd1, protocol.DeliveryDone)}, // a repeat
		{t1, receipt(4, cmd1, protocol.DeliveryDone)},
		{t3, fault},
		{fresh.ID, fault},
		{t2, fault}, // an old sequence
	}, t0.Add(time.Minute))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("report %d after the migration: %v", i, err)
		}
	}
	if !aps[0].Duplicate || aps[1].Duplicate || aps[1].Delivery == nil || aps[2].Duplicate || aps[3].Duplicate || !aps[4].Duplicate {
		t.Fatalf("reports after the migration: %+v", aps)
	}
	if got, want := reports("", ""), "4/1/fault/60 3/1/fault/60 1/4/receipt/60 1/2/receipt/3 1/3/receipt/2 2/1/fault/1 1/1/receipt/0 "; got != want {
		t.Fatalf("reports after new ones: %q, want %q", got, want)
	}
	for id, want := range map[string]uint64{t1: 4, t2: 1, t3: 1, fresh.ID: 1} {
		if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != want {
			t.Fatalf("acked_seq of %s after new reports: %d (%v), want %d", id, term.AckedSeq, err, want)
		}
	}
	if st := deliveryStates(t, s, a1); st[t1] != protocol.DeliveryDone {
		t.Fatalf("deliveries of %s after a receipt: %v", a1, st)
	}
}
