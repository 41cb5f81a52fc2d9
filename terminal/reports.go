package terminal

import (
	"bytes"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"dalaba/protocol"
	"dalaba/terminal/spool"
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
		// Not durable, but still sent while this process runs. (The disk
		// fault's own report goes the same way: it does not raise again.)
		t.log.Error("spool report; keeping it in memory", "kind", r.Kind, "err", err)
		t.spool.Hold(b)
		if r.Kind != protocol.ReportFault {
			t.faults.raise(protocol.FaultDisk, "cannot record reports: "+err.Error())
		}
	}
	t.mu.Lock()
	s := t.sess
	t.mu.Unlock()
	if s != nil {
		s.kickReports()
	}
}

// receipt spools a receipt and records its state in the journal of
// alerts in flight.
func (t *Terminal) receipt(cmdID, ebmID, state, reason, detail string) {
	t.spoolReceipt(cmdID, ebmID, state, reason, detail)
	t.noteFlight(cmdID, ebmID, state)
}

func (t *Terminal) spoolReceipt(cmdID, ebmID, state, reason, detail string) {
	t.log.Info("receipt", "command", cmdID, "ebm_id", ebmID, "state", state, "reason", reason, "detail", detail)
	t.spoolReport(protocol.Report{Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{
		CommandID: cmdID, EBMID: ebmID, State: state, Reason: reason, Detail: detail,
	}})
}

func (t *Terminal) noteFlight(cmdID, ebmID, state string) {
	if err := t.flight.note(cmdID, ebmID, state); err != nil {
		t.faults.raise(protocol.FaultDisk, "cannot record the alerts in flight: "+err.Error())
	}
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
		for _, rec := range t.spool.Pending(sent) {
			sent = rec.Seq
			frame, err := reportFrame(rec.Seq, rec.Data)
			if err != nil {
				t.log.Error("damaged spooled report, skipped", "seq", rec.Seq, "err", err)
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
		if errors.Is(err, spool.ErrNotCompacted) {
			t.faults.raise(protocol.FaultDisk, err.Error())
			return
		}
		if errors.Is(err, spool.ErrAckBeyond) {
			// Reports held in memory on a full disk reached the controller
			// before a restart: never reuse their numbers.
			t.log.Warn("the controller holds reports this terminal no longer has; numbering continues after them", "seq", seq)
			t.spool.SkipTo(seq)
			return
		}
		t.log.Warn("controller acknowledged reports the spool does not hold", "seq", seq, "err", err)
	}
}

// switchReport spools a task-switch report: action is "start", "end",
// "preempt" or "resume"; from and to are EBM ids or schedule item ids.
func (t *Terminal) switchReport(action, from, to string, at time.Time) {
	t.log.Info("switch", "action", action, "from", from, "to", to)
	t.spoolReport(protocol.Report{Kind: protocol.ReportSwitch, Switch: &protocol.Switch{
		Action: action, From: from, To: to, At: at.UTC(),
	}})
	t.stateChanged()
}

// occurrenceReport spools what happened to one schedule item.
func (t *Terminal) occurrenceReport(o protocol.Occurrence) {
	t.log.Info("occurrence", "item", o.ItemID, "state", o.State, "reason", o.Reason, "preempted_by", o.PreemptedBy, "played_ms", o.PlayedMS)
	t.spoolReport(protocol.Report{Kind: protocol.ReportOccurrence, Occurrence: &o})
}

// emitter runs a terminal's report-spooling work in order, off the
// caller's goroutine, so that the player never waits for a disk sync (one
// fsync per report) when it should be starting audio, while reports keep
// the order of the events. It has no goroutine of its own: while it has
// work, one of the spoolers runs it.
type emitter struct {
	mu      sync.Mutex
	idle    sync.Cond // on mu: running has ended
	queue   []func()
	running bool // a spooler runs drain
	closed  bool
}

func newEmitter() *emitter {
	e := &emitter{}
	e.idle.L = &e.mu
	return e
}

// add queues fs; after close they are dropped.
func (e *emitter) add(fs ...func()) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if len(fs) == 0 || e.closed {
		return
	}
	e.queue = append(e.queue, fs...)
	if !e.running {
		e.running = true
		spoolers.do(e.drain)
	}
}

// drain runs what is queued, and what is queued meanwhile, then ends.
func (e *emitter) drain() {
	for {
		e.mu.Lock()
		q := e.queue
		e.queue = nil
		if len(q) == 0 {
			e.running = false
			e.idle.Broadcast()
			e.mu.Unlock()
			return
		}
		e.mu.Unlock()
		for _, f := range q {
			f()
		}
	}
}

// close waits for what is queued to run; what is added after it is
// dropped.
func (e *emitter) close() {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.closed = true
	for e.running {
		e.idle.Wait()
	}
}

// spooledSeq is how a report spooled by spoolReport begins: json.Marshal
// writes Report's fields in order, and Seq is 0 until it is sent.
const spooledSeq = `{"seq":0,`

// reportFrame is the report frame for a spooled report with sequence seq:
// protocol.Encode(protocol.TypeReport, r) with r.Seq = seq, byte for byte.
// A report as spoolReport writes it gets its sequence spliced in, without
// decoding and encoding it again (in a fan-out that was 3 % of a
// simulated terminal's work); the spool's checksum vouches that its bytes
// are json.Marshal's. Any other is decoded and encoded.
func reportFrame(seq uint64, data []byte) ([]byte, error) {
	if rest, ok := bytes.CutPrefix(data, []byte(spooledSeq)); ok {
		out := make([]byte, 0, len(`{"type":"report","body":{"seq":}`)+20+len(data))
		out = append(out, `{"type":"`+string(protocol.TypeReport)+`","body":{"seq":`...)
		out = strconv.AppendUint(out, seq, 10)
		out = append(out, ',')
		out = append(out, rest...)
		return append(out, '}'), nil
	}
	var r protocol.Report
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, err
	}
	r.Seq = seq
	return protocol.Encode(protocol.TypeReport, r)
}
