package protocol

// Hostile input. Whatever bytes arrive, decoding and verifying never panic,
// and nothing is accepted that is not exactly what the issuing key signed.
// The seeds are the signature test vector and the frame in
// testdata/vectors.json; make fuzz runs these targets longer.

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"os"
	"reflect"
	"strings"
	"testing"
	"time"
)

// vectorFile is testdata/vectors.json.
type vectorFile struct {
	Vectors []vector `json:"vectors"`
	Frame   string   `json:"frame"`
}

func readVectors(tb testing.TB) vectorFile {
	tb.Helper()
	b, err := os.ReadFile("testdata/vectors.json")
	if err != nil {
		tb.Fatal(err)
	}
	var v vectorFile
	if err := json.Unmarshal(b, &v); err != nil || len(v.Vectors) == 0 || v.Frame == "" {
		tb.Fatalf("testdata/vectors.json: %v", err)
	}
	return v
}

// The vector's alert addresses township 450224102; this village lies in it,
// and t0 lies inside the alert's validity.
var vectorRecipient = Recipient{TerminalID: "64502241020030000000001", AreaCode: "450224102003"}

// vectorRing trusts the vector's key only.
func vectorRing(v vector) Keyring {
	ring := Keyring{}
	ring.Add(ed25519.PublicKey(v.PublicKey))
	return ring
}

// vectorCommand is the vector as the SignedCommand that travels.
func vectorCommand(v vector) SignedCommand {
	return SignedCommand{KeyID: v.KeyID, Payload: []byte(v.Payload), Sig: v.Signature}
}

var knownReasons = map[string]bool{
	RejectMalformed: true, RejectUnknownKey: true, RejectBadSignature: true, RejectExpired: true,
	RejectNotYetValid: true, RejectInvalid: true, RejectNotAddressed: true,
}

// checkOpen opens sc and checks what any answer of Open must satisfy: a
// command, verified, valid, in force and addressed to r; or a RejectError
// with a known reason that names a command only once its payload verified
// and decoded.
func checkOpen(t *testing.T, ring Keyring, sc SignedCommand, r Recipient, now time.Time) (*Command, *RejectError) {
	t.Helper()
	cmd, err := ring.Open(sc, r, now)
	if err == nil {
		switch {
		case cmd == nil:
			t.Fatal("Open returned neither a command nor an error")
		case ring.Verify(sc) != nil:
			t.Fatalf("Open accepted a command that does not verify: %v", ring.Verify(sc))
		case cmd.Validate() != nil:
			t.Fatalf("Open accepted an invalid command: %v", cmd.Validate())
		case now.Before(cmd.NotBefore) || !now.Before(cmd.Expires):
			t.Fatalf("Open accepted a command valid %s..%s at %s", cmd.NotBefore, cmd.Expires, now)
		case !cmd.Targets.Includes(r.TerminalID, r.AreaCode):
			t.Fatalf("Open accepted a command addressed to %+v for %+v", cmd.Targets, r)
		}
		return cmd, nil
	}
	if cmd != nil {
		t.Fatalf("Open returned a command with its error %v", err)
	}
	var re *RejectError
	if !errors.As(err, &re) {
		t.Fatalf("Open error %v (%T) is not a RejectError", err, err)
	}
	if !knownReasons[re.Reason] {
		t.Fatalf("Open rejected with unknown reason %q: %v", re.Reason, err)
	}
	untrusted := re.Reason == RejectUnknownKey || re.Reason == RejectBadSignature || re.Reason == RejectMalformed
	if untrusted && re.CommandID != "" {
		t.Fatalf("rejection %s names command %q from a payload it could not trust", re.Reason, re.CommandID)
	}
	if re.Error() == "" || re.Err == nil {
		t.Fatalf("rejection %s carries no explanation", re.Reason)
	}
	return nil, re
}

// FuzzDecodeFrame feeds arbitrary text messages to the frame decoder and
// every body type, and verifies whatever decodes as a signed command.
func FuzzDecodeFrame(f *testing.F) {
	vf := readVectors(f)
	v := vf.Vectors[0]
	f.Add([]byte(vf.Frame))
	for _, seed := range []struct {
		t    Type
		body any
	}{
		{TypeHello, Hello{Version: Version, PublicKey: v.PublicKey, Proof: v.Signature, TerminalID: vectorRecipient.TerminalID, KeyIDs: []string{v.KeyID}}},
		{TypeHeartbeat, Heartbeat{State: StateIdle, Volume: 80, RelayOK: true, AudioOK: true, Firmware: "1.0"}},
		{TypeReport, Report{Seq: 7, At: t0, Kind: ReportReceipt, Receipt: &Receipt{CommandID: "0123456789abcdef0123456789abcdef", State: DeliveryDone}}},
		{TypeMediaGet, MediaGet{SHA256: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08", Offset: 65536}},
		{TypePing, Ping{TerminalTime: t0}},
		{TypeAck, Ack{Seq: 7}},
	} {
		b, err := Encode(seed.t, seed.body)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"type":""}`, `{"type":"command","body":null}`, `[]`, `null`, `{"type":"command","body":{"kid":1}}`,
		`{"type":"ping","body":{}} `, `{"type":"ping","body":{},"x":1}`, `{"type":"ping","body":1}`, `{"type":"Ping","body":{}}`,
		`{"type":"ping","body":"\u003c"}`, `{"type":"ping","body":}`, `{"type":"ping","body":{}}}`} {
		f.Add([]byte(s))
	}
	ring := vectorRing(v)
	nonce := bytes.Repeat([]byte{9}, 32)
	f.Fuzz(func(t *testing.T, msg []byte) {
		fr, err := Decode(msg)
		if len(msg) <= MaxFrameBytes { // split by hand or not, as JSON decodes it
			want, werr := decodeJSON(msg)
			if (err == nil) != (werr == nil) || err == nil && (fr.Type != want.Type || !bytes.Equal(fr.Body, want.Body)) {
				t.Fatalf("Decode(%q) = %q %q, %v; as JSON %q %q, %v", msg, fr.Type, fr.Body, err, want.Type, want.Body, werr)
			}
		}
		if err != nil {
			return
		}
		if fr.Type == "" {
			t.Fatal("Decode accepted a frame without a type")
		}
		bodies := []any{&SignedCommand{}, &Hello{}, &Challenge{}, &Welcome{}, &Denied{}, &Heartbeat{},
			&Report{}, &Ack{}, &MediaGet{}, &MediaErr{}, &Ping{}, &Pong{}}
		for _, body := range bodies {
			if err := DecodeBody(fr, body); err != nil && !strings.Contains(err.Error(), "malformed "+string(fr.Type)+" body") {
				t.Fatalf("DecodeBody error %q does not name the frame type %q", err, fr.Type)
			}
		}
		var sc SignedCommand
		if DecodeBody(fr, &sc) == nil {
			checkOpen(t, ring, sc, vectorRecipient, t0)
		}
		var h Hello
		if DecodeBody(fr, &h) == nil {
			_ = VerifyHello(h, nonce)
		}
	})
}

// FuzzOpen verifies arbitrary signed commands against the vector's key: only
// the vector itself, byte for byte, may be accepted.
func FuzzOpen(f *testing.F) {
	v := readVectors(f).Vectors[0]
	good := vectorCommand(v)
	f.Add(good.KeyID, good.Payload, good.Sig)
	f.Add(good.KeyID, good.Payload, good.Sig[:32])
	f.Add("", []byte("{}"), []byte{})
	f.Add(good.KeyID, []byte(`{"id":"0123456789abcdef0123456789abcdef"}`), good.Sig)
	ring := vectorRing(v)
	f.Fuzz(func(t *testing.T, kid string, payload, sig []byte) {
		sc := SignedCommand{KeyID: kid, Payload: payload, Sig: sig}
		cmd, re := checkOpen(t, ring, sc, vectorRecipient, t0)
		if cmd != nil && (kid != good.KeyID || !bytes.Equal(payload, good.Payload) || !bytes.Equal(sig, good.Sig)) {
			t.Fatalf("accepted a command that is not the signed vector: kid %q payload %q sig %x", kid, payload, sig)
		}
		if re != nil && re.Reason == RejectUnknownKey && ring[kid] != nil {
			t.Fatalf("key %q is trusted but the command was rejected as unknown_key", kid)
		}
	})
}

// FuzzSignedPayload signs arbitrary payloads with the trusted key: such a
// command decodes, validates and is accepted, or is refused with a reason
// that comes after the signature check and names the command it decoded.
func FuzzSignedPayload(f *testing.F) {
	v := readVectors(f).Vectors[0]
	f.Add([]byte(v.Payload))
	key := ed25519.NewKeyFromSeed(v.Seed)
	vol, beat := 60, 30
	for _, mutate := range []func(c *Command){
		func(c *Command) {
			c.Kind, c.Alert, c.Cancel = KindCancel, nil, &Cancel{EBMID: c.Alert.EBMID, Reason: "解除"}
		},
		func(c *Command) {
			c.Kind, c.Alert, c.Config = KindConfig, nil, &Config{Volume: &vol, HeartbeatSeconds: &beat}
		},
		func(c *Command) {
			c.Kind, c.Alert, c.Keys = KindKeys, nil, &Keys{Keys: []PublicKey{{KeyID: v.KeyID, PublicKey: v.PublicKey}}}
		},
		func(c *Command) {
			item := ScheduleItem{ID: "morning@2026-11-26T10:30:00+08:00", ProgramID: "morning", Title: "早间新闻",
				Start: t0.Add(30 * time.Minute), Latest: t0.Add(40 * time.Minute), Priority: PriorityProgram, Repeat: 1, MediaIDs: []string{c.Alert.Media[0].SHA256}}
			c.Schedule = &Schedule{Version: 3, From: t0, Until: t0.Add(72 * time.Hour), Media: c.Alert.Media, Items: []ScheduleItem{item}}
			c.Kind, c.Alert = KindSchedule, nil
		},
		func(c *Command) { c.Targets = Targets{Terminals: []string{vectorRecipient.TerminalID}} },
	} {
		c := testAlert()
		mutate(c)
		b, err := json.Marshal(c)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	ring := vectorRing(v)
	f.Fuzz(func(t *testing.T, payload []byte) {
		sc := SignBytes(payload, key)
		_, re := checkOpen(t, ring, sc, vectorRecipient, t0)
		if re == nil {
			return
		}
		var decoded Command
		decodeErr := json.Unmarshal(payload, &decoded)
		switch re.Reason {
		case RejectUnknownKey, RejectBadSignature:
			t.Fatalf("a command signed by the trusted key was rejected as %s: %v", re.Reason, re)
		case RejectMalformed:
			if decodeErr == nil {
				t.Fatalf("payload decodes but was rejected as malformed: %v", re)
			}
		default:
			if decodeErr != nil || re.CommandID != decoded.ID {
				t.Fatalf("rejection %s names %q, the payload's id is %q (decode: %v)", re.Reason, re.CommandID, decoded.ID, decodeErr)
			}
		}
	})
}

// FuzzMediaChunk checks that a binary media message splits into its header
// and data exactly as EncodeMediaChunk builds it, whatever its length.
func FuzzMediaChunk(f *testing.F) {
	var sum [32]byte
	copy(sum[:], "0123456789abcdef0123456789abcdef")
	f.Add(EncodeMediaChunk(sum, 65536, []byte("ID3\x04 audio bytes")))
	f.Add(EncodeMediaChunk(sum, 0, nil))
	f.Add(EncodeMediaChunk(sum, 1<<63, []byte{0}))
	f.Add(make([]byte, MediaChunkHeader-1))
	f.Fuzz(func(t *testing.T, msg []byte) {
		s, off, data, err := DecodeMediaChunk(msg)
		if len(msg) < MediaChunkHeader {
			if err == nil {
				t.Fatalf("a %d-byte message decoded as a chunk", len(msg))
			}
			return
		}
		if err != nil {
			t.Fatalf("a %d-byte message was refused: %v", len(msg), err)
		}
		if len(data) != len(msg)-MediaChunkHeader {
			t.Fatalf("%d data bytes from a %d-byte message", len(data), len(msg))
		}
		if back := EncodeMediaChunk(s, off, data); !bytes.Equal(back, msg) {
			t.Fatalf("re-encoded chunk differs: % x, want % x", back, msg)
		}
	})
}

// Encode writes the envelope itself; it must write what json.Marshal of a
// Frame does, byte for byte.
func TestEncodeAsMarshal(t *testing.T) {
	for _, c := range []struct {
		t    Type
		body any
	}{
		{TypePong, Pong{TerminalTime: t0, ServerTime: t0}},
		{TypeHeartbeat, Heartbeat{State: StateIdle, Firmware: "<b>&'\u2028 大喇叭"}},
		{TypeAck, nil},
		{TypeMediaErr, map[string]any{"a": []int{1, 2}, "b": "x\ny"}},
		{Type("odd\"<type>"), "body"},
	} {
		got, err := Encode(c.t, c.body)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := json.Marshal(c.body)
		want, _ := json.Marshal(Frame{Type: c.t, Body: b})
		if !bytes.Equal(got, want) {
			t.Errorf("Encode(%q) = %s, want %s", c.t, got, want)
		}
	}
}

// EncodePong writes what Encode does, byte for byte, for times in any zone
// and precision, and fails as it does for the times JSON cannot hold.
func TestEncodePongAsEncode(t *testing.T) {
	times := []time.Time{t0, {}, t0.In(time.FixedZone("CST", 8*3600)), t0.Add(123456789 * time.Nanosecond).In(time.FixedZone("", -(3*3600 + 30*60))),
		time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC), time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		t0.In(time.FixedZone("", 24*3600)), t0.In(time.FixedZone("", 23*3600+59*60)), time.Now(), time.Now().Round(0)}
	for _, a := range times {
		for _, b := range times {
			p := Pong{TerminalTime: a, ServerTime: b}
			got, err := EncodePong(p)
			want, werr := Encode(TypePong, p)
			if !bytes.Equal(got, want) || (err == nil) != (werr == nil) {
				t.Errorf("EncodePong(%v, %v) = %s, %v; Encode: %s, %v", a, b, got, err, want, werr)
			}
		}
	}
}

// FuzzDecodeHeartbeat holds DecodeHeartbeat to json.Unmarshal: whatever
// it reads by hand, json.Unmarshal reads alike, and whatever it hands on
// decodes as DecodeBody decodes it.
func FuzzDecodeHeartbeat(f *testing.F) {
	at := t0.Add(123456789 * time.Nanosecond).In(time.FixedZone("", 8*3600))
	for _, hb := range []Heartbeat{
		{State: StateIdle, Volume: 80, RelayOK: true, AudioOK: true, Firmware: "1.0", UptimeSecs: 86400, CacheBytes: 1 << 40, TerminalTime: &at},
		{State: StatePlaying, Volume: -1, RelayOn: true, Playing: "10" + strings.Repeat("4", 39), Firmware: "dalaba 1.2.3 (linux/arm)", Pending: 3},
		{},
		{State: "<b>", Firmware: "大喇叭 \"1\"\n"},
	} {
		b, err := json.Marshal(hb)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{`{"state":"idle","volume":01,"relay_ok":true,"relay_on":false,"audio_ok":true,"firmware":"","uptime_s":0,"cache_bytes":0,"pending_reports":0}`,
		`{"state":"idle","volume":1e2,"relay_ok":true,"relay_on":false,"audio_ok":true,"firmware":"","uptime_s":0,"cache_bytes":0,"pending_reports":0}`,
		`{"state":"idle","volume":-0,"relay_ok":true,"relay_on":false,"audio_ok":true,"firmware":"","uptime_s":9223372036854775808,"cache_bytes":0,"pending_reports":0}`,
		`{"state":"idle","volume":0,"relay_ok":true,"relay_on":false,"audio_ok":true,"firmware":"","uptime_s":0,"cache_bytes":0,"pending_reports":0,"terminal_time":null}`,
		`{"state":"idle","volume":0,"relay_ok":true,"relay_on":false,"audio_ok":true,"firmware":"","uptime_s":0,"cache_bytes":0,"pending_reports":0,"terminal_time":"2026-13-01T00:00:00Z"}`,
		`{"state":"idle","volume":0,"relay_ok":true,"relay_on":false,"audio_ok":true,"firmware":"","uptime_s":0,"cache_bytes":0,"pending_reports":0} `,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeHeartbeat(Frame{Type: TypeHeartbeat, Body: body})
		var want Heartbeat
		werr := DecodeBody(Frame{Type: TypeHeartbeat, Body: body}, &want)
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("DecodeHeartbeat(%q): error %v, DecodeBody: %v", body, err, werr)
		}
		if err != nil {
			return
		}
		gt, wt := got.TerminalTime, want.TerminalTime
		got.TerminalTime, want.TerminalTime = nil, nil
		if got != want || (gt == nil) != (wt == nil) || gt != nil && (!gt.Equal(*wt) || gt.String() != wt.String()) {
			t.Fatalf("DecodeHeartbeat(%q) = %+v (time %v), DecodeBody: %+v (time %v)", body, got, gt, want, wt)
		}
	})
}

// A heartbeat as a terminal writes it is read by hand, not handed on.
func TestHeartbeatReadByHand(t *testing.T) {
	at := time.Now()
	for _, hb := range []Heartbeat{
		{State: StateIdle, Volume: 80, RelayOK: true, AudioOK: true, Firmware: "dalaba 1.2.3", UptimeSecs: 86400, CacheBytes: 1 << 30, TerminalTime: &at},
		{State: StatePlaying, Volume: 100, RelayOn: true, Playing: "10" + strings.Repeat("4", 39), Pending: 2},
		{State: StateFault},
	} {
		b, _ := json.Marshal(hb)
		if _, ok := readHeartbeat(b); !ok {
			t.Errorf("%s is not read by hand", b)
		}
	}
}

// BenchmarkAnswerHeartbeat is what a controller does with each heartbeat
// before storing it: split the frame, read the body, write the pong; by
// hand (DecodeHeartbeat, EncodePong) and by reflection (DecodeBody, Encode).
func BenchmarkAnswerHeartbeat(b *testing.B) {
	at := time.Now()
	msg, err := Encode(TypeHeartbeat, Heartbeat{State: StateIdle, Volume: 80, RelayOK: true, AudioOK: true, Firmware: "dalaba 1.2.3 (linux/arm)",
		UptimeSecs: 86400, CacheBytes: 12 << 20, TerminalTime: &at})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("by hand", func(b *testing.B) {
		for b.Loop() {
			f, _ := Decode(msg)
			hb, err := DecodeHeartbeat(f)
			if err != nil {
				b.Fatal(err)
			}
			if _, err := EncodePong(Pong{TerminalTime: *hb.TerminalTime, ServerTime: at}); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		for b.Loop() {
			f, _ := Decode(msg)
			var hb Heartbeat
			if err := DecodeBody(f, &hb); err != nil {
				b.Fatal(err)
			}
			if _, err := Encode(TypePong, Pong{TerminalTime: *hb.TerminalTime, ServerTime: at}); err != nil {
				b.Fatal(err)
			}
		}
	})
}

// FuzzDecodeReport holds DecodeReport to json.Unmarshal as
// FuzzDecodeHeartbeat holds DecodeHeartbeat.
func FuzzDecodeReport(f *testing.F) {
	at := t0.Add(123456789 * time.Nanosecond)
	east := at.In(time.FixedZone("", 8*3600))
	for _, r := range []Report{
		{Seq: 1, At: at, Kind: ReportReceipt, Receipt: &Receipt{CommandID: "c-1", EBMID: "10" + strings.Repeat("4", 39), State: DeliveryAccepted}},
		{Seq: 1<<64 - 1, At: east, Kind: ReportReceipt, Receipt: &Receipt{CommandID: "c-2", State: DeliveryFailed, Reason: "media", Detail: "no room"}},
		{Seq: 7, At: at, Kind: ReportReceipt, Receipt: &Receipt{CommandID: "c-3", State: DeliveryFailed, Detail: "喇叭 \"坏了\""}},
		{Seq: 2, At: at, Kind: ReportSwitch, Switch: &Switch{Action: "start", To: "e-1", At: east}},
		{Seq: 3, At: at, Kind: ReportSwitch, Switch: &Switch{Action: "preempt", From: "i-1", To: "e-1", At: at}},
		{Seq: 4, At: at, Kind: ReportFault, Fault: &Fault{Code: FaultRelay, Active: true, Message: "no answer"}},
		{},
	} {
		b, err := json.Marshal(r)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	for _, s := range []string{
		`{"seq":01,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"}}`,
		`{"seq":-1,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"}}`,
		`{"seq":18446744073709551616,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"}}`,
		`{"seq":1,"at":"2026-13-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"}}`,
		`{"seq":1,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":null}`,
		`{"seq":1,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","ebm_id":"","state":"done"}}`,
		`{"seq":1,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"},"switch":{"action":"end","at":"2026-11-26T10:00:00Z"}}`,
		`{"seq":1,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"}} `,
		`{"SEQ":1,"at":"2026-11-26T10:00:00Z","kind":"receipt","receipt":{"command_id":"c","state":"done"}}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		got, err := DecodeReport(Frame{Type: TypeReport, Body: body})
		var want Report
		werr := DecodeBody(Frame{Type: TypeReport, Body: body}, &want)
		if (err == nil) != (werr == nil) || err != nil && err.Error() != werr.Error() {
			t.Fatalf("DecodeReport(%q): error %v, DecodeBody: %v", body, err, werr)
		}
		if err != nil {
			return
		}
		sameTime := func(a, b *time.Time) bool {
			same := a.Equal(*b) && a.String() == b.String()
			*a, *b = time.Time{}, time.Time{}
			return same
		}
		times := sameTime(&got.At, &want.At)
		if got.Switch != nil && want.Switch != nil {
			times = sameTime(&got.Switch.At, &want.Switch.At) && times
		}
		if !times || !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeReport(%q) = %+v, DecodeBody: %+v", body, got, want)
		}
	})
}

// The receipts and switch reports a terminal sends in a fan-out are read
// by hand, not handed on.
func TestReportReadByHand(t *testing.T) {
	at := time.Now().UTC()
	ebm := "10" + strings.Repeat("4", 39)
	for _, r := range []Report{
		{Seq: 1, At: at, Kind: ReportReceipt, Receipt: &Receipt{CommandID: "c-1", EBMID: ebm, State: DeliveryAccepted}},
		{Seq: 2, At: at, Kind: ReportReceipt, Receipt: &Receipt{CommandID: "c-1", EBMID: ebm, State: DeliveryFailed, Reason: "media", Detail: "checksum mismatch"}},
		{Seq: 3, At: at, Kind: ReportSwitch, Switch: &Switch{Action: "start", To: ebm, At: at}},
		{Seq: 4, At: at, Kind: ReportSwitch, Switch: &Switch{Action: "end", From: ebm, At: at}},
	} {
		b, _ := json.Marshal(r)
		if _, ok := readReport(b); !ok {
			t.Errorf("%s is not read by hand", b)
		}
	}
}

// BenchmarkDecodeReport decodes a receipt as a terminal sends it, by hand
// (DecodeReport) and by reflection (DecodeBody).
func BenchmarkDecodeReport(b *testing.B) {
	msg, err := Encode(TypeReport, Report{Seq: 12, At: time.Now().UTC(), Kind: ReportReceipt,
		Receipt: &Receipt{CommandID: "9f1c2e7a-55d4-4a43-9d0e-2b1f3c4d5e6f", EBMID: "10" + strings.Repeat("4", 39), State: DeliveryPlaying}})
	if err != nil {
		b.Fatal(err)
	}
	b.Run("by hand", func(b *testing.B) {
		for b.Loop() {
			f, _ := Decode(msg)
			if _, err := DecodeReport(f); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("reflection", func(b *testing.B) {
		for b.Loop() {
			f, _ := Decode(msg)
			var r Report
			if err := DecodeBody(f, &r); err != nil {
				b.Fatal(err)
			}
		}
	})
}
