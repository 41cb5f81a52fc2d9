package terminal

import (
	"encoding/json"

	"dalaba/protocol"
)

// spoolReport stores r durably (without a Seq: the spool's Seq is set when
// it is sent) and wakes the sender of the current connection.
func (t *Terminal) spoolReport(r protocol.Report) {
	r.Seq = 0
	r.At = t.now().UTC()
	b, err := json.Marshal(r)
	if err != nil {
		t.log.Error("encode report", "kind", r.Kind, "err", err)
		return
	}
	if _, err := t.spool.Append(b); err != nil {
		// Nothing more can be recorded; the log is all that is left.
		t.log.Error("spool report", "kind", r.Kind, "err", err)
		return
	}
	t.mu.Lock()
	s := t.sess
	t.mu.Unlock()
	if s != nil {
		s.kickReports()
	}
}

func (t *Terminal) receipt(cmdID, ebmID, state, reason, detail string) {
	t.log.Info("receipt", "command", cmdID, "ebm_id", ebmID, "state", state, "reason", reason, "detail", detail)
	t.spoolReport(protocol.Report{Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{
		CommandID: cmdID, EBMID: ebmID, State: state, Reason: reason, Detail: detail,
	}})
}

func (t *Terminal) reportFault(f protocol.Fault) {
	t.spoolReport(protocol.Report{Kind: protocol.ReportFault, Fault: &f})
}

// pumpReports sends every pending report not yet sent on s, in Seq order,
// until s ends. The controller stores each Seq at most once, so a report
// sent again on a later connection is harmless.
func (t *Terminal) pumpReports(s *session) {
	var sent uint64
	for {
		for _, rec := range t.spool.Pending() {
			if rec.Seq <= sent {
				continue
			}
			sent = rec.Seq
			var r protocol.Report
			if err := json.Unmarshal(rec.Data, &r); err != nil {
				t.log.Error("damaged spooled report, skipped", "seq", rec.Seq, "err", err)
				continue
			}
			r.Seq = rec.Seq
			frame, err := protocol.Encode(protocol.TypeReport, r)
			if err != nil {
				t.log.Error("encode report", "seq", rec.Seq, "err", err)
				continue
			}
			if s.send(frame) != nil {
				return
			}
		}
		select {
		case <-s.kick:
		case <-s.done:
			return
		}
	}
}

// ack records that the controller stored every report up to seq.
func (t *Terminal) ack(seq uint64) {
	if err := t.spool.Ack(seq); err != nil {
		t.log.Warn("controller acknowledged reports the spool does not hold", "seq", seq, "err", err)
	}
}
