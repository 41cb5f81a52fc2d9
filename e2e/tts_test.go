package e2e

import (
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/audio/pulsetest"
	"dalaba/protocol"
	"dalaba/tts/ttstest"
)

// TestTextToSpeechEndToEnd: an officer types a Chinese notice into the CLI
// (`alert send --text --tone`); the controller speaks it with espeak-ng and
// encodes it with lame (MP3), and a terminal process plays it through
// PulseAudio: the recording holds the chime, then speech for as long as the
// spoken media lasts, and the relay switched on once and off after it.
func TestTextToSpeechEndToEnd(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	ttstest.RequireEncoder(t)
	f := newField(t)
	f.noApproval()
	pulse := pulsetest.Start(t)
	rec := pulse.StartRecording(t, filepath.Join(f.dir, "tts.wav"))
	term := f.terminal("大巷村1号", "tts", "lcus", pulse.Env(), map[string]any{"emergency_volume": 100})
	waitOnline(t, f.admin, term)

	officer := f.person("zhang", "officer", county)
	out := officer.run("alert", "send", "--area", village, "--level", "4", "--tone", "--watch",
		"--text", "各位村民请注意，今晚八点在村委会召开防汛工作会议。")
	m := regexp.MustCompile(`alert (\d{35}) issued`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no alert issued:\n%s", out)
	}
	var sc protocol.SignedCommand
	var cmd protocol.Command
	if json.Unmarshal(f.admin.getRaw(t, "/api/v1/alerts/"+m[1]+"/command"), &sc) != nil || json.Unmarshal(sc.Payload, &cmd) != nil {
		t.Fatal("signed command unreadable")
	}
	spoken := time.Duration(cmd.Alert.Media[0].DurationMS) * time.Millisecond
	time.Sleep(200 * time.Millisecond) // let the last audio reach the recording
	rec.Stop()

	data, err := os.ReadFile(rec.Path())
	if err != nil {
		t.Fatal(err)
	}
	s, rate, err := audio.ReadWAV(data)
	if err != nil {
		t.Fatal(err)
	}
	high, low := audio.ToneSegments(s, rate, 880), audio.ToneSegments(s, rate, 660)
	if len(high) == 0 || len(low) == 0 || low[0].Start < high[0].End-20*time.Millisecond {
		t.Fatalf("chime not found in order: 880 Hz %v, 660 Hz %v", high, low)
	}
	// Speech: 10 ms windows louder than -40 dBFS after the chime.
	speechFrom := low[0].End + 250*time.Millisecond
	win := rate / 100
	var first, last time.Duration = -1, -1
	for i := int(speechFrom.Seconds() * float64(rate)); i+win <= len(s); i += win {
		var sum float64
		for _, v := range s[i : i+win] {
			sum += float64(v) * float64(v)
		}
		if math.Sqrt(sum/float64(win)) > 0.01 {
			at := time.Duration(i) * time.Second / time.Duration(rate)
			if first < 0 {
				first = at
			}
			last = at
		}
	}
	want := spoken - 2*400*time.Millisecond - 300*time.Millisecond // the speech after the chime
	if first < 0 || last-first < want*7/10 {
		t.Fatalf("speech in the recording spans %s, want most of the %s spoken", last-first, want)
	}
	ops := term.ops()
	if countOn(ops) != 1 || ops[len(ops)-1].Op != "off" {
		t.Fatalf("relay board saw %v, want on, off", opNames(ops))
	}
	t.Logf("spoken media %s; speech heard for %s after the chime", spoken, (last - first).Round(10*time.Millisecond))
}
