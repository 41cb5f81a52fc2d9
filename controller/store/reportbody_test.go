package store

import (
	"encoding/json"
	"testing"
	"time"

	"dalaba/protocol"
)

// TestReportBodyAsMarshal checks reportBody against json.Marshal, byte for
// byte, for receipts it writes by hand and reports it leaves to
// json.Marshal.
func TestReportBodyAsMarshal(t *testing.T) {
	beijing := time.FixedZone("CST", 8*3600)
	rcpt := func(c protocol.Receipt) protocol.Report {
		return protocol.Report{Seq: 42, At: t0.Add(123456789 * time.Nanosecond), Kind: protocol.ReportReceipt, Receipt: &c}
	}
	cmd := "0123456789abcdef0123456789abcdef"
	for _, c := range []struct {
		name    string
		r       protocol.Report
		byHand  bool
		wantErr bool
	}{
		{"receipt", rcpt(protocol.Receipt{CommandID: cmd, State: protocol.DeliveryAccepted}), true, false},
		{"every field", rcpt(protocol.Receipt{CommandID: cmd, EBMID: "44502240000000000000001202611260001", State: protocol.DeliveryFailed,
			Reason: "media", Detail: "hash mismatch at 65536"}), true, false},
		{"zero time, zero seq", protocol.Report{Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: cmd, State: "done"}}, true, false},
		{"whole second in another zone", protocol.Report{Seq: 1 << 63, At: time.Date(2026, 1, 2, 3, 4, 5, 0, beijing), Kind: "receipt",
			Receipt: &protocol.Receipt{CommandID: cmd, State: "done"}}, true, false},
		{"year 9999", protocol.Report{At: time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), Kind: "receipt",
			Receipt: &protocol.Receipt{State: "done"}}, true, false},
		{"empty strings", protocol.Report{Receipt: &protocol.Receipt{}}, true, false},
		{"Chinese detail", rcpt(protocol.Receipt{CommandID: cmd, State: "failed", Detail: "功放无输出"}), false, false},
		{"quote", rcpt(protocol.Receipt{CommandID: cmd, State: "failed", Detail: `say "no"`}), false, false},
		{"backslash", rcpt(protocol.Receipt{CommandID: `a\b`, State: "done"}), false, false},
		{"HTML", rcpt(protocol.Receipt{CommandID: cmd, State: "failed", Reason: "<b>&</b>"}), false, false},
		{"control character", rcpt(protocol.Receipt{CommandID: cmd, State: "failed", Detail: "line\nbreak\x7f"}), false, false},
		{"invalid UTF-8", rcpt(protocol.Receipt{CommandID: cmd, State: "\xff"}), false, false},
		{"DEL", rcpt(protocol.Receipt{CommandID: cmd, State: "\x7f"}), false, false},
		{"kind not plain", protocol.Report{Kind: "re<ceipt", Receipt: &protocol.Receipt{CommandID: cmd, State: "done"}}, false, false},
		{"year 10000", protocol.Report{At: time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), Kind: "receipt",
			Receipt: &protocol.Receipt{State: "done"}}, false, true},
		{"receipt and fault", protocol.Report{Kind: "receipt", Receipt: &protocol.Receipt{State: "done"}, Fault: &protocol.Fault{Code: "relay"}}, false, false},
		{"fault", protocol.Report{Seq: 3, At: t0, Kind: protocol.ReportFault, Fault: &protocol.Fault{Code: protocol.FaultRelay, Active: true, Message: "no answer"}}, false, false},
		{"rejection", protocol.Report{Seq: 4, At: t0, Kind: protocol.ReportRejection, Rejection: &protocol.Rejection{Reason: protocol.RejectReplay}}, false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			want, wantErr := json.Marshal(c.r)
			got, err := reportBody(c.r)
			if (err != nil) != c.wantErr || (wantErr != nil) != c.wantErr {
				t.Fatalf("error %v, json.Marshal's %v; want an error: %v", err, wantErr, c.wantErr)
			}
			if string(got) != string(want) {
				t.Fatalf("body\n%s\nwant json.Marshal's\n%s", got, want)
			}
			if _, byHand := appendReceiptBody(nil, c.r); byHand != c.byHand {
				t.Fatalf("written by hand: %v, want %v", byHand, c.byHand)
			}
		})
	}
}

// FuzzReportBody checks reportBody against json.Marshal for receipts of
// any strings, sequence and time.
func FuzzReportBody(f *testing.F) {
	f.Add(uint64(1), int64(1796374800123), "0123456789abcdef0123456789abcdef", "", "done", "", "", "receipt")
	f.Add(uint64(7), int64(-62135596800000), "cmd", "ebm", "failed", "media", "功放无输出 <&>", "receipt")
	f.Fuzz(func(t *testing.T, seq uint64, atNS int64, cmd, ebm, state, reason, detail, kind string) {
		r := protocol.Report{Seq: seq, At: time.Unix(0, atNS).In(time.FixedZone("", int(atNS%50400))), Kind: kind,
			Receipt: &protocol.Receipt{CommandID: cmd, EBMID: ebm, State: state, Reason: reason, Detail: detail}}
		want, wantErr := json.Marshal(r)
		got, err := reportBody(r)
		if (err != nil) != (wantErr != nil) || string(got) != string(want) {
			t.Fatalf("body %s (%v), want json.Marshal's %s (%v)", got, err, want, wantErr)
		}
	})
}
