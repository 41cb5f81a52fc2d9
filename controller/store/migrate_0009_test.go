package store

import (
	"context"
	"database/sql"
	"fmt"
	"reflect"
	"testing"
	"time"

	"dalaba/protocol"
)

// deliveryRows lists every delivery as (alert id, terminal id, state,
// reason, detail, updated_at, open), by alert and terminal, with query.
func deliveryRows(t *testing.T, db *sql.DB, query string) []string {
	t.Helper()
	rows, err := db.Query(query)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var alert, terminal, state, reason, detail string
		var at, open int64
		if err := rows.Scan(&alert, &terminal, &state, &reason, &detail, &at, &open); err != nil {
			t.Fatal(err)
		}
		out = append(out, fmt.Sprintf("%s %s %s %q %q %d %d", alert, terminal, state, reason, detail, at, open))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// TestMigration0009 migrates a database of version 8 holding deliveries
// of three alerts in every kind of state, and finds every delivery as it
// was (by id, with its state, reason, detail, time and whether it is
// open), the store's readers answering as before, and the migrated rows
// taking new alerts, terminals and receipts.
func TestMigration0009(t *testing.T) {
	old := newOldDB(t, 8)
	terminals := []string{"64502241020030000000003", "64502241020030000000001", "64502241020030000000002"}
	var alerts []string
	for seq := range 3 {
		id, _ := protocol.NewEBMID("44502240000000000000001", t0, seq+1)
		alerts = append(alerts, id)
	}
	old.terminals(terminals...)
	old.exec(`INSERT INTO report_acks(terminal_id, seq) VALUES (?, 7), (?, 2)`, terminals[0], terminals[1])
	old.alerts(alerts, []string{AlertActive, AlertCancelled, AlertActive})

	// Every state, each alert with its own mix; the third terminal has
	// deliveries of only the second alert, the third alert none.
	states := []string{protocol.DeliveryQueued, protocol.DeliveryOffline, protocol.DeliverySent, protocol.DeliveryAccepted,
		protocol.DeliveryRejected, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone, protocol.DeliveryFailed,
		protocol.DeliveryCancelled, protocol.DeliveryExpired}
	k := 0
	for a, alert := range alerts[:2] {
		for ti, terminal := range terminals {
			if a == 0 && ti == 2 {
				continue
			}
			st := states[k%len(states)]
			old.exec(`INSERT INTO deliveries(alert_id, terminal_id, state, reason, detail, updated_at, open) VALUES (?, ?, ?, ?, ?, ?, ?)`,
				alert, terminal, st, fmt.Sprint("reason ", k), fmt.Sprint("detail ", k), ms(t0.Add(time.Duration(k)*time.Second)),
				!protocol.DeliveryFinal(st))
			k++
		}
	}
	// The states not used above, on more terminals of the first alert.
	for ; k < len(states); k++ {
		id := fmt.Sprintf("645022410200300000001%02d", k)
		old.exec(`INSERT INTO terminals(id, area_code, name, status, created_at) VALUES (?, ?, ?, 'active', ?)`, id, villageA, id, ms(t0))
		old.exec(`INSERT INTO deliveries(alert_id, terminal_id, state, reason, detail, updated_at, open) VALUES (?, ?, ?, '', '', ?, ?)`,
			alerts[0], id, states[k], ms(t0), !protocol.DeliveryFinal(states[k]))
		terminals = append(terminals, id)
	}
	before := deliveryRows(t, old.db, `SELECT alert_id, terminal_id, state, reason, detail, updated_at, open FROM deliveries ORDER BY alert_id, terminal_id`)
	s := old.migrate(9)
	ctx := context.Background()

	after := deliveryRows(t, s.w, `SELECT a.id, t.id, d.state, d.reason, d.detail, d.updated_at, d.open
		FROM deliveries d JOIN alert_nums a ON a.num = d.alert_num JOIN terminal_nums t ON t.num = d.terminal_num ORDER BY a.id, t.id`)
	if !reflect.DeepEqual(after, before) {
		t.Fatalf("deliveries after the migration:\n%q\nwant\n%q", after, before)
	}
	var badKeys int
	if err := s.w.QueryRow(`SELECT COUNT(*) FROM deliveries WHERE key != (alert_num << 32) | terminal_num`).Scan(&badKeys); err != nil || badKeys != 0 {
		t.Fatalf("%d deliveries keyed otherwise than by their numbers (%v)", badKeys, err)
	}

	// The readers by id: Deliveries, Counts, OutstandingFor.
	var listed []string
	for _, a := range alerts {
		ds, err := s.Deliveries(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		counts, err := s.Counts(ctx, a)
		if err != nil {
			t.Fatal(err)
		}
		tally := map[string]int{}
		for _, d := range ds {
			var open int64
			if !protocol.DeliveryFinal(d.State) {
				open = 1
			}
			listed = append(listed, fmt.Sprintf("%s %s %s %q %q %d %d", d.AlertID, d.TerminalID, d.State, d.Reason, d.Detail, ms(d.UpdatedAt), open))
			tally[d.State]++
		}
		if len(counts) != len(tally) || (len(tally) > 0 && !reflect.DeepEqual(counts, tally)) {
			t.Fatalf("counts of %s: %v, want %v", a, counts, tally)
		}
	}
	if !reflect.DeepEqual(listed, before) { // before is in alert and terminal id order, as Deliveries lists
		t.Fatalf("Deliveries after the migration:\n%q\nwant\n%q", listed, before)
	}
	outstanding := func(id string) string {
		t.Helper()
		list, err := s.OutstandingFor(ctx, id, t0)
		if err != nil {
			t.Fatal(err)
		}
		var out string
		for _, o := range list {
			out += o.AlertID + " " + o.State + " " + string(o.Signed) + "; "
		}
		return out
	}
	// The first alert is active (queued, offline and sent are resent), the
	// second cancelled (its cancel goes where it was sent, accepted,
	// fetching or playing): terminals[0] has the first queued and the
	// second sent, terminals[1] the first offline and the second accepted,
	// terminals[2] the second rejected, the others later states of the
	// first.
	for i, id := range terminals {
		want := map[int]string{
			0: alerts[0] + " queued signed " + alerts[0] + "; " + alerts[1] + " sent cancel " + alerts[1] + "; ",
			1: alerts[0] + " offline signed " + alerts[0] + "; " + alerts[1] + " accepted cancel " + alerts[1] + "; ",
		}[i]
		if got := outstanding(id); got != want {
			t.Fatalf("outstanding for %s: %q, want %q", id, got, want)
		}
	}
	for id, want := range map[string]uint64{terminals[0]: 7, terminals[1]: 2, terminals[2]: 0} {
		if term, err := s.Terminal(ctx, id); err != nil || term.AckedSeq != want {
			t.Fatalf("acked_seq of %s: %d (%v), want %d", id, term.AckedSeq, err, want)
		}
	}

	// New rows on top: a terminal created after the migration gets a
	// number with its first delivery, a new alert one of its own, and
	// receipts move the migrated and the new deliveries alike.
	fresh := activeTerminal(t, s, villageA, "fresh")
	a4 := newAlert(t, s, 4, t0.Add(time.Hour), t0.Add(2*time.Hour), terminals[0], fresh.ID)
	cmd1 := fmt.Sprintf("%032x", 1)
	aps, errs := s.ApplyReports(ctx, []ReportIn{
		{terminals[0], receipt(8, cmd1, protocol.DeliverySent)},
		{terminals[0], receipt(9, a4.CommandID, protocol.DeliveryAccepted)},
		{fresh.ID, receipt(1, a4.CommandID, protocol.DeliveryDone)},
		{terminals[0], receipt(7, cmd1, protocol.DeliveryDone)}, // a repeat
	}, t0.Add(time.Minute))
	for i, err := range errs {
		if err != nil {
			t.Fatalf("report %d after the migration: %v", i, err)
		}
	}
	if aps[0].Delivery == nil || aps[1].Delivery == nil || aps[2].Delivery == nil || !aps[3].Duplicate {
		t.Fatalf("receipts after the migration: %+v", aps)
	}
	if st := deliveryStates(t, s, alerts[0]); st[terminals[0]] != protocol.DeliverySent || st[terminals[1]] != protocol.DeliveryOffline {
		t.Fatalf("deliveries of %s after a receipt: %v", alerts[0], st)
	}
	if st := deliveryStates(t, s, a4.ID); len(st) != 2 || st[terminals[0]] != protocol.DeliveryAccepted || st[fresh.ID] != protocol.DeliveryDone {
		t.Fatalf("deliveries of the new alert %s: %v", a4.ID, st)
	}
	if got, want := outstanding(fresh.ID), ""; got != want {
		t.Fatalf("outstanding for the new terminal: %q, want nothing", got)
	}
}
