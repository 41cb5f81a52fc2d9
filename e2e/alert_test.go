package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/audio/pulsetest"
	"dalaba/controller/store"
	"dalaba/protocol"
)

const (
	toneHz  = 1000
	toneLen = 1500 * time.Millisecond
)

// TestSignedAlertEndToEnd: an officer's alert reaches two terminal
// processes, each switches a relay board (LCUS on one, Modbus RTU on the
// other) over a real pty serial line, plays through PulseAudio, and reports
// done. Then one terminal is pointed at a rogue server: forged, tampered and
// replayed commands switch nothing and sound nothing, and each rejection
// reaches the real controller when the terminal returns to it.
func TestSignedAlertEndToEnd(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	f := newField(t)
	bin, dir, a := f.bin, f.dir, f.admin

	pulse := pulsetest.Start(t)
	rec := pulse.StartRecording(t, filepath.Join(dir, "alert.wav"))
	// Two terminals now start within a millisecond; the same tone from
	// both at the same level could cancel in the one sink.
	terms := []*fieldTerminal{
		f.terminal("大巷村1号", "lcus", "lcus", pulse.Env(), map[string]any{"emergency_volume": 100}),
		f.terminal("大巷村2号", "modbus", "modbus", pulse.Env(), map[string]any{"emergency_volume": 40}),
	}
	waitOnline(t, a, terms...)

	// The alert, sent and watched with the CLI: it exits 0 only when every
	// terminal reported done.
	tone := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(tone, audio.ToneWAV(toneHz, toneLen, 44100, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}
	// An officer composes it; a second person approves; it goes out.
	officer := f.person("zhang", "officer", county).run
	approver := f.person("li", "approver", county).run
	out := officer("alert", "send", "--area", township, "--audio", tone, "--level", "2", "--title", "防汛测试")
	alertID := regexp.MustCompile(`alert (\d{35}) waits for approval`).FindStringSubmatch(out)[1]
	approver("alert", "approve", alertID, "--comment", "核实无误，同意播发")
	officer("alert", "watch", alertID)
	var view struct {
		Deliveries []store.Delivery `json:"deliveries"`
	}
	a.get(t, "/api/v1/alerts/"+alertID, &view)
	if len(view.Deliveries) != 2 {
		t.Fatalf("%d deliveries, want 2", len(view.Deliveries))
	}
	for _, d := range view.Deliveries {
		if d.State != protocol.DeliveryDone {
			t.Errorf("terminal %s: delivery %s (%s), want done", d.TerminalID, d.State, d.Reason)
		}
	}
	time.Sleep(200 * time.Millisecond) // let the last audio reach the recording
	rec.Stop()
	segs := toneSegments(t, rec.Path())
	if len(segs) != 1 {
		t.Fatalf("recording holds %d segments of the tone (%v), want 1", len(segs), segs)
	}
	played := segs[0].End - segs[0].Start
	if played < toneLen-100*time.Millisecond || played > toneLen+250*time.Millisecond {
		t.Errorf("tone sounded %s, want %s (two terminals, started a little apart)", played, toneLen)
	}
	toneStart, toneEnd := rec.Time(segs[0].Start), rec.Time(segs[0].End)
	for _, ft := range terms {
		ops := ft.ops()
		if countOn(ops) != 1 || ops[len(ops)-1].Op != "off" || ops[len(ops)-2].Op != "on" {
			t.Fatalf("%s board saw %v, want ... on, off", ft.proto, opNames(ops))
		}
		on, off := ops[len(ops)-2].At, ops[len(ops)-1].At
		if gap := toneStart.Sub(on); gap < warmup-50*time.Millisecond {
			t.Errorf("%s: audio began %s after relay ON, want at least the %s warm-up", ft.proto, gap, warmup)
		}
		if off.Before(toneEnd.Add(-50 * time.Millisecond)) {
			t.Errorf("%s: relay OFF at %s, before the audio ended at %s", ft.proto, off.Format("15:04:05.000"), toneEnd.Format("15:04:05.000"))
		}
		t.Logf("%s: relay ON→audio %s, audio end→relay OFF %s", ft.proto, toneStart.Sub(on).Round(time.Millisecond), off.Sub(toneEnd).Round(time.Millisecond))
	}
	t.Logf("tone sounded for %s in the recording", played.Round(time.Millisecond))

	// A hijacked address: terminal 1 is pointed at a rogue server.
	var genuine protocol.SignedCommand
	if err := json.Unmarshal(a.getRaw(t, "/api/v1/alerts/"+alertID+"/command"), &genuine); err != nil {
		t.Fatal(err)
	}
	attacks := forgeries(t, genuine)
	victim := terms[0]
	victim.proc.stop()
	ev := rogueAttack(t, victim, bin, pulse, dir, attacks)

	// Back on the real controller, every rejection is reported with its reason.
	victim.cfg["controllers"] = []string{"ws://" + f.addr + "/v1/terminal"}
	victim.start(t, bin, pulse.Env())
	want := []string{protocol.RejectBadSignature, protocol.RejectBadSignature, protocol.RejectReplay, protocol.RejectUnknownKey}
	var got []string
	eventually(t, 15*time.Second, "the rejections to reach the controller", func() bool {
		var reps []store.StoredReport
		a.get(t, "/api/v1/terminals/"+victim.id+"/reports?kind=rejection", &reps)
		got = got[:0]
		for _, r := range reps {
			if r.Report.Rejection.Controller == ev {
				got = append(got, r.Report.Rejection.Reason)
			}
		}
		sort.Strings(got)
		return slices.Equal(got, want)
	})
	if n := countOn(victim.ops()); n != 1 {
		t.Fatalf("victim's relay switched on %d times in all, want once (the genuine alert)", n)
	}
}

// forgeries builds what a rogue without the issuing key can send: a new
// alert under its own key, the same under the genuine key id, the genuine
// command with one payload byte flipped, and the genuine command replayed.
func forgeries(t testing.TB, genuine protocol.SignedCommand) []protocol.SignedCommand {
	var cmd protocol.Command
	if err := json.Unmarshal(genuine.Payload, &cmd); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 16)
	rand.Read(b)
	cmd.ID = hex.EncodeToString(b)
	cmd.Alert.Title = "伪造警报"
	_, rogueKey, _ := ed25519.GenerateKey(rand.Reader)
	forged, err := protocol.Sign(&cmd, rogueKey)
	if err != nil {
		t.Fatal(err)
	}
	underGenuineKid := forged
	underGenuineKid.KeyID = genuine.KeyID
	tampered := genuine
	tampered.Payload = slices.Clone(genuine.Payload)
	i := strings.Index(string(tampered.Payload), `"repeat":1`) + len(`"repeat":`)
	tampered.Payload[i] = '9' // play it nine times
	return []protocol.SignedCommand{forged, underGenuineKid, tampered, genuine}
}

// rogueAttack runs the victim against a rogue server and checks that
// nothing switched and nothing sounded. It returns the rogue's URL.
func rogueAttack(t testing.TB, victim *fieldTerminal, bin string, pulse *pulsetest.Server, dir string, attacks []protocol.SignedCommand) string {
	onsBefore := countOn(victim.ops())
	rec := pulse.StartRecording(t, filepath.Join(dir, "attack.wav"))
	r := startRogue(t, attacks)
	victim.cfg["controllers"] = []string{r.url()}
	victim.start(t, bin, pulse.Env())
	eventually(t, 15*time.Second, "the victim to reject all four commands", func() bool { return len(r.rejections()) >= len(attacks) })
	// Had anything been accepted, the relay would switch and the tone sound
	// within the warm-up plus a few hundred milliseconds.
	time.Sleep(warmup + toneLen)
	victim.proc.stop()
	rec.Stop()
	if n := countOn(victim.ops()); n != onsBefore {
		t.Fatalf("a rogue command switched the relay on (%d ON frames, want %d)", n, onsBefore)
	}
	if segs := toneSegments(t, rec.Path()); len(segs) != 0 {
		t.Fatalf("a rogue command made sound: %v", segs)
	}
	got := r.rejections()
	sort.Strings(got)
	t.Logf("the victim rejected the rogue's commands: %v", got)
	return r.url()
}

func toneSegments(t testing.TB, path string) []audio.Segment {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	samples, rate, err := audio.ReadWAV(data)
	if err != nil {
		t.Fatalf("read recording %s: %v", path, err)
	}
	return audio.ToneSegments(samples, rate, toneHz)
}
