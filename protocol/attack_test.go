package protocol

// Named attacks on the signed command path. Each is also a fuzz target's
// property (fuzz_test.go); here every case is enumerated, so the attack is
// checked in full on every go test, not by chance.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// TestFlippedByteNeverAccepted flips every bit of every byte of the key id,
// the signature and the payload of a valid signed command, one at a time:
// each is refused before its payload is decoded (unknown_key for the key id,
// bad_signature for the others), and none names a command.
func TestFlippedByteNeverAccepted(t *testing.T) {
	v := readVectors(t).Vectors[0]
	ring := vectorRing(v)
	good := vectorCommand(v)
	if _, re := checkOpen(t, ring, good, vectorRecipient, t0); re != nil {
		t.Fatalf("the unmodified vector is refused: %v", re)
	}
	fields := []struct {
		name   string
		len    int
		flip   func(sc *SignedCommand, i int, mask byte)
		reason string
	}{
		{"key id", len(good.KeyID), func(sc *SignedCommand, i int, mask byte) {
			b := []byte(sc.KeyID)
			b[i] ^= mask
			sc.KeyID = string(b)
		}, RejectUnknownKey},
		{"signature", len(good.Sig), func(sc *SignedCommand, i int, mask byte) { sc.Sig[i] ^= mask }, RejectBadSignature},
		{"payload", len(good.Payload), func(sc *SignedCommand, i int, mask byte) { sc.Payload[i] ^= mask }, RejectBadSignature},
	}
	for _, field := range fields {
		t.Run(field.name, func(t *testing.T) {
			tried := 0
			for i := 0; i < field.len; i++ {
				for bit := 0; bit < 8; bit++ {
					sc := SignedCommand{KeyID: good.KeyID, Payload: bytes.Clone(good.Payload), Sig: bytes.Clone(good.Sig)}
					field.flip(&sc, i, 1<<bit)
					cmd, re := checkOpen(t, ring, sc, vectorRecipient, t0)
					if cmd != nil {
						t.Fatalf("byte %d bit %d flipped: accepted", i, bit)
					}
					if re.Reason != field.reason {
						t.Fatalf("byte %d bit %d flipped: rejected as %s (%v), want %s", i, bit, re.Reason, re, field.reason)
					}
					tried++
				}
			}
			if tried != 8*field.len || tried == 0 {
				t.Fatalf("tried %d flips of %d bytes", tried, field.len)
			}
		})
	}
}

// TestFrameByteFlipsNeverForge damages the command frame as it travels,
// one byte of the text message at a time (three different bit flips per
// byte). Most damaged frames no longer decode (a terminal reports them as
// malformed); the rest are refused by Open. A few decode to the very same
// signed command (encoding/json matches field names case-insensitively, so
// "Kid" is "kid"): those are accepted, since they carry the signed bytes
// unchanged. None is accepted with anything else.
func TestFrameByteFlipsNeverForge(t *testing.T) {
	vf := readVectors(t)
	ring := vectorRing(vf.Vectors[0])
	good := vectorCommand(vf.Vectors[0])
	frame := []byte(vf.Frame)
	counts := map[string]int{}
	for i := range frame {
		for _, mask := range []byte{0x01, 0x20, 0x80} {
			msg := bytes.Clone(frame)
			msg[i] ^= mask
			f, err := Decode(msg)
			if err != nil || f.Type != TypeCommand {
				counts["not a command frame"]++
				continue
			}
			var sc SignedCommand
			if err := DecodeBody(f, &sc); err != nil {
				counts[RejectMalformed]++
				continue
			}
			cmd, re := checkOpen(t, ring, sc, vectorRecipient, t0)
			if re != nil {
				counts[re.Reason]++
				continue
			}
			if sc.KeyID != good.KeyID || !bytes.Equal(sc.Payload, good.Payload) || !bytes.Equal(sc.Sig, good.Sig) {
				t.Fatalf("byte %d (%q) ^ %#02x: accepted a command other than the signed one: %+v", i, frame[i], mask, cmd)
			}
			counts["same signed bytes, accepted"]++
		}
	}
	t.Logf("%d damaged frames: %v", 3*len(frame), counts)
	if counts[RejectBadSignature] == 0 || counts[RejectUnknownKey] == 0 || counts[RejectMalformed] == 0 {
		t.Fatalf("expected every kind of refusal among the damaged frames, got %v", counts)
	}
}

// TestCommandAddressedToAnotherTerminal signs commands that name terminals
// by id: only the named terminal (or one in a named area) accepts them, and
// the others refuse them as not_addressed while naming the command.
func TestCommandAddressedToAnotherTerminal(t *testing.T) {
	key := testKey(7)
	ring := Keyring{}
	ring.Add(key.Public().(ed25519.PublicKey))
	me := vectorRecipient
	const neighbour = "64502241020030000000002" // same village, another loudspeaker
	cases := []struct {
		name    string
		targets Targets
		reason  string
	}{
		{"another terminal of the same village", Targets{Terminals: []string{neighbour}}, RejectNotAddressed},
		{"a terminal of another village", Targets{Terminals: []string{"64502241030010000000001"}}, RejectNotAddressed},
		{"this terminal's id in another area's list", Targets{Areas: []string{"450224103001"}, Terminals: []string{neighbour}}, RejectNotAddressed},
		{"an id that differs in its last digit", Targets{Terminals: []string{me.TerminalID[:EBRIDLen-1] + "2"}}, RejectNotAddressed},
		{"this terminal by id", Targets{Terminals: []string{neighbour, me.TerminalID}}, ""},
		{"this terminal's village", Targets{Areas: []string{me.AreaCode}}, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := testAlert()
			cmd.Targets = c.targets
			sc, err := Sign(cmd, key)
			if err != nil {
				t.Fatal(err)
			}
			got, re := checkOpen(t, ring, sc, me, t0)
			if c.reason == "" {
				if re != nil {
					t.Fatalf("refused: %v", re)
				}
				if got.ID != cmd.ID {
					t.Fatalf("opened %s, want %s", got.ID, cmd.ID)
				}
				return
			}
			if re == nil || re.Reason != c.reason || re.CommandID != cmd.ID {
				t.Fatalf("Open = %v, want %s naming %s", re, c.reason, cmd.ID)
			}
			if !strings.Contains(re.Error(), me.TerminalID) {
				t.Fatalf("rejection %q does not say which terminal refused", re)
			}
		})
	}
}

// TestDecodeRefusesOversizedFrame: a frame of MaxFrameBytes decodes, one
// byte more is refused before it is parsed.
func TestDecodeRefusesOversizedFrame(t *testing.T) {
	frame := func(size int) []byte {
		head, _ := json.Marshal(Frame{Type: TypeHeartbeat, Body: json.RawMessage(`{"firmware":""}`)})
		pad := size - len(head)
		b := make([]byte, 0, size)
		b = append(b, head[:len(head)-3]...) // up to the firmware's opening quote
		b = append(b, bytes.Repeat([]byte("x"), pad)...)
		return append(b, head[len(head)-3:]...)
	}
	at := frame(MaxFrameBytes)
	if len(at) != MaxFrameBytes {
		t.Fatalf("built a frame of %d bytes", len(at))
	}
	if _, err := Decode(at); err != nil {
		t.Fatalf("a frame of exactly %d bytes: %v", MaxFrameBytes, err)
	}
	over := frame(MaxFrameBytes + 1)
	_, err := Decode(over)
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("a frame of %d bytes: %v, want it refused as too large", len(over), err)
	}
	if errors.Unwrap(err) != nil {
		t.Fatalf("an oversized frame was parsed: %v", err)
	}
}
