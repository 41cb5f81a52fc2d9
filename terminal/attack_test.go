package terminal

// Named attacks on a running terminal, over its real WebSocket link, with
// the simulated relay board and the WAV audio output watching for anything
// that would sound.

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

// mediaGets counts the fetches of a media file so far.
func (c *fakeController) mediaGets(sha string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, g := range c.gets {
		if g.SHA256 == sha {
			n++
		}
	}
	return n
}

// rejectionCount counts the rejection reports stored so far.
func (c *fakeController) rejectionCount() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	n := 0
	for _, r := range c.reports {
		if r.Rejection != nil {
			n++
		}
	}
	return n
}

// TestCommandForAnotherTerminal: a command signed by the trusted key but
// addressed to another terminal is refused as not_addressed, naming the
// command; it fetches nothing, switches nothing, plays nothing and sends no
// receipt (the addressed terminal reports on it, not this one).
func TestCommandForAnotherTerminal(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	m := tone(ctl, 200*time.Millisecond)
	const neighbour = "64502241020030000000002" // same village, the next loudspeaker
	cases := []struct {
		name    string
		targets protocol.Targets
	}{
		{"another terminal of this village", protocol.Targets{Terminals: []string{neighbour}}},
		{"a terminal of another village", protocol.Targets{Terminals: []string{"64502241030010000000001"}}},
		{"another terminal and another village", protocol.Targets{Terminals: []string{neighbour}, Areas: []string{"450224103001"}}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			base, wavs, gets := len(r.board.Log()), len(r.wavs()), ctl.mediaGets(m.SHA256)
			cmd := ctl.alert([]protocol.Media{m}, func(cmd *protocol.Command) { cmd.Targets = c.targets })
			sc := ctl.sign(cmd)
			ctl.send(sc)
			rej := ctl.waitRejection(sc)
			r.settle()
			if rej.Reason != protocol.RejectNotAddressed || rej.CommandID != cmd.ID || rej.KeyID != sc.KeyID {
				t.Fatalf("rejection %+v, want %s naming %s", rej, protocol.RejectNotAddressed, cmd.ID)
			}
			if got := ctl.states(cmd.ID); len(got) != 0 {
				t.Fatalf("receipts %v for a command addressed to another terminal", got)
			}
			if n := ctl.mediaGets(m.SHA256); n != gets {
				t.Fatalf("media fetched %d times for a command addressed to another terminal", n-gets)
			}
			r.checkSilent(base, wavs)
		})
	}
}

// TestFlippedCommandBytesRefused sends a valid alert once for every byte of
// its key id, signature and payload, with that byte's lowest bit flipped.
// Every copy is refused before its payload is trusted (unknown_key for the
// key id, bad_signature otherwise), nothing sounds, and the replay guard is
// not touched: the unmodified alert, sent last, still plays.
func TestFlippedCommandBytesRefused(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	cmd := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	good := ctl.sign(cmd)
	base, wavs, rejections := len(r.board.Log()), len(r.wavs()), ctl.rejectionCount()

	want := map[string]int{}
	flip := func(b []byte, i int) []byte { b = slices.Clone(b); b[i] ^= 0x01; return b }
	for i := range len(good.KeyID) {
		ctl.send(protocol.SignedCommand{KeyID: string(flip([]byte(good.KeyID), i)), Payload: good.Payload, Sig: good.Sig})
		want[protocol.RejectUnknownKey]++
	}
	for i := range good.Sig {
		ctl.send(protocol.SignedCommand{KeyID: good.KeyID, Payload: good.Payload, Sig: flip(good.Sig, i)})
		want[protocol.RejectBadSignature]++
	}
	for i := range good.Payload {
		ctl.send(protocol.SignedCommand{KeyID: good.KeyID, Payload: flip(good.Payload, i), Sig: good.Sig})
		want[protocol.RejectBadSignature]++
	}
	total := len(good.KeyID) + len(good.Sig) + len(good.Payload)
	ctl.waitFor("every flipped command rejected", func() bool {
		n := 0
		for _, rep := range ctl.reports {
			if rep.Rejection != nil {
				n++
			}
		}
		return n >= rejections+total
	})
	r.settle()
	got := map[string]int{}
	ctl.mu.Lock()
	for _, rep := range ctl.reports {
		if rej := rep.Rejection; rej != nil {
			got[rej.Reason]++
			if rej.CommandID != "" {
				t.Errorf("rejection %+v names a command from a payload that did not verify", rej)
			}
		}
	}
	ctl.mu.Unlock()
	if got[protocol.RejectUnknownKey] != want[protocol.RejectUnknownKey] || got[protocol.RejectBadSignature] != want[protocol.RejectBadSignature] || len(got) != 2 {
		t.Fatalf("rejections %v, want %v (%d flipped copies)", got, want, total)
	}
	if states := ctl.states(cmd.ID); len(states) != 0 {
		t.Fatalf("receipts %v for flipped copies", states)
	}
	r.checkSilent(base, wavs)

	ctl.send(good)
	ctl.waitState(cmd.ID, protocol.DeliveryDone)
	if len(r.wavs()) != wavs+1 {
		t.Fatalf("the unmodified alert played %d times, want once", len(r.wavs())-wavs)
	}
}

// TestOversizedFrameDropsConnection: a text frame of protocol.MaxFrameBytes
// from the controller is read (and, being of no known type, ignored); one
// byte more and the terminal drops the connection, then connects again.
func TestOversizedFrameDropsConnection(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	padded := func(size int) []byte {
		head, tail := `{"type":"x-padding","body":{"pad":"`, `"}}`
		return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
	}
	ctl.mu.Lock()
	conn, welcomes := ctl.conns[len(ctl.conns)-1], ctl.welcomes
	ctl.mu.Unlock()

	if err := conn.write(websocket.TextMessage, padded(protocol.MaxFrameBytes)); err != nil {
		t.Fatal(err)
	}
	r.settle()
	ctl.mu.Lock()
	again := ctl.welcomes
	ctl.mu.Unlock()
	if again != welcomes {
		t.Fatalf("a frame of exactly %d bytes made the terminal reconnect", protocol.MaxFrameBytes)
	}

	if err := conn.write(websocket.TextMessage, padded(protocol.MaxFrameBytes+1)); err != nil {
		t.Fatal(err)
	}
	// The terminal holds one connection at a time: a new welcome means it
	// ended the old one.
	ctl.waitFor("the terminal to drop the connection and connect again", func() bool { return ctl.welcomes > welcomes })
}
