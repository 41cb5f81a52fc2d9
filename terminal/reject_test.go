package terminal

import (
	"crypto/sha256"
	"encoding/hex"
	"slices"
	"testing"
	"time"

	"dalaba/protocol"
)

// settle sends a harmless signed config command and waits for it to be
// done: commands are handled in order, so whatever an earlier command
// started has started by then.
func (r *rig) settle() {
	r.t.Helper()
	v := 80
	cmd := r.ctl.command(protocol.KindConfig, func(c *protocol.Command) { c.Config = &protocol.Config{Volume: &v} })
	r.ctl.send(r.ctl.sign(cmd))
	r.ctl.waitState(cmd.ID, protocol.DeliveryDone)
}

// rejections returns the rejection reports of the payload of sc.
func (c *fakeController) rejections(sc protocol.SignedCommand) []protocol.Rejection {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.rejectionsLocked(sc)
}

func (c *fakeController) rejectionsLocked(sc protocol.SignedCommand) []protocol.Rejection {
	sum := sha256.Sum256(sc.Payload)
	var out []protocol.Rejection
	for _, r := range c.reports {
		if r.Rejection != nil && r.Rejection.PayloadSHA == hex.EncodeToString(sum[:]) {
			out = append(out, *r.Rejection)
		}
	}
	return out
}

// waitRejections waits for the nth rejection of sc and returns it.
func (c *fakeController) waitRejections(sc protocol.SignedCommand, n int) protocol.Rejection {
	c.t.Helper()
	c.waitFor("rejection", func() bool { return len(c.rejectionsLocked(sc)) >= n })
	return c.rejections(sc)[n-1]
}

// checkSilent fails if the board got any frame after base or any audio was
// written beyond wavs files.
func (r *rig) checkSilent(base, wavs int) {
	r.t.Helper()
	if ops := r.ops(base); len(ops) != 0 {
		r.t.Fatalf("relay board got %v for a rejected command", ops)
	}
	if w := r.wavs(); len(w) != wavs {
		r.t.Fatalf("audio written for a rejected command: %v", w)
	}
}

func TestRejectedCommandsDoNothing(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	m := tone(ctl, 200*time.Millisecond)
	rogue := newKey(t)
	now := time.Now()
	cases := []struct {
		name    string
		sc      func() (protocol.SignedCommand, *protocol.Command)
		reason  string
		knownID bool // the rejection may name the command
		receipt bool // and a rejected receipt follows
	}{
		{"forged by an unknown key", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, nil)
			sc, _ := protocol.Sign(cmd, rogue)
			return sc, cmd
		}, protocol.RejectUnknownKey, false, false},
		{"forged under the pinned key id", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, nil)
			sc, _ := protocol.Sign(cmd, rogue)
			sc.KeyID = ctl.sign(cmd).KeyID
			return sc, cmd
		}, protocol.RejectBadSignature, false, false},
		{"tampered payload byte", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, nil)
			sc := ctl.sign(cmd)
			sc.Payload = slices.Clone(sc.Payload)
			i := slices.Index(sc.Payload, '"') + 1
			sc.Payload[i] ^= 0x01
			return sc, cmd
		}, protocol.RejectBadSignature, false, false},
		{"expired", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, func(c *protocol.Command) {
				c.IssuedAt, c.NotBefore, c.Expires = now.Add(-time.Hour), now.Add(-time.Hour), now.Add(-time.Minute)
			})
			return ctl.sign(cmd), cmd
		}, protocol.RejectExpired, true, true},
		{"not yet valid", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, func(c *protocol.Command) {
				c.NotBefore, c.Expires = now.Add(time.Hour), now.Add(2*time.Hour)
			})
			return ctl.sign(cmd), cmd
		}, protocol.RejectNotYetValid, true, true},
		{"not addressed", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, func(c *protocol.Command) {
				c.Targets = protocol.Targets{Areas: []string{"450224103001"}}
			})
			return ctl.sign(cmd), cmd
		}, protocol.RejectNotAddressed, true, false},
		{"signed but invalid", func() (protocol.SignedCommand, *protocol.Command) {
			cmd := ctl.alert([]protocol.Media{m}, func(c *protocol.Command) { c.Alert.Repeat = 0 })
			return ctl.sign(cmd), cmd
		}, protocol.RejectInvalid, true, true},
		{"signed but not JSON", func() (protocol.SignedCommand, *protocol.Command) {
			return protocol.SignBytes([]byte("{not json"), ctl.issuer), &protocol.Command{}
		}, protocol.RejectMalformed, false, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, wavs := len(r.board.Log()), len(r.wavs())
			sc, cmd := c.sc()
			ctl.send(sc)
			rej := ctl.waitRejections(sc, 1)
			r.settle()
			if rej.Reason != c.reason {
				t.Errorf("reason %q (%s), want %q", rej.Reason, rej.Detail, c.reason)
			}
			if rej.KeyID != sc.KeyID || rej.Controller != ctl.url || rej.Detail == "" {
				t.Errorf("rejection %+v: want kid %s, controller %s and a detail", rej, sc.KeyID, ctl.url)
			}
			if c.knownID && rej.CommandID != cmd.ID || !c.knownID && rej.CommandID != "" {
				t.Errorf("rejection names command %q (known id: %v)", rej.CommandID, c.knownID)
			}
			var want []string
			if c.receipt {
				want = []string{protocol.DeliveryRejected}
			}
			if got := ctl.states(cmd.ID); cmd.ID != "" && !slices.Equal(got, want) {
				t.Errorf("receipts %v, want %v", got, want)
			}
			r.checkSilent(base, wavs)
		})
	}
}

func TestReplayRejectedAcrossRestart(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	cmd := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	sc := ctl.sign(cmd)
	ctl.send(sc)
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	played := ctl.states(cmd.ID)

	for round, restart := range []bool{false, true} {
		if restart {
			r.stop()
			r.start()
		}
		base, wavs := len(r.board.Log()), len(r.wavs())
		ctl.send(sc)
		rej := ctl.waitRejections(sc, round+1)
		r.settle()
		if rej.Reason != protocol.RejectReplay || rej.CommandID != cmd.ID {
			t.Fatalf("restart %v: rejection %+v, want replay of %s", restart, rej, cmd.ID)
		}
		if got := ctl.states(cmd.ID); !slices.Equal(got, played) {
			t.Fatalf("restart %v: receipts %v changed from %v", restart, got, played)
		}
		r.checkSilent(base, wavs)
	}
}

func TestConfigCommandPersists(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	term := r.start()
	vol, hb := 35, 5
	cmd := ctl.command(protocol.KindConfig, func(c *protocol.Command) {
		c.Config = &protocol.Config{Volume: &vol, HeartbeatSeconds: &hb}
	})
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	if st := term.Status(); st.Volume != 35 || st.HeartbeatSeconds != 5 {
		t.Fatalf("status %+v after config", st)
	}
	r.stop()
	term = r.start()
	if st := term.Status(); st.Volume != 35 || st.HeartbeatSeconds != 5 {
		t.Fatalf("settings lost across a restart: %+v", st)
	}
	if want := []string{protocol.DeliveryAccepted, protocol.DeliveryDone}; !slices.Equal(ctl.states(cmd.ID), want) {
		t.Fatalf("receipts %v, want %v", ctl.states(cmd.ID), want)
	}
}
