package console_test

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dalaba/audio"
	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/terminal"
)

// The county of these tests: two townships, three villages. 大巷村 has two
// terminals (so it counts for coverage), 大将村 one, 江口村 none.
const (
	county   = "450224000000"
	townA    = "450224100000"
	villageA = "450224100201"
	townB    = "450224104000"
	villageB = "450224104201"
	villageC = "450224104202"
	password = "Rongan-2026-fangxun" // meets the rules, holds no user's name
	stepWait = 15 * time.Second
)

// rig is a real controller (SQLite, HTTP, WebSocket on 127.0.0.1) with
// three real terminal daemons (simulated relay board, silent audio) and the
// demo's operators.
type rig struct {
	ctrl    *controller.Controller
	base    string
	logs    *syncBuffer
	oneTime string // zhang's one-time password: the console must make him change it
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func startRig(t *testing.T) *rig {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	res, err := controller.Init(ctx, controller.InitOptions{DataDir: filepath.Join(dir, "controller"), CountyCode: county,
		CountyName: "融安县", Listen: "127.0.0.1:0"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := controller.LoadConfig(res.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("--- controller and terminal logs ---\n%s", logs.String())
		}
	})
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelInfo}))
	ctrl, err := controller.New(cfg, log.With("component", "controller"))
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range []store.Area{
		{Code: townA, Name: "长安镇", Parent: county},
		{Code: villageA, Name: "大巷村", Parent: townA},
		{Code: townB, Name: "大将镇", Parent: county},
		{Code: villageB, Name: "大将村", Parent: townB},
		{Code: villageC, Name: "江口村", Parent: townB},
	} {
		if err := ctrl.Store().PutArea(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	runCtx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		if err := ctrl.Run(runCtx); err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
	actx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	addr, err := ctrl.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	r := &rig{ctrl: ctrl, base: "http://" + addr.String(), logs: logs}
	for i, tm := range []struct {
		area, name string
		lat, lon   float64
	}{
		{villageA, "大巷村1号", 25.2241, 109.3962},
		{villageA, "大巷村2号", 25.2188, 109.4035},
		{villageB, "大将村1号", 25.1517, 109.3311},
	} {
		res, err := ctrl.Enroll(ctx, "test", controller.EnrollRequest{AreaCode: tm.area, Name: tm.name, Latitude: &tm.lat, Longitude: &tm.lon})
		if err != nil {
			t.Fatal(err)
		}
		tc := terminal.DefaultConfig()
		tc.Controllers = []string{"ws://" + addr.String() + "/v1/terminal"}
		tc.DataDir = filepath.Join(dir, fmt.Sprintf("terminal-%d", i))
		tc.EnrollToken = res.EnrollToken
		tc.Name = tm.name
		tc.Relay.Protocol = "sim"
		tc.Audio.Output = "silent"
		tc.Audio.Rate = 8000
		tc.WarmupMS, tc.TailMS = 20, 20
		tc.HeartbeatSeconds = 5
		if err := tc.Validate(); err != nil {
			t.Fatal(err)
		}
		term := terminal.New(tc, log.With("component", "terminal", "name", tm.name))
		wg.Go(func() {
			if err := term.Run(runCtx); err != nil {
				t.Errorf("terminal %s: %v", tm.name, err)
			}
		})
	}
	waitUntil(t, "three terminals online", func() bool {
		ts, err := ctrl.Store().Terminals(ctx, "")
		if err != nil {
			t.Fatal(err)
		}
		n := 0
		for _, x := range ts {
			if x.State != "offline" && x.Volume != nil {
				n++
			}
		}
		return n == 3
	})
	// The demo's people. zhang keeps his one-time password.
	for _, p := range []struct {
		name  string
		roles []string
		areas []string
	}{
		{"zhang", []string{"officer"}, []string{county}},
		{"li", []string{"approver"}, []string{county}},
		{"wang", []string{"cadre"}, []string{villageA}},
		{"chen", []string{"technician"}, []string{county}},
		{"zhao", []string{"admin"}, []string{county}},
	} {
		nu, err := ctrl.CreateUser(ctx, controller.UserRequest{Name: p.name, Roles: p.roles, Areas: p.areas})
		if err != nil {
			t.Fatal(err)
		}
		if p.name == "zhang" {
			r.oneTime = nu.Password
			continue
		}
		if err := ctrl.SetUserPassword(ctx, p.name, password); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(stepWait)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// chromium finds Debian's Chromium. In CI a missing browser fails the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			if _, err := os.Stat("/usr/share/fonts/truetype/wqy/wqy-microhei.ttc"); err != nil {
				missing(t, "fonts-wqy-microhei (Chinese would render as boxes)")
			}
			return p
		}
	}
	missing(t, "chromium")
	return ""
}

func missing(t *testing.T, what string) {
	t.Helper()
	msg := what + " is not installed; run scripts/test-deps.sh (apt-get install chromium fonts-wqy-microhei)"
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// browser starts one headless Chromium for the test, with the flags that
// work as root on the project's machines.
func browser(t *testing.T, path string) context.Context {
	t.Helper()
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path), chromedp.Headless, chromedp.NoSandbox, chromedp.DisableGPU, chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck, chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1366, 900),
		chromedp.Flag("disable-quic", true), chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true), chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("disable-features", "Translate,MediaRouter"),
		chromedp.Flag("lang", "zh-CN"), chromedp.Flag("accept-lang", "zh-CN,zh"),
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

// page is one operator's tab in a browser context of its own (own cookies).
type page struct {
	t      *testing.T
	ctx    context.Context
	who    string
	shots  string
	mu     sync.Mutex
	errors []string // uncaught exceptions in the page
}

func openPage(t *testing.T, b context.Context, who, shots string) *page {
	t.Helper()
	ctx, cancel := chromedp.NewContext(b, chromedp.WithNewBrowserContext())
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1366, 900)); err != nil {
		t.Fatalf("open a tab for %s: %v", who, err)
	}
	p := &page{t: t, ctx: ctx, who: who, shots: shots}
	msgs := chromedp.Console(ctx)
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			if m.IsException() {
				p.mu.Lock()
				p.errors = append(p.errors, m.String())
				p.mu.Unlock()
			}
		}
	}()
	t.Cleanup(func() {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, e := range p.errors {
			t.Errorf("%s's page threw: %s", who, e)
		}
	})
	return p
}

// do runs browser steps with a time limit, failing the test with what was
// being done and a screenshot of the page.
func (p *page) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		p.shot("failed-" + strings.ReplaceAll(what, " ", "-"))
		body, _ := chromedp.Run(p.ctx, chromedp.Evaluate[string](`document.body.innerText`))
		p.t.Fatalf("%s: %s: %v\npage text:\n%s", p.who, what, err, body)
	}
}

// wait polls a JavaScript condition until it holds.
func (p *page) wait(what, cond string) {
	p.t.Helper()
	// An element the condition reads may not be drawn yet: that is "not yet".
	cond = "(() => { try { return !!(" + cond + "); } catch (e) { return false; } })()"
	p.do("wait for "+what, chromedp.Poll[chromedp.Void](cond, chromedp.WithPollingTimeout(stepWait-time.Second),
		chromedp.WithPollingInterval(50*time.Millisecond)))
}

func (p *page) eval(expr string) string {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		p.t.Fatalf("%s: evaluate %s: %v", p.who, expr, err)
	}
	return v
}

func (p *page) text(sel string) string {
	p.t.Helper()
	return p.eval(fmt.Sprintf(`(document.querySelector(%q) || {}).innerText || ""`, sel))
}

func (p *page) go_(route string) {
	p.t.Helper()
	p.do("open "+route, chromedp.Evaluate[chromedp.Void](fmt.Sprintf(`location.hash = %q`, route)))
}

// shot saves a screenshot of the viewport as NAME.png.
func (p *page) shot(name string) {
	p.t.Helper()
	ctx, cancel := context.WithTimeout(p.ctx, stepWait)
	defer cancel()
	// Let fonts and the last live update settle.
	chromedp.Do(ctx, chromedp.Evaluate[chromedp.Void](`document.fonts.ready.then(() => new Promise((r) => setTimeout(r, 100)))`, chromedp.EvalAwaitPromise))
	png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		p.t.Logf("screenshot %s: %v", name, err)
		return
	}
	if err := os.WriteFile(filepath.Join(p.shots, name+".png"), png, 0o644); err != nil {
		p.t.Fatal(err)
	}
}

// phone switches the tab to a phone's screen (390×844) and back.
func (p *page) phone(on bool) {
	p.t.Helper()
	if on {
		p.do("phone screen", chromedp.EmulateViewport(390, 844, chromedp.EmulatePortrait, chromedp.EmulateMobile, chromedp.EmulateTouch))
	} else {
		p.do("desktop screen", chromedp.EmulateViewport(1366, 900))
	}
}

func (p *page) signIn(base, name, pw string) {
	p.t.Helper()
	p.do("sign in as "+name,
		chromedp.Navigate(base+"/"),
		chromedp.WaitVisible(chromedp.ID("name")),
		chromedp.SendKeys(chromedp.ID("name"), name),
		chromedp.SendKeys(chromedp.ID("password"), pw),
		chromedp.Click(chromedp.ID("signin-submit")),
	)
}

func (p *page) signedIn() {
	p.t.Helper()
	p.wait("the overview", `!!document.querySelector('#c-terminals')`)
}

// artifacts is where screenshots go: $ARTIFACTS/console when set (CI keeps
// it), else a temporary folder that the log names.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if a := os.Getenv("ARTIFACTS"); a != "" {
		dir = filepath.Join(a, "console")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// TestConsole is issue 6's browser test: an officer (changing a one-time
// password first) composes an alert to one village with an uploaded WAV
// after a bad file is refused in Chinese, an approver approves it in another
// browser context, and the officer's delivery view reaches 完成 for each of
// the village's terminals without a reload. A village cadre sees and may
// target only their village; a technician sets a volume; the admin sees the
// audit log verify. Screenshots of each page at desktop and phone width.
func TestConsole(t *testing.T) {
	chrome := chromium(t)
	start := time.Now()
	r := startRig(t)
	shots := artifacts(t)
	b := browser(t, chrome)
	dir := t.TempDir()
	badFile, heavyFile, goodFile := filepath.Join(dir, "录音.wav"), filepath.Join(dir, "手机录音.wav"), filepath.Join(dir, "防汛通知.wav")
	if err := os.WriteFile(badFile, []byte("这不是音频 — not audio at all"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(heavyFile, audio.ToneWAV(880, time.Second, 48000, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(goodFile, audio.ToneWAV(880, time.Second, 8000, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}

	// The officer signs in with his one-time password and must change it.
	zhang := openPage(t, b, "zhang", shots)
	zhang.do("open the console", chromedp.Navigate(r.base+"/"), chromedp.WaitVisible(chromedp.ID("name")))
	zhang.shot("signin-desktop")
	zhang.signIn(r.base, "zhang", r.oneTime)
	zhang.do("see the forced change", chromedp.WaitVisible(chromedp.ID("new-password")))
	zhang.do("choose a password",
		chromedp.SendKeys(chromedp.ID("new-password"), password),
		chromedp.SendKeys(chromedp.ID("new-password2"), password),
		chromedp.Click(chromedp.ID("signin-submit")))
	zhang.signedIn()
	zhang.wait("live stream", `document.querySelector('#live').classList.contains('on')`)
	zhang.wait("three terminals counted", `document.querySelector('#c-terminals .n').textContent === '3'`)
	if got := zhang.text("#c-online .n"); got != "3" {
		t.Errorf("overview online = %q, want 3", got)
	}
	// 大巷村 has two working terminals, 大将村 one, 江口村 none: 1 of 3.
	if got := zhang.text("#c-coverage .n"); got != "33.3%" {
		t.Errorf("coverage = %q, want 33.3%%", got)
	}
	if got := zhang.text("#townships"); !strings.Contains(got, "长安镇") || !strings.Contains(got, "大将镇") || !strings.Contains(got, "100.0%") {
		t.Errorf("township table lacks a township or 长安镇's 100%% coverage:\n%s", got)
	}
	if got := zhang.text("#nav"); !strings.Contains(got, "概览") || !strings.Contains(got, "发布") || strings.Contains(got, "审批") || strings.Contains(got, "审计") {
		t.Errorf("officer's menu %q: want 概览 and 发布, not 审批 or 审计", got)
	}
	zhang.shot("overview-desktop")
	zhang.go_("#/areas")
	zhang.wait("the tree and the map", `document.querySelectorAll('#area-map circle').length === 3 && !!document.querySelector('#area-tree')`)
	zhang.shot("areas-desktop")

	// Compose: nothing filled in gives Chinese errors beside the fields.
	zhang.go_("#/compose")
	zhang.wait("the compose form", `!!document.querySelector('#pick-area-`+villageA+`')`)
	zhang.do("submit an empty form", chromedp.Click(chromedp.ID("compose-submit")))
	zhang.wait("client-side errors", `!document.querySelector('#compose-errors').classList.contains('hidden')`)
	if got := zhang.text("#compose-errors"); !strings.Contains(got, "标题") || !strings.Contains(got, "请填写标题") || !strings.Contains(got, "请先上传音频文件") {
		t.Errorf("empty form errors %q: want 标题 and 请先上传音频文件", got)
	}
	// A file that is not audio is refused, in Chinese.
	zhang.do("upload a bad file", chromedp.SetUploadFiles(chromedp.ID("f-audio"), []string{badFile}))
	zhang.wait("the bad audio error", `document.querySelector('#e-audio').textContent.includes('音频文件无法使用')`)
	if got := zhang.text("#e-audio"); !strings.Contains(got, "音频文件无法使用") {
		t.Errorf("bad audio error %q: want 音频文件无法使用", got)
	}
	zhang.shot("compose-bad-audio-desktop")
	// A 48 kHz WAV (768 kbit/s) is taken, with a note that it is heavy for
	// a fan-out; the 8 kHz one (128 kbit/s) is not flagged.
	zhang.do("upload a heavy recording", chromedp.SetUploadFiles(chromedp.ID("f-audio"), []string{heavyFile}))
	zhang.wait("the heavy upload", `document.querySelector('#audio-status').textContent.includes('已上传：手机录音')`)
	if got := zhang.text("#audio-status"); !strings.Contains(got, "码率 768 kbit/s") || !strings.Contains(got, "MP3") {
		t.Errorf("status after a 768 kbit/s WAV %q: want the bitrate named and MP3 suggested", got)
	}
	zhang.do("upload the recording", chromedp.SetUploadFiles(chromedp.ID("f-audio"), []string{goodFile}))
	zhang.wait("the upload", `document.querySelector('#audio-status').textContent.includes('已上传：防汛通知') && !document.querySelector('#audio-preview').classList.contains('hidden')`)
	if got := zhang.text("#audio-status"); !strings.Contains(got, "已上传") || strings.Contains(got, "码率") {
		t.Errorf("status after a 128 kbit/s WAV %q: want it uploaded, not flagged", got)
	}
	if got := zhang.text("#e-audio"); got != "" && !strings.Contains(zhang.eval(`document.querySelector('#e-audio').className`), "hidden") {
		t.Errorf("audio error still shown after a good upload: %q", got)
	}
	// The preview player can play the file before it is sent.
	if d := zhang.eval(`new Promise((ok) => { const a = document.querySelector('#audio-preview'); const f = () => ok(String(a.duration)); if (a.readyState >= 1) f(); else a.addEventListener('loadedmetadata', f); })`); !strings.HasPrefix(d, "1") {
		t.Errorf("preview player duration %q, want about 1 s", d)
	}
	// A village without terminals: the server names the targets field.
	zhang.do("fill in the alert",
		chromedp.SetValue(chromedp.ID("f-title"), "防汛Ⅲ级预警：请大巷村低洼地区群众立即转移"),
		chromedp.Click(chromedp.ID("level-3")),
		chromedp.Click(chromedp.ID("pick-area-"+villageC)),
		chromedp.Click(chromedp.ID("compose-submit")))
	zhang.wait("the server's field error", `!document.querySelector('#e-targets').classList.contains('hidden')`)
	if got := zhang.text("#e-targets"); !strings.Contains(got, "所选范围内没有已登记的终端") {
		t.Errorf("targets error %q: want 所选范围内没有已登记的终端", got)
	}
	zhang.do("choose 大巷村 instead",
		chromedp.Click(chromedp.ID("pick-area-"+villageC)),
		chromedp.Click(chromedp.ID("pick-area-"+villageA)))
	zhang.shot("compose-desktop")
	zhang.phone(true)
	zhang.shot("compose-phone")
	zhang.phone(false)
	zhang.do("send for approval", chromedp.Click(chromedp.ID("compose-submit")))
	zhang.wait("the delivery view, pending", `document.querySelector('#alert-status')?.dataset.status === 'pending'`)
	alertID := strings.TrimPrefix(zhang.eval(`location.hash`), "#/alerts/")
	if len(alertID) != 35 {
		t.Fatalf("delivery view of %q, want an EBM id", alertID)
	}
	zhang.eval(`String(window.noReload = 'still here')`)

	// The approver, in a browser context of his own, approves it.
	li := openPage(t, b, "li", shots)
	li.signIn(r.base, "li", password)
	li.signedIn()
	li.wait("the approvals badge", `document.querySelector('#approvals-count')?.textContent === '1'`)
	li.go_("#/approvals")
	li.wait("the pending alert", `!!document.querySelector('#approve-`+alertID+`')`)
	if got := li.text("#approval-list"); !strings.Contains(got, "大巷村") || !strings.Contains(got, "zhang") || !strings.Contains(got, "Ⅲ级 较大") {
		t.Errorf("approval card %q: want the village, the author and the level", got)
	}
	li.shot("approvals-desktop")
	li.phone(true)
	li.shot("approvals-phone")
	li.phone(false)
	li.do("approve",
		chromedp.SetValue(chromedp.ID("comment-"+alertID), "核实无误，同意播发"),
		chromedp.Click(chromedp.ID("approve-"+alertID)))
	li.wait("the queue to empty", `!document.querySelector('#approve-`+alertID+`')`)

	// The officer's page, never reloaded, shows both terminals done.
	zhang.wait("every terminal of 大巷村 done", `(() => {
		const p = document.querySelector('#progress-text');
		const rows = document.querySelectorAll('#deliveries tbody tr');
		return p && p.dataset.done === '2' && p.dataset.total === '2' && rows.length === 2 &&
			[...rows].every((r) => r.dataset.state === 'done' && r.innerText.includes('完成'));
	})()`)
	if got := zhang.eval(`String(window.noReload)`); got != "still here" {
		t.Errorf("the delivery view reloaded (marker %q): it must update live", got)
	}
	if got := zhang.text("#alert-status"); !strings.Contains(got, "生效中") {
		t.Errorf("alert status %q, want 生效中", got)
	}
	if got := zhang.text("#deliveries"); !strings.Contains(got, "大巷村1号") || !strings.Contains(got, "大巷村2号") || strings.Contains(got, "大将村") {
		t.Errorf("deliveries %q: want 大巷村's two terminals only", got)
	}
	zhang.shot("delivery-done-desktop")
	zhang.phone(true)
	zhang.shot("delivery-done-phone")
	zhang.phone(false)
	// Cancelling asks first; the alert then shows 已取消.
	zhang.eval(`String(window.confirm = () => true)`)
	zhang.do("cancel the alert", chromedp.SendKeys(chromedp.ID("cancel-reason"), "演示结束"), chromedp.Click(chromedp.ID("cancel-alert")))
	zhang.wait("the alert cancelled", `document.querySelector('#alert-status').dataset.status === 'cancelled' && !document.querySelector('#cancel-alert')`)
	zhang.go_("#/history")
	zhang.wait("the history", `!!document.querySelector('#history-table tr[data-alert="`+alertID+`"]')`)
	zhang.do("search", chromedp.SendKeys(chromedp.ID("history-search"), "大将"))
	zhang.wait("no match", `document.querySelectorAll('#history-table tr[data-alert]').length === 0`)
	zhang.eval(`(() => { const q = document.querySelector('#history-search'); q.value = ''; return ''; })()`)
	zhang.do("search again", chromedp.SendKeys(chromedp.ID("history-search"), "防汛"))
	zhang.wait("the match", `document.querySelectorAll('#history-table tr[data-alert]').length === 1`)
	zhang.shot("history-desktop")

	// The cadre of 大巷村 sees and may target only 大巷村.
	wang := openPage(t, b, "wang", shots)
	wang.phone(true)
	wang.signIn(r.base, "wang", password)
	wang.signedIn()
	wang.wait("two terminals", `document.querySelector('#c-terminals .n').textContent === '2'`)
	if got := wang.text("main"); strings.Contains(got, "大将") {
		t.Errorf("cadre's overview shows the other township:\n%s", got)
	}
	wang.shot("overview-cadre-phone")
	wang.go_("#/areas")
	wang.wait("the tree", `!!document.querySelector('#area-tree')`)
	if got := wang.text("#area-tree"); !strings.Contains(got, "大巷村1号") || strings.Contains(got, "大将") || strings.Contains(got, "江口") {
		t.Errorf("cadre's tree %q: want 大巷村's terminals only", got)
	}
	wang.go_("#/terminals")
	wang.wait("the terminal list", `document.querySelectorAll('#terminal-list tr[data-terminal]').length > 0`)
	if n := wang.eval(`String(document.querySelectorAll('#terminal-list tr[data-terminal]').length)`); n != "2" {
		t.Errorf("cadre's terminal list has %s rows, want 2", n)
	}
	wang.go_("#/compose")
	wang.wait("the compose form", `!!document.querySelector('#pick-area-`+villageA+`')`)
	if got := wang.eval(`[!!document.querySelector('#pick-area-` + villageB + `'), !!document.querySelector('input[name=class][value=emergency]'),
		document.querySelector('#pick-area-` + county + `').disabled].join()`); got != "false,false,true" {
		t.Errorf("cadre's compose (other village pickable, emergency offered, county pickable disabled) = %s, want false,false,true", got)
	}
	wang.shot("compose-cadre-phone")
	// A request crafted in the cadre's page for the other village is refused.
	crafted := wang.eval(`(async () => {
		const me = await (await fetch('/api/v1/console')).json();
		const media = await (await fetch('/api/v1/media')).json();
		const r = await fetch('/api/v1/alerts', {method: 'POST', headers: {'Content-Type': 'application/json', 'X-CSRF-Token': me.csrf_token},
			body: JSON.stringify({class: 'daily', title: '越权', areas: ['` + villageB + `'], media: [media[0].sha256], valid_minutes: 10})});
		return r.status + ' ' + (await r.text());
	})()`)
	if !strings.HasPrefix(crafted, "403 ") {
		t.Errorf("crafted alert to another village answered %s, want 403", crafted)
	}

	// The technician sets a terminal's volume.
	chen := openPage(t, b, "chen", shots)
	chen.signIn(r.base, "chen", password)
	chen.signedIn()
	chen.go_("#/terminals")
	chen.wait("the list", `document.querySelectorAll('#terminal-list tr[data-terminal]').length === 3`)
	if got := chen.text("#nav"); strings.Contains(got, "发布") || strings.Contains(got, "审批") {
		t.Errorf("technician's menu %q offers composing or approving", got)
	}
	chen.do("enroll a terminal", chromedp.SendKeys(chromedp.ID("enroll-name"), "大巷村3号"),
		chromedp.SendKeys(chromedp.ID("enroll-lat"), "25.2201"), chromedp.SendKeys(chromedp.ID("enroll-lon"), "109.3990"),
		chromedp.Click(chromedp.ID("enroll-submit")))
	chen.wait("the one-time token", `/^[A-Za-z0-9_-]{43}\.[0-9a-f]{32}$/.test(document.querySelector('#enroll-token').textContent.trim())`)
	chen.wait("the new terminal listed", `document.querySelector('#terminal-list').textContent.includes('大巷村3号') && document.querySelector('#terminal-list').textContent.includes('待接入')`)
	chen.shot("terminals-desktop")
	chen.do("open 大巷村1号", chromedp.Click(chromedp.CSS(`#terminal-list tr[data-terminal] a`)))
	chen.wait("the detail", `!!document.querySelector('#set-volume')`)
	// The heartbeat history is drawn from the stored heartbeats.
	chen.wait("the heartbeat chart", `document.querySelectorAll('#heartbeat-chart rect[data-state="idle"]').length > 0 && !!document.querySelector('#heartbeat-chart path.hb-volume')`)
	if got := chen.text("#heartbeat-summary"); !strings.Contains(got, "在线 100.0%，离线 0 次") {
		t.Errorf("heartbeat summary %q: want 在线 100.0%%，离线 0 次", got)
	}
	chen.do("set volume 70", chromedp.SetValue(chromedp.ID("volume-range"), "70"), chromedp.Click(chromedp.ID("set-volume")))
	chen.wait("the volume sent", `document.querySelector('#terminal-msg').textContent.includes('70')`)
	chen.wait("the heartbeat with volume 70", `document.querySelector('#terminal-volume').textContent === '70'`)
	chen.shot("terminal-desktop")
	chen.eval(`String(document.querySelector('#h-beats').scrollIntoView())`)
	chen.shot("terminal-history-desktop")
	chen.phone(true)
	chen.shot("terminal-phone")
	chen.eval(`String(document.querySelector('#h-beats').scrollIntoView())`)
	chen.shot("terminal-history-phone")
	chen.phone(false)
	// The test tone: a signed alert to this one terminal, played at once.
	chen.do("play the test tone", chromedp.Click(chromedp.ID("test-tone")))
	chen.wait("the test tone played", `(() => {
		const rows = document.querySelectorAll('#deliveries tbody tr');
		return rows.length === 1 && rows[0].dataset.state === 'done' && rows[0].innerText.includes('大巷村1号');
	})()`)
	if got := chen.text("main"); !strings.Contains(got, "测试音") {
		t.Errorf("test tone delivery view %q: want 测试音", got)
	}
	chen.shot("test-tone-desktop")

	// The admin sees the audit log verify.
	zhao := openPage(t, b, "zhao", shots)
	zhao.signIn(r.base, "zhao", password)
	zhao.signedIn()
	zhao.go_("#/audit")
	zhao.wait("the verdict", `document.querySelector('#audit-verify').textContent.includes('审计日志完整')`)
	if got := zhao.text("#audit-table"); !strings.Contains(got, "alert.approve") || !strings.Contains(got, "li") {
		t.Errorf("audit table lacks li's approval:\n%s", got)
	}
	zhao.shot("audit-desktop")
	// English on request.
	zhao.do("switch to English", chromedp.Click(chromedp.ID("lang")))
	zhao.wait("English", `document.documentElement.lang === 'en' && document.querySelector('#nav').textContent.includes('Audit')`)
	zhao.go_("#/overview")
	zhao.signedIn()
	zhao.shot("overview-en-desktop")

	// Sign-out ends the session: the API refuses the old cookie.
	zhang.do("sign out", chromedp.Click(chromedp.ID("signout")))
	zhang.wait("the sign-in form", `!!document.querySelector('#name')`)
	if got := zhang.eval(`fetch('/api/v1/me').then((r) => String(r.status))`); got != "401" {
		t.Errorf("after sign-out /api/v1/me answered %s, want 401", got)
	}
	t.Logf("browser test took %s", time.Since(start).Round(time.Millisecond))
}
