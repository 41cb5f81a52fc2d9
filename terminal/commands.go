package terminal

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"

	"dalaba/protocol"
	"dalaba/terminal/seen"
)

// handleCommand verifies a signed command before anything acts on it, then
// checks it against the replay guard, then acts.
func (t *Terminal) handleCommand(s *session, body json.RawMessage) {
	var sc protocol.SignedCommand
	if err := json.Unmarshal(body, &sc); err != nil {
		t.reject(s, sc, body, &protocol.RejectError{Reason: protocol.RejectMalformed, Err: err})
		return
	}
	t.mu.Lock()
	ring, tr := t.keyring, t.trust
	t.mu.Unlock()
	if tr == nil { // unreachable: commands come after a welcome
		t.reject(s, sc, sc.Payload, &protocol.RejectError{Reason: protocol.RejectUnknownKey, Err: errors.New("terminal not enrolled")})
		return
	}
	var cmd *protocol.Command
	var err error
	checker.run(func() {
		cmd, err = ring.Open(sc, protocol.Recipient{TerminalID: tr.TerminalID, AreaCode: tr.AreaCode}, t.now())
	})
	if err != nil {
		var re *protocol.RejectError
		if !errors.As(err, &re) {
			re = &protocol.RejectError{Reason: protocol.RejectMalformed, Err: err}
		}
		t.reject(s, sc, sc.Payload, re)
		return
	}
	if err := t.seen.Admit(cmd.ID, cmd.Expires); err != nil {
		if errors.Is(err, seen.ErrReplay) {
			t.reject(s, sc, sc.Payload, &protocol.RejectError{Reason: protocol.RejectReplay, CommandID: cmd.ID, Err: err})
			return
		}
		// Acting without a durable record would let the command be replayed
		// after a restart: refuse it.
		t.faults.raise(protocol.FaultDisk, err.Error())
		t.receipt(cmd.ID, "", protocol.DeliveryFailed, "disk", "cannot record the command id: "+err.Error())
		return
	}
	t.act(cmd)
}

// act carries out a verified, first-seen command.
func (t *Terminal) act(cmd *protocol.Command) {
	switch cmd.Kind {
	case protocol.KindAlert:
		t.noteFlight(cmd.ID, cmd.Alert.EBMID, protocol.DeliveryAccepted) // before it can sound: a crash from here on reports it interrupted
		t.player.enqueue(newAlertTask(cmd))
	case protocol.KindSchedule:
		t.table.apply(cmd)
	case protocol.KindCancel:
		t.receipt(cmd.ID, cmd.Cancel.EBMID, protocol.DeliveryAccepted, "", "")
		detail := ""
		if !t.player.cancel(cmd.Cancel.EBMID, cmd.Expires) {
			detail = "the alert is neither queued nor playing"
		}
		t.receipt(cmd.ID, cmd.Cancel.EBMID, protocol.DeliveryDone, "", detail)
	case protocol.KindConfig:
		t.receipt(cmd.ID, "", protocol.DeliveryAccepted, "", "")
		if err := t.applyConfig(cmd.Config); err != nil {
			t.faults.raise(protocol.FaultDisk, err.Error())
			t.receipt(cmd.ID, "", protocol.DeliveryFailed, "disk", "applied, but not saved: "+err.Error())
			return
		}
		t.receipt(cmd.ID, "", protocol.DeliveryDone, "", "")
	case protocol.KindLive:
		t.startLive(cmd)
	case protocol.KindKeys:
		t.receipt(cmd.ID, "", protocol.DeliveryAccepted, "", "")
		if err := t.replaceKeys(cmd.Keys.Keys); err != nil {
			t.faults.raise(protocol.FaultDisk, err.Error())
			t.receipt(cmd.ID, "", protocol.DeliveryFailed, "disk", "keys not saved, still trusting the old ones: "+err.Error())
			return
		}
		t.receipt(cmd.ID, "", protocol.DeliveryDone, "", "")
	}
}

// reject reports a refused command. Nothing else happens for it.
func (t *Terminal) reject(s *session, sc protocol.SignedCommand, payload []byte, re *protocol.RejectError) {
	sum := sha256.Sum256(payload)
	detail := re.Error()
	if re.Err != nil {
		detail = re.Err.Error()
	}
	t.log.Warn("command rejected", "reason", re.Reason, "kid", sc.KeyID, "command", re.CommandID, "controller", s.url, "detail", detail)
	t.spoolReport(protocol.Report{Kind: protocol.ReportRejection, Rejection: &protocol.Rejection{
		CommandID:  re.CommandID,
		KeyID:      sc.KeyID,
		Reason:     re.Reason,
		Detail:     detail,
		Controller: s.url,
		PayloadSHA: hex.EncodeToString(sum[:]),
	}})
	if re.CommandID != "" && re.Reason != protocol.RejectNotAddressed && re.Reason != protocol.RejectReplay {
		t.receipt(re.CommandID, "", protocol.DeliveryRejected, re.Reason, detail)
	}
}
