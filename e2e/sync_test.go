package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/audio/pulsetest"
	"dalaba/controller"
	"dalaba/protocol"
	"dalaba/terminal/relay/relaysim"
)

// Starting together: how far apart two terminals start the same play_at.
const (
	syncRounds  = 3
	syncLead    = 3 * time.Second // play_at ahead of sending
	syncToneLen = time.Second
	maxSkew     = 20 * time.Millisecond
)

// TestStartTogether: two terminal processes whose own clocks are 20 s slow
// and 35 s fast each get an alert with the same play_at and play different
// tones into one PulseAudio sink. In the one recording, the two tones must
// begin within 20 ms of each other. The measured skew is logged, round by
// round, with the median (docs/benchmarks.md, "Starting together").
func TestStartTogether(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	bin := binaries(t)
	dalaba := filepath.Join(bin, "dalaba")
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	addr := freePort(t)
	data := filepath.Join(dir, "controller")
	run(t, dalaba, "init", "--data", data, "--listen", addr)
	start(t, "controller", nil, filepath.Join(bin, "dalaba-controller"), "-config", filepath.Join(data, "controller.json"))
	tok, err := os.ReadFile(filepath.Join(data, "admin.token"))
	if err != nil {
		t.Fatal(err)
	}
	admin := api{base: "http://" + addr, token: strings.TrimSpace(string(tok))}
	cli := func(args ...string) string {
		return run(t, dalaba, append(args, "--url", admin.base, "--data", data)...)
	}
	eventually(t, 10*time.Second, "controller health", func() bool {
		var h map[string]any
		b, err := httpGet(admin.base + "/api/v1/health")
		return err == nil && json.Unmarshal(b, &h) == nil && h["ok"] == true
	})
	cli("area", "add", township, "长安镇", "--parent", county)
	cli("area", "add", village, "大巷村", "--parent", township)
	// A drill-free county test: no second person, so each alert goes at once.
	admin.do(t, http.MethodPut, "/api/v1/settings/policy", map[string]any{"approval": map[string]any{}, "drill_roles": []string{"officer"}}, nil)
	officer := api{base: admin.base, token: signIn(t, dalaba, admin.base, data, "wang", "officer", county)}

	pulse := pulsetest.Start(t)
	tones := []float64{800, 1400}
	offsets := []int{-20000, 35000}
	var terms []*fieldTerminal
	idRe, tokRe := regexp.MustCompile(`terminal (\d{23})`), regexp.MustCompile(`enroll_token: (\S+)`)
	for i, off := range offsets {
		ft := &fieldTerminal{name: fmt.Sprintf("大巷村%d号", i+1), proto: fmt.Sprintf("lcus%d", i+1)}
		out := cli("terminal", "enroll", "--area", village, "--name", ft.name)
		ft.id, ft.cfgPath = idRe.FindStringSubmatch(out)[1], filepath.Join(dir, ft.proto+".json")
		line := relaysim.StartLine(t)
		ft.board = relaysim.New("lcus", 1)
		go relaysim.ServeSerial(ctx, line.Board, ft.board)
		ft.cfg = map[string]any{
			"controllers":     []string{"ws://" + addr + "/v1/terminal"},
			"data_dir":        filepath.Join(dir, "terminal-"+ft.proto),
			"enroll_token":    tokRe.FindStringSubmatch(out)[1],
			"name":            ft.name,
			"relay":           map[string]any{"protocol": "lcus", "port": line.Device, "channel": 1},
			"audio":           map[string]any{"output": "oto"},
			"warmup_ms":       warmup.Milliseconds(),
			"tail_ms":         tailTime.Milliseconds(),
			"clock_offset_ms": off,
		}
		ft.start(t, bin, pulse.Env())
		terms = append(terms, ft)
	}
	waitOnline(t, admin, terms...)
	media := make([]string, len(tones))
	for i, hz := range tones {
		media[i] = officer.upload(t, fmt.Sprintf("tone%d.wav", i), audio.ToneWAV(hz, syncToneLen, 44100, 0.4))
	}
	time.Sleep(2 * time.Second) // a few pings refine the clock estimates

	var skews, callSkews []time.Duration
	for round := range syncRounds {
		rec := pulse.StartRecording(t, filepath.Join(dir, fmt.Sprintf("sync%d.wav", round)))
		playAt := time.Now().Add(syncLead).Truncate(time.Millisecond)
		var ids []string
		for i, ft := range terms {
			var v controller.AlertView
			officer.do(t, http.MethodPost, "/api/v1/alerts", map[string]any{
				"class": protocol.ClassEmergency, "level": 4, "title": fmt.Sprintf("同步测试 %d", round),
				"terminals": []string{ft.id}, "media": []string{media[i]}, "play_at": playAt,
			}, &v)
			ids = append(ids, v.ID)
		}
		for _, id := range ids {
			waitDone(t, officer, id)
		}
		time.Sleep(200 * time.Millisecond)
		rec.Stop()
		samples := readRecording(t, rec.Path())
		var onsets []time.Duration
		for i, hz := range tones {
			segs := audio.ToneSegments(samples, pulsetest.RecordRate, hz)
			if len(segs) == 0 {
				t.Fatalf("round %d: the tone of %s (%.0f Hz) is not in the recording", round, terms[i].name, hz)
			}
			if len(segs) > 1 { // the machine was too busy to feed the audio server
				t.Logf("round %d: %s's tone has dropouts: %v", round, terms[i].name, segs)
			}
			onsets = append(onsets, segs[0].Start)
			t.Logf("round %d: %s started %v after play_at (by the recording's clock, ±10 ms)", round, terms[i].name, rec.Time(segs[0].Start).Sub(playAt).Round(time.Millisecond))
		}
		skew := onsets[1] - onsets[0]
		calls := outputStarts(t, terms[1], round+1).Sub(outputStarts(t, terms[0], round+1))
		t.Logf("round %d: start skew %v in the recording, %v between the audio output calls (terminal clocks %+d s and %+d s)",
			round, skew.Round(100*time.Microsecond), calls, offsets[0]/1000, offsets[1]/1000)
		skews, callSkews = append(skews, skew.Abs()), append(callSkews, calls.Abs())
	}
	slices.Sort(skews)
	slices.Sort(callSkews)
	med := skews[len(skews)/2]
	t.Logf("start skew over %d rounds: median %v (worst %v) in the recording; median %v (worst %v) between the output calls",
		syncRounds, med.Round(100*time.Microsecond), skews[len(skews)-1].Round(100*time.Microsecond), callSkews[len(callSkews)/2], callSkews[len(callSkews)-1])
	// The median, so that one round starved of CPU on a shared machine
	// does not decide; every round is logged above.
	if med > maxSkew {
		t.Fatalf("terminals started %v apart (median of %v), want within %v", med, skews, maxSkew)
	}
	for _, ft := range terms {
		if n := countOn(ft.ops()); n != syncRounds {
			t.Errorf("%s: relay switched ON %d times, want %d", ft.name, n, syncRounds)
		}
	}
}

// waitDone waits until the alert's one delivery is done.
func waitDone(t *testing.T, a api, id string) {
	t.Helper()
	eventually(t, 20*time.Second, "alert "+id+" done", func() bool {
		var v controller.AlertView
		a.get(t, "/api/v1/alerts/"+id, &v)
		if len(v.Deliveries) == 1 && protocol.DeliveryFinal(v.Deliveries[0].State) && v.Deliveries[0].State != protocol.DeliveryDone {
			t.Fatalf("alert %s: delivery %s (%s)", id, v.Deliveries[0].State, v.Deliveries[0].Detail)
		}
		return len(v.Deliveries) == 1 && v.Deliveries[0].State == protocol.DeliveryDone
	})
}

func readRecording(t *testing.T, path string) []float32 {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	s, rate, err := audio.ReadWAV(b)
	if err != nil || rate != pulsetest.RecordRate {
		t.Fatalf("recording %s: rate %d, %v", path, rate, err)
	}
	return s
}

// do calls the API with a JSON body and decodes the answer into out.
func (a api) do(t *testing.T, method, path string, in, out any) {
	t.Helper()
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	a.call(t, method, path, "application/json", b, out)
}

// upload stores a media file and returns its sha256.
func (a api) upload(t *testing.T, name string, data []byte) string {
	t.Helper()
	var m struct {
		SHA256 string `json:"sha256"`
	}
	a.call(t, http.MethodPost, "/api/v1/media?name="+name, "application/octet-stream", data, &m)
	return m.SHA256
}

func (a api) call(t *testing.T, method, path, ctype string, body []byte, out any) {
	t.Helper()
	req, _ := http.NewRequest(method, a.base+path, bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", ctype)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	got, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 {
		t.Fatalf("%s %s: %s %s", method, path, resp.Status, got)
	}
	if out != nil {
		if err := json.Unmarshal(got, out); err != nil {
			t.Fatalf("%s %s: %v in %s", method, path, err, got)
		}
	}
}

// signIn creates an operator with the admin's CLI, signs them in (replacing
// the one-time password) and returns their API token.
func signIn(t *testing.T, dalaba, base, data, name, roles, areas string) string {
	t.Helper()
	out := run(t, dalaba, "user", "add", name, "--roles", roles, "--areas", areas, "--url", base, "--data", data)
	m := regexp.MustCompile(`one-time password: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no one-time password in:\n%s", out)
	}
	d := t.TempDir()
	once, fresh, tokFile := filepath.Join(d, "once"), filepath.Join(d, "new"), filepath.Join(d, "token")
	os.WriteFile(once, []byte(m[1]+"\n"), 0o600)
	os.WriteFile(fresh, []byte("Flood-Watch-2026!\n"), 0o600)
	run(t, dalaba, "login", "--url", base, "--user", name, "--password-file", once, "--new-password-file", fresh, "--save", tokFile)
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimSpace(string(tok))
}

var outputStartRe = regexp.MustCompile(`msg="audio output starting" .*local_us=(\d+)`)

// outputStarts returns when (by the machine's clock, which every process
// here shares) the terminal started its audio output for the n-th time, as
// its log says.
func outputStarts(t *testing.T, ft *fieldTerminal, n int) time.Time {
	t.Helper()
	var found []time.Time
	eventually(t, 5*time.Second, ft.name+" logging its audio start", func() bool {
		b, err := os.ReadFile(ft.proc.log)
		if err != nil {
			t.Fatal(err)
		}
		found = found[:0]
		for _, m := range outputStartRe.FindAllSubmatch(b, -1) {
			var us int64
			fmt.Sscan(string(m[1]), &us)
			found = append(found, time.UnixMicro(us))
		}
		return len(found) >= n
	})
	return found[n-1]
}
