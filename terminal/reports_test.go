package terminal

import (
	"bytes"
	"encoding/json"
	"testing"
	"time"

	"dalaba/protocol"
)

// TestReportFrameSplicesSeq checks that a spooled report's frame is, byte
// for byte, what encoding the report with its sequence gives, for every
// kind of report; and that a record spooled otherwise (without the leading
// seq) is still sent, and a damaged one refused.
func TestReportFrameSplicesSeq(t *testing.T) {
	at := time.Date(2026, 11, 27, 21, 15, 0, 123456789, time.UTC)
	reports := []protocol.Report{
		{At: at, Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: "0123456789abcdef0123456789abcdef", EBMID: "34120000000000000000202611270001", State: protocol.DeliveryPlaying, Detail: "说明 \"quoted\" <tag> &"}},
		{At: at, Kind: protocol.ReportFault, Fault: &protocol.Fault{Code: protocol.FaultMedia, Active: true, Message: "media x: bad"}},
		{At: at, Kind: protocol.ReportSwitch, Switch: &protocol.Switch{Action: "start", To: "a", At: at}},
		{At: at, Kind: protocol.ReportRejection, Rejection: &protocol.Rejection{Reason: "bad_signature"}},
	}
	for _, seq := range []uint64{1, 42, 1<<64 - 1} {
		for _, r := range reports {
			r.Seq = 0
			spooled, err := json.Marshal(r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.HasPrefix(spooled, []byte(spooledSeq)) {
				t.Fatalf("a spooled report begins %.20q, not %q: reportFrame would decode every one", spooled, spooledSeq)
			}
			got, err := reportFrame(seq, spooled)
			if err != nil {
				t.Fatal(err)
			}
			r.Seq = seq
			want, err := protocol.Encode(protocol.TypeReport, r)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("seq %d, %s:\n got %s\nwant %s", seq, r.Kind, got, want)
			}
			f, err := protocol.Decode(got)
			if err != nil {
				t.Fatalf("the frame does not decode: %v", err)
			}
			var back protocol.Report
			if err := json.Unmarshal(f.Body, &back); err != nil || back.Seq != seq || back.Kind != r.Kind {
				t.Errorf("decoded back as seq %d kind %q (%v)", back.Seq, back.Kind, err)
			}
		}
	}

	other := []byte(`{"at":"2026-11-27T21:15:00Z","kind":"fault","fault":{"code":"disk","active":true,"message":"m"}}`)
	got, err := reportFrame(7, other)
	if err != nil {
		t.Fatal(err)
	}
	want := []byte(`{"type":"report","body":{"seq":7,"at":"2026-11-27T21:15:00Z","kind":"fault","fault":{"code":"disk","active":true,"message":"m"}}}`)
	if !bytes.Equal(got, want) {
		t.Errorf("a report spooled without seq:\n got %s\nwant %s", got, want)
	}
	if _, err := reportFrame(8, []byte(`{"at":`)); err == nil {
		t.Error("a damaged report gave a frame")
	}
}
