package console_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dalaba/audio"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// speakBrowser is browser() with a fake microphone that plays wav and
// permission to use it granted.
func speakBrowser(t *testing.T, path, wav string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-features", "Translate,MediaRouter"),
		chromedp.Flag("lang", "zh-CN"), chromedp.Flag("accept-lang", "zh-CN,zh"),
		chromedp.Flag("use-fake-device-for-media-stream", true), chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("use-file-for-fake-audio-capture", wav), chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc)
	if err := chromedp.Do(ctx); err != nil {
		cancel()
		cancelAlloc()
		t.Fatalf("start %s: %v", path, err)
	}
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	return ctx
}

// TestSpeakPage: a village cadre opens 喊话, picks their village, talks
// (the fake microphone plays a tone) in tap mode and then by pressing and
// holding; each time the page shows the level and the time on air, the
// controller relays the microphone's frames to the village's two
// terminals, which report done, and the session is audited.
func TestSpeakPage(t *testing.T) {
	chrome := chromium(t)
	r := startRig(t)
	shots := artifacts(t)
	mic := filepath.Join(t.TempDir(), "mic.wav")
	if err := os.WriteFile(mic, audio.ToneWAV(1000, 3*time.Second, 48000, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}
	b := speakBrowser(t, chrome, mic)
	wang := openPage(t, b, "wang", shots)
	wang.signIn(r.base, "wang", password)
	wang.signedIn()
	wang.wait("the 喊话 menu item", `document.querySelector('#nav a[data-route=speak]').innerText === '喊话'`)
	wang.go_("#/speak")
	wang.wait("the speak page", `!!document.querySelector('#pick-area-`+villageA+`')`)
	if box := wang.eval(`String(!!document.querySelector('#pick-area-` + villageB + `:not([disabled])'))`); box != "false" {
		t.Fatal("a cadre of 大巷村 may pick 大将村 on the speak page")
	}
	wang.do("pick 大巷村", chromedp.Click(chromedp.ID("pick-area-"+villageA)))

	// Tap mode, as on a phone.
	wang.do("tap mode", chromedp.Click(chromedp.ID("speak-toggle")))
	wang.do("tap to talk", chromedp.Click(chromedp.ID("speak-button")))
	wang.wait("on air", `document.querySelector('#speak-status').innerText.includes('正在喊话：2/2')`)
	wang.wait("the microphone's level", `document.querySelector('#speak-level').value > 0.1`)
	wang.wait("a second on air", `document.querySelector('#speak-elapsed').innerText >= '00:01'`)
	wang.shot("speak-on-air")
	wang.do("tap to stop", chromedp.Click(chromedp.ID("speak-button")))
	wang.wait("the end", `document.querySelector('#speak-status').innerText.includes('喊话已结束（正常结束）')`)
	first := r.lastLive(t, "wang", 40)

	// Press and hold.
	wang.do("tap mode off", chromedp.Click(chromedp.ID("speak-toggle")))
	wang.do("press", chromedp.Evaluate[chromedp.Void](`document.querySelector('#speak-button').dispatchEvent(new PointerEvent('pointerdown', {bubbles: true, pointerId: 1}))`))
	wang.wait("on air again", `document.querySelector('#speak-button').getAttribute('aria-pressed') === 'true' && document.querySelector('#speak-status').innerText.includes('正在喊话')`)
	time.Sleep(time.Second) // talking
	wang.do("release", chromedp.Evaluate[chromedp.Void](`document.querySelector('#speak-button').dispatchEvent(new PointerEvent('pointerup', {bubbles: true, pointerId: 1}))`))
	wang.wait("the second end", `document.querySelector('#speak-status').innerText.includes('喊话已结束')`)
	if second := r.lastLive(t, "wang", 25); second == first {
		t.Fatal("press and hold did not start a second session")
	}
	wang.phone(true)
	wang.shot("speak-phone")
}

var framesRe = regexp.MustCompile(`msg="live speech ended" (?:component=controller )?alert=(\d{35}) by=(\S+) reason=end \S+ frames=(\d+)`)

// lastLive waits for who's latest live session to be relayed with at least
// minFrames frames and done on both terminals of 大巷村, and returns its id.
func (r *rig) lastLive(t *testing.T, who string, minFrames int) string {
	t.Helper()
	var id string
	waitUntil(t, "the live session relayed and done on two terminals", func() bool {
		ms := framesRe.FindAllStringSubmatch(r.logs.String(), -1)
		if len(ms) == 0 || ms[len(ms)-1][2] != who {
			return false
		}
		m := ms[len(ms)-1]
		if n, _ := strconv.Atoi(m[3]); n < minFrames {
			t.Fatalf("live session %s relayed %s frames, want at least %d", m[1], m[3], minFrames)
		}
		id = m[1]
		ds, err := r.ctrl.Store().Deliveries(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		done := 0
		for _, d := range ds {
			if d.State == protocol.DeliveryDone {
				done++
			}
		}
		return len(ds) == 2 && done == 2
	})
	es, err := r.ctrl.Store().Audit(context.Background(), store.AuditFilter{Actor: who, Target: id})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]bool{}
	for _, e := range es {
		actions[e.Action] = true
	}
	if !actions["live.start"] || !actions["live.end"] {
		t.Fatalf("live session %s audited as %v, want live.start and live.end", id, actions)
	}
	return id
}

// TestComposeByText: a village cadre types a notice instead of uploading a
// recording; espeak-ng speaks it and lame encodes it (MP3), the preview
// plays it before sending, and the notice goes to the village's two
// terminals, which report done.
func TestComposeByText(t *testing.T) {
	chrome := chromium(t)
	for _, p := range []string{"espeak-ng", "lame"} {
		if _, err := exec.LookPath(p); err != nil {
			missing(t, p)
		}
	}
	r := startRig(t)
	shots := artifacts(t)
	wang := openPage(t, browser(t, chrome), "wang", shots)
	wang.signIn(r.base, "wang", password)
	wang.signedIn()
	wang.go_("#/compose")
	wang.wait("the compose form", `!!document.querySelector('#tts-make')`)
	wang.do("make speech of nothing", chromedp.Click(chromedp.ID("tts-make")))
	wang.wait("the empty-text hint", `document.querySelector('#tts-status').innerText.includes('请先输入要朗读的文字')`)
	wang.do("type the notice",
		chromedp.SendKeys(chromedp.ID("f-title"), "停水通知"),
		chromedp.SendKeys(chromedp.ID("f-tts-text"), "各位村民请注意，明天上午八点到十二点停水。"),
		chromedp.Click(chromedp.ID("tts-make")))
	wang.wait("the speech", `document.querySelector('#tts-status').innerText.includes('语音已生成')`)
	if d := wang.eval(`new Promise((ok) => { const a = document.querySelector('#tts-preview'); const f = () => ok(String(a.duration)); if (a.readyState >= 1) f(); else a.addEventListener('loadedmetadata', f); })`); d == "" || d == "NaN" || d == "0" {
		t.Fatalf("preview of the speech: duration %q", d)
	}
	wang.shot("compose-by-text")
	wang.do("pick 大巷村 and send", chromedp.Click(chromedp.ID("pick-area-"+villageA)), chromedp.Click(chromedp.ID("compose-submit")))
	wang.wait("the delivery page", `location.hash.startsWith('#/alerts/')`)
	id := strings.TrimPrefix(wang.eval(`location.hash`), "#/alerts/")
	waitUntil(t, "the notice done on both terminals", func() bool {
		ds, err := r.ctrl.Store().Deliveries(context.Background(), id)
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, d := range ds {
			if d.State == protocol.DeliveryDone {
				n++
			}
		}
		return len(ds) == 2 && n == 2
	})
}
