package e2e

import (
	"context"
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
	"dalaba/terminal/relay/relaysim"
)

const (
	county   = "450224000000"
	township = "450224100000"
	village  = "450224100201"
	toneHz   = 1000
	toneLen  = 1500 * time.Millisecond
	warmup   = 300 * time.Millisecond
	tailTime = 300 * time.Millisecond
)

type fieldTerminal struct {
	name, proto string
	id          string
	board       *relaysim.Board
	cfgPath     string
	cfg         map[string]any
	proc        *proc
}

func (ft *fieldTerminal) start(t *testing.T, bin string, env []string) {
	writeJSON(t, ft.cfgPath, ft.cfg)
	ft.proc = start(t, "terminal-"+ft.proto, env, filepath.Join(bin, "dalaba-terminal"), "-config", ft.cfgPath)
}

// ops returns the board's on/off frames in order.
func (ft *fieldTerminal) ops() []relaysim.Event {
	var out []relaysim.Event
	for _, e := range ft.board.Log() {
		if e.Op == "on" || e.Op == "off" {
			out = append(out, e)
		}
	}
	return out
}

func countOn(evs []relaysim.Event) int {
	n := 0
	for _, e := range evs {
		if e.Op == "on" {
			n++
		}
	}
	return n
}

// TestSignedAlertEndToEnd: an officer's alert reaches two terminal
// processes, each switches a relay board (LCUS on one, Modbus RTU on the
// other) over a real pty serial line, plays through PulseAudio, and reports
// done. Then one terminal is pointed at a rogue server: forged, tampered and
// replayed commands switch nothing and sound nothing, and each rejection
// reaches the real controller when the terminal returns to it.
func TestSignedAlertEndToEnd(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	bin := binaries(t)
	dalaba := filepath.Join(bin, "dalaba")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// The controller, initialised by the CLI.
	addr := freePort(t)
	data := filepath.Join(dir, "controller")
	run(t, dalaba, "init", "--data", data, "--listen", addr)
	start(t, "controller", nil, filepath.Join(bin, "dalaba-controller"), "-config", filepath.Join(data, "controller.json"))
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	a := api{base: "http://" + addr, token: strings.TrimSpace(string(tok))}
	cli := func(args ...string) string { return run(t, dalaba, append(args, "--url", a.base, "--data", data)...) }
	eventually(t, 10*time.Second, "controller health", func() bool {
		var h map[string]any
		resp, err := httpGet(a.base + "/api/v1/health")
		return err == nil && json.Unmarshal(resp, &h) == nil && h["ok"] == true
	})
	cli("area", "add", township, "长安镇", "--parent", county)
	cli("area", "add", village, "大巷村", "--parent", township)

	pulse := pulsetest.Start(t)
	rec := pulse.StartRecording(t, filepath.Join(dir, "alert.wav"))

	terms := []*fieldTerminal{{name: "大巷村1号", proto: "lcus"}, {name: "大巷村2号", proto: "modbus"}}
	idRe := regexp.MustCompile(`terminal (\d{23})`)
	tokRe := regexp.MustCompile(`enroll_token: (\S+)`)
	for _, ft := range terms {
		out := cli("terminal", "enroll", "--area", village, "--name", ft.name)
		ft.id, ft.cfgPath = idRe.FindStringSubmatch(out)[1], filepath.Join(dir, ft.proto+".json")
		line := relaysim.StartLine(t)
		ft.board = relaysim.New(ft.proto, 1)
		go relaysim.ServeSerial(ctx, line.Board, ft.board)
		ft.cfg = map[string]any{
			"controllers":  []string{"ws://" + addr + "/v1/terminal"},
			"data_dir":     filepath.Join(dir, "terminal-"+ft.proto),
			"enroll_token": tokRe.FindStringSubmatch(out)[1],
			"name":         ft.name,
			"relay":        map[string]any{"protocol": ft.proto, "port": line.Device, "channel": 1, "slave": 1},
			"audio":        map[string]any{"output": "oto"},
			"warmup_ms":    warmup.Milliseconds(),
			// Two terminals now start within a millisecond; the same tone
			// from both at the same level could cancel in the one sink.
			"emergency_volume": map[string]int{"lcus": 100, "modbus": 40}[ft.proto],
			"tail_ms":          tailTime.Milliseconds(),
		}
		ft.start(t, bin, pulse.Env())
	}
	waitOnline(t, a, terms...)

	// The alert, sent and watched with the CLI: it exits 0 only when every
	// terminal reported done.
	tone := filepath.Join(dir, "tone.wav")
	if err := os.WriteFile(tone, audio.ToneWAV(toneHz, toneLen, 44100, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}
	// An officer composes it; a second person approves; it goes out.
	officer := person(t, dalaba, a.base, data, "zhang", "officer", county)
	approver := person(t, dalaba, a.base, data, "li", "approver", county)
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
	victim.cfg["controllers"] = []string{"ws://" + addr + "/v1/terminal"}
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
func forgeries(t *testing.T, genuine protocol.SignedCommand) []protocol.SignedCommand {
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
func rogueAttack(t *testing.T, victim *fieldTerminal, bin string, pulse *pulsetest.Server, dir string, attacks []protocol.SignedCommand) string {
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

func toneSegments(t *testing.T, path string) []audio.Segment {
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

func opNames(evs []relaysim.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Op)
	}
	return out
}

func waitOnline(t *testing.T, a api, terms ...*fieldTerminal) {
	t.Helper()
	eventually(t, 20*time.Second, "the terminals to come online", func() bool {
		var ts []store.Terminal
		a.get(t, "/api/v1/terminals", &ts)
		online := 0
		for _, term := range ts {
			for _, ft := range terms {
				if term.ID == ft.id && term.State != "offline" {
					online++
				}
			}
		}
		return online == len(terms)
	})
}
