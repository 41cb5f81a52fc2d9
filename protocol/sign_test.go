package protocol

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/vectors.json")

var t0 = time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)

func testKey(seed byte) ed25519.PrivateKey {
	s := make([]byte, ed25519.SeedSize)
	for i := range s {
		s[i] = seed
	}
	return ed25519.NewKeyFromSeed(s)
}

func testAlert() *Command {
	return &Command{
		ID: "0123456789abcdef0123456789abcdef", Kind: KindAlert,
		IssuedAt: t0, NotBefore: t0.Add(-time.Minute), Expires: t0.Add(time.Hour),
		Targets: Targets{Areas: []string{"450224102000"}},
		Alert: &Alert{
			EBMID: "44502240000000000000001202611260001", Class: ClassEmergency, MsgType: MsgActual,
			Level: 2, EventType: "11B03", Title: "防汛预警", Repeat: 1, Volume: 80,
			Media: []Media{{
				SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Size: 1000,
				Format: "mp3", DurationMS: 2000, ChunkSize: DefaultChunkSize,
				Chunks: []string{"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"},
			}},
		},
	}
}

func TestOpen(t *testing.T) {
	issuer, rogue := testKey(1), testKey(2)
	ring := Keyring{}
	ring.Add(issuer.Public().(ed25519.PublicKey))
	me := Recipient{TerminalID: "64502241020030000000001", AreaCode: "450224102003"}
	good, err := Sign(testAlert(), issuer)
	if err != nil {
		t.Fatal(err)
	}
	flip := func(b []byte, i int) []byte { c := append([]byte(nil), b...); c[i] ^= 1; return c }
	cases := []struct {
		name   string
		sc     SignedCommand
		r      Recipient
		now    time.Time
		reason string
	}{
		{"valid", good, me, t0, ""},
		{"tampered payload byte", SignedCommand{good.KeyID, flip(good.Payload, 40), good.Sig}, me, t0, RejectBadSignature},
		{"tampered signature byte", SignedCommand{good.KeyID, good.Payload, flip(good.Sig, 3)}, me, t0, RejectBadSignature},
		{"truncated signature", SignedCommand{good.KeyID, good.Payload, good.Sig[:10]}, me, t0, RejectBadSignature},
		{"unknown key id", SignBytes(good.Payload, rogue), me, t0, RejectUnknownKey},
		{"wrong key under pinned key id", SignedCommand{good.KeyID, good.Payload, SignBytes(good.Payload, rogue).Sig}, me, t0, RejectBadSignature},
		{"key id byte flipped", SignedCommand{string(flip([]byte(good.KeyID), 0)), good.Payload, good.Sig}, me, t0, RejectUnknownKey},
		{"expired", good, me, t0.Add(2 * time.Hour), RejectExpired},
		{"exactly at expiry", good, me, t0.Add(time.Hour), RejectExpired},
		{"not yet valid", good, me, t0.Add(-2 * time.Minute), RejectNotYetValid},
		{"a clock a little behind", good, me, t0.Add(-time.Minute - StartLeeway + time.Millisecond), ""},
		{"a clock behind by more than the leeway", good, me, t0.Add(-time.Minute - StartLeeway - time.Millisecond), RejectNotYetValid},
		{"other village", good, Recipient{"64502241030010000000001", "450224103001"}, t0, RejectNotAddressed},
		{"malformed payload, signed", SignBytes([]byte("{not json"), issuer), me, t0, RejectMalformed},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd, err := ring.Open(c.sc, c.r, c.now)
			if c.reason == "" {
				if err != nil {
					t.Fatalf("Open: %v", err)
				}
				if cmd.Alert.Title != "防汛预警" {
					t.Fatalf("decoded title %q", cmd.Alert.Title)
				}
				return
			}
			var re *RejectError
			if !errors.As(err, &re) {
				t.Fatalf("Open = %v, want a RejectError %s", err, c.reason)
			}
			if re.Reason != c.reason {
				t.Fatalf("reason %s (%v), want %s", re.Reason, err, c.reason)
			}
			if cmd != nil {
				t.Fatal("a rejected command was returned")
			}
		})
	}
}

func TestValidateRejectsSignedButInvalid(t *testing.T) {
	issuer := testKey(1)
	ring := Keyring{}
	ring.Add(issuer.Public().(ed25519.PublicKey))
	me := Recipient{TerminalID: "64502241020030000000001", AreaCode: "450224102003"}
	cases := map[string]func(c *Command){
		"bad id":                               func(c *Command) { c.ID = "xyz" },
		"lifetime too long":                    func(c *Command) { c.Expires = c.IssuedAt.Add(MaxCommandLifetime + time.Second) },
		"level 5":                              func(c *Command) { c.Alert.Level = 5 },
		"msg type cancel":                      func(c *Command) { c.Alert.MsgType = MsgCancel },
		"no media":                             func(c *Command) { c.Alert.Media = nil },
		"chunk count wrong":                    func(c *Command) { c.Alert.Media[0].Size = 2 * DefaultChunkSize },
		"first chunk too small":                func(c *Command) { c.Alert.Media[0].FirstChunk = 2 << 10 },
		"first chunk too large":                func(c *Command) { c.Alert.Media[0].FirstChunk = 2 * DefaultChunkSize },
		"first chunk not a power of two below": func(c *Command) { c.Alert.Media[0].FirstChunk = DefaultChunkSize / 3 },
		"ramp counted as uniform": func(c *Command) { // 3 pieces of 16, 16, 8 KiB, not 1
			m := &c.Alert.Media[0]
			m.Size, m.FirstChunk = 40<<10, DefaultFirstChunk
		},
		"bad area":             func(c *Command) { c.Targets.Areas = []string{"4502"} },
		"no targets":           func(c *Command) { c.Targets = Targets{} },
		"two bodies":           func(c *Command) { c.Cancel = &Cancel{EBMID: c.Alert.EBMID} },
		"kind mismatch":        func(c *Command) { c.Kind = KindConfig },
		"ebm id with bad date": func(c *Command) { c.Alert.EBMID = "44502240000000000000001202613400001" },
		"format ogg":           func(c *Command) { c.Alert.Media[0].Format = "ogg" },
		"volume above 100":     func(c *Command) { c.Alert.Volume = 101 },
		"emergency at level 0": func(c *Command) { c.Alert.Level = 0 },
		"uppercase media hash": func(c *Command) {
			c.Alert.Media[0].SHA256 = "9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08"
		},
		"expires before start": func(c *Command) { c.Expires = c.NotBefore },
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			c := testAlert()
			mutate(c)
			sc, err := Sign(c, issuer)
			if err != nil {
				t.Fatal(err)
			}
			_, err = ring.Open(sc, me, t0)
			var re *RejectError
			if !errors.As(err, &re) || re.Reason != RejectInvalid {
				t.Fatalf("Open = %v, want reason %s", err, RejectInvalid)
			}
		})
	}
}

func TestAreaContains(t *testing.T) {
	cases := []struct {
		outer, area string
		want        bool
	}{
		{"450224000000", "450224102003", true},  // county
		{"450224102000", "450224102003", true},  // township
		{"450224102003", "450224102003", true},  // village itself
		{"450224102004", "450224102003", false}, // sibling village
		{"450224103000", "450224102003", false}, // other township
		{"450200000000", "450224102003", true},  // city
		{"450000000000", "450224102003", true},  // province
		{"450225000000", "450224102003", false}, // other county
		{"4502241020", "450224102003", false},   // malformed
	}
	for _, c := range cases {
		if got := AreaContains(c.outer, c.area); got != c.want {
			t.Errorf("AreaContains(%s, %s) = %v, want %v", c.outer, c.area, got, c.want)
		}
	}
}

func TestDeliveryAdvances(t *testing.T) {
	cases := []struct {
		from, to string
		want     bool
	}{
		{DeliveryQueued, DeliverySent, true},
		{DeliverySent, DeliveryPlaying, true},
		{DeliveryPlaying, DeliveryDone, true},
		{DeliveryPlaying, DeliveryAccepted, false},
		{DeliveryDone, DeliveryFailed, false},
		{DeliveryOffline, DeliveryQueued, true},
		{DeliveryCancelled, DeliveryPlaying, false},
		{"bogus", DeliveryDone, false},
	}
	for _, c := range cases {
		if got := DeliveryAdvances(c.from, c.to); got != c.want {
			t.Errorf("DeliveryAdvances(%s, %s) = %v, want %v", c.from, c.to, got, c.want)
		}
	}
}

// vector is one signature test vector, for implementers in other languages.
type vector struct {
	Name      string `json:"name"`
	Seed      []byte `json:"seed"` // Ed25519 private key seed
	PublicKey []byte `json:"public_key"`
	KeyID     string `json:"kid"`
	Payload   string `json:"payload"`   // the exact signed bytes
	Signed    []byte `json:"signed"`    // "dalaba/command/v1\n" + payload
	Signature []byte `json:"signature"` // Ed25519 over Signed
}

func TestVectors(t *testing.T) {
	key := testKey(7)
	payload, _ := json.Marshal(testAlert())
	sc := SignBytes(payload, key)
	v := vector{
		Name: "alert to a township, key seed 0x07*32", Seed: key.Seed(), PublicKey: key.Public().(ed25519.PublicKey),
		KeyID: sc.KeyID, Payload: string(payload), Signed: append([]byte(commandContext), payload...), Signature: sc.Sig,
	}
	frame, err := Encode(TypeCommand, sc)
	if err != nil {
		t.Fatal(err)
	}
	file := struct {
		Vectors []vector `json:"vectors"`
		Frame   string   `json:"frame"` // the whole WebSocket text message
	}{[]vector{v, vectorOf("schedule of two programs sharing a media table, key seed 0x07*32", key, testSchedule())}, string(frame)}
	got, _ := json.MarshalIndent(file, "", "  ")
	if *update {
		if err := os.WriteFile("testdata/vectors.json", append(got, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		t.Fatalf("%v (run go test ./protocol -run TestVectors -update)", err)
	}
	if string(want) != string(got)+"\n" {
		t.Fatal("signature vectors changed: the signed bytes or the encoding moved; if intended, run with -update and note it in docs/protocol.md")
	}
	// The stored vector verifies on its own.
	ring := Keyring{}
	ring.Add(ed25519.PublicKey(v.PublicKey))
	if err := ring.Verify(SignedCommand{KeyID: v.KeyID, Payload: []byte(v.Payload), Sig: v.Signature}); err != nil {
		t.Fatal(err)
	}
	f, err := Decode(frame)
	if err != nil {
		t.Fatal(err)
	}
	var back SignedCommand
	if err := DecodeBody(f, &back); err != nil || string(back.Payload) != v.Payload {
		t.Fatalf("frame round trip: %v", err)
	}
}

func TestHello(t *testing.T) {
	term := testKey(3)
	nonce := []byte("0123456789abcdef0123456789abcdef")
	pub := term.Public().(ed25519.PublicKey)
	h := Hello{Version: Version, PublicKey: pub, Proof: ed25519.Sign(term, HelloProof(nonce, pub))}
	if err := VerifyHello(h, nonce); err != nil {
		t.Fatal(err)
	}
	if err := VerifyHello(h, []byte("another nonce, another session!!")); !errors.Is(err, ErrBadSignature) {
		t.Fatalf("proof for another nonce: %v", err)
	}
	h.Version = 99
	if err := VerifyHello(h, nonce); !errors.Is(err, ErrVersion) {
		t.Fatalf("version 99: %v", err)
	}
}

func TestEBMID(t *testing.T) {
	id, err := NewEBMID("44502240000000000000001", time.Date(2026, 11, 26, 20, 0, 0, 0, time.UTC), 7)
	if err != nil {
		t.Fatal(err)
	}
	if id != "44502240000000000000001202611270007" { // 20:00 UTC is the 27th in Beijing
		t.Fatalf("got %s", id)
	}
	if err := ValidEBMID(id); err != nil {
		t.Fatal(err)
	}
	if _, err := NewEBMID("44502240000000000000001", t0, 10000); err == nil {
		t.Fatal("sequence 10000 accepted")
	}
}

func TestMediaChunkRoundTrip(t *testing.T) {
	var sum [32]byte
	sum[0] = 9
	msg := EncodeMediaChunk(sum, 65536, []byte("abc"))
	s, off, data, err := DecodeMediaChunk(msg)
	if err != nil || s != sum || off != 65536 || string(data) != "abc" {
		t.Fatalf("got %v %d %q %v", s[0], off, data, err)
	}
	if _, _, _, err := DecodeMediaChunk(msg[:10]); err == nil {
		t.Fatal("short chunk accepted")
	}
}
