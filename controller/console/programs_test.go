package console_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"dalaba/audio"
)

// TestConsolePrograms is issue 4's console page: a village cadre creates a
// daily program for their village in the console, with a recording uploaded
// in the form, and sees its next occurrences; an empty form and a bad time
// give Chinese errors beside the fields; the cadre changes it to chosen
// weekdays with an exception; a one-off program for the coming minute is
// played by both real terminals of the village and the "what happened"
// table says 已播出 for each, without a reload. Screenshots at desktop and
// phone width.
func TestConsolePrograms(t *testing.T) {
	chrome := chromium(t)
	r := startRig(t)
	shots := artifacts(t)
	b := browser(t, chrome)
	wav := filepath.Join(t.TempDir(), "早间新闻.wav")
	if err := os.WriteFile(wav, audio.ToneWAV(660, time.Second, 8000, 0.5), 0o644); err != nil {
		t.Fatal(err)
	}

	wang := openPage(t, b, "wang", shots)
	wang.signIn(r.base, "wang", password)
	wang.signedIn()
	wang.go_("#/programs")
	wang.wait("the empty list", `document.querySelector('main').textContent.includes('还没有定时节目')`)
	wang.do("open the form", chromedp.Click(chromedp.ID("program-new")))
	wang.wait("the form", `!!document.querySelector('#pick-area-`+villageA+`')`)
	if got := wang.eval(`String(!!document.querySelector('#pick-area-` + villageB + `'))`); got != "false" {
		t.Errorf("cadre's program form offers another village")
	}
	// Nothing filled in: errors in Chinese beside the fields.
	wang.do("clear the times and submit", chromedp.SetValue(chromedp.ID("f-times"), "7点"), chromedp.Click(chromedp.ID("program-submit")))
	wang.wait("the errors", `!document.querySelector('#program-errors').classList.contains('hidden')`)
	if got := wang.text("#program-errors"); !strings.Contains(got, "请填写标题") || !strings.Contains(got, "请至少选择一个音频") ||
		!strings.Contains(got, "播出时刻") || !strings.Contains(got, "播发范围") {
		t.Errorf("empty program form errors %q: want title, playlist, times and targets", got)
	}
	if got := wang.text("#e-times"); !strings.Contains(got, "07:00") {
		t.Errorf("times error %q: want the format 07:00", got)
	}
	wang.do("fill in a daily program",
		chromedp.SetValue(chromedp.ID("f-title"), "早间新闻转播"),
		chromedp.SetUploadFiles(chromedp.ID("f-upload"), []string{wav}))
	wang.wait("the upload in the playlist", `document.querySelector('#playlist').textContent.includes('早间新闻.wav')`)
	wang.do("choose 大巷村 at 07:00 and 18:30",
		chromedp.SetValue(chromedp.ID("f-times"), "07:00, 18:30"),
		chromedp.Click(chromedp.ID("pick-area-"+villageA)))
	wang.shot("program-form-desktop")
	wang.do("create", chromedp.Click(chromedp.ID("program-submit")))
	wang.wait("the program page with its next occurrences", `document.querySelectorAll('#program-next li').length === 10`)
	id := strings.TrimPrefix(wang.eval(`location.hash`), "#/programs/")
	if got := wang.text("#program-rule"); !strings.Contains(got, "每天 07:00、18:30") {
		t.Errorf("rule shown as %q, want 每天 07:00、18:30", got)
	}
	if got := wang.text("#program-next"); !strings.Contains(got, ":00:00") || !strings.Contains(got, ":30:00") {
		t.Errorf("next occurrences %q: want 07:00 and 18:30 times", got)
	}
	// The next day's occurrences are pending on both terminals of 大巷村.
	wang.wait("pending occurrences", `document.querySelectorAll('#occ-table tr[data-state="pending"]').length >= 2`)
	if got := wang.text("#occ-table"); !strings.Contains(got, "大巷村1号") || !strings.Contains(got, "大巷村2号") || !strings.Contains(got, "待播出") ||
		strings.Contains(got, "大将村") {
		t.Errorf("occurrence table %q: want 大巷村's terminals, 待播出", got)
	}
	ps, err := r.ctrl.Store().Programs(context.Background(), false)
	if err != nil || len(ps) != 1 || ps[0].ID != id || ps[0].CreatedBy != "wang" || len(ps[0].Targets.Areas) != 1 || ps[0].Targets.Areas[0] != villageA {
		t.Fatalf("stored programs %+v (%v): want wang's one program for 大巷村", ps, err)
	}
	wang.shot("program-desktop")
	wang.phone(true)
	wang.shot("program-phone")
	wang.phone(false)

	// Weekdays with an exception.
	wang.do("edit", chromedp.Click(chromedp.ID("program-edit")))
	wang.wait("the edit form", `document.querySelector('#f-title')?.value === '早间新闻转播'`)
	wang.do("choose Monday and Wednesday, except 2030-01-02",
		chromedp.SetValue(chromedp.ID("f-kind"), "weekly"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-kind').dispatchEvent(new Event('change'))`),
		chromedp.Click(chromedp.CSS(`input[name=weekday][value=mon]`)),
		chromedp.Click(chromedp.CSS(`input[name=weekday][value=wed]`)),
		chromedp.SetValue(chromedp.ID("f-except"), "2030-01-02"),
		chromedp.Click(chromedp.ID("program-submit")))
	wang.wait("the changed rule", `document.querySelector('#program-rule')?.textContent.includes('每周一、周三')`)
	if got := wang.text("#program-rule"); !strings.Contains(got, "2030-01-02 除外") {
		t.Errorf("rule %q: want the exception", got)
	}
	// The daily occurrences the new rule dropped: each terminal reported
	// them skipped, and the page says why in Chinese.
	wang.wait("the dropped occurrences", `[...document.querySelectorAll('#occ-table tr[data-state="skipped"]')].some((r) => r.textContent.includes('跳过：计划已更新'))`)
	wang.go_("#/programs")
	wang.wait("the list", `!!document.querySelector('#program-list tr[data-program="`+id+`"]')`)
	wang.shot("programs-desktop")
	wang.phone(true)
	wang.shot("programs-phone")
	wang.phone(false)

	// A one-off program for the coming minute: both terminals play it and
	// the page says so without a reload.
	at := time.Now().In(time.FixedZone("CST", 8*3600)).Truncate(time.Minute).Add(time.Minute)
	if time.Until(at) < 5*time.Second {
		at = at.Add(time.Minute)
	}
	wang.do("new program", chromedp.Click(chromedp.ID("program-new")))
	wang.wait("the form", `!!document.querySelector('#pick-area-`+villageA+`')`)
	wang.do("fill in a one-off program",
		chromedp.SetValue(chromedp.ID("f-title"), "村务通知"),
		chromedp.SetValue(chromedp.ID("f-kind"), "once"),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-kind').dispatchEvent(new Event('change'))`),
		chromedp.Evaluate[chromedp.Void](`(() => { const m = document.querySelector('#f-media'); m.value = '`+ps[0].Media[0]+`'; m.dispatchEvent(new Event('change')); })()`),
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#f-times').value = '`+at.Format("15:04")+`'; document.querySelector('#f-from').value = '`+at.Format("2006-01-02")+`'`),
		chromedp.Click(chromedp.ID("pick-area-"+villageA)),
		chromedp.Click(chromedp.ID("program-submit")))
	wang.wait("the one-off program", `document.querySelectorAll('#program-next li').length === 1`)
	wang.eval(`String(window.noReload = 'still here')`)
	deadline := time.Until(at) + stepWait
	ctx, cancel := context.WithTimeout(wang.ctx, deadline+5*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, chromedp.Poll[chromedp.Void](`document.querySelectorAll('#occ-table tr[data-state="played"]').length === 2`,
		chromedp.WithPollingTimeout(deadline), chromedp.WithPollingInterval(200*time.Millisecond))); err != nil {
		wang.shot("failed-program-played")
		t.Fatalf("both terminals of 大巷村 should have played the %s program: %v\n%s", at.Format("15:04"), err, wang.text("#occurrences"))
	}
	if got := wang.text("#occ-table"); !strings.Contains(got, "已播出") || !strings.Contains(got, "终端上报") {
		t.Errorf("played rows %q: want 已播出 and 终端上报", got)
	}
	if got := wang.eval(`String(window.noReload)`); got != "still here" {
		t.Errorf("the program page reloaded: it must update live")
	}
	wang.wait("no next occurrence left", `document.querySelector('#program-next').textContent.includes('没有将要播出的时间')`)
	wang.shot("program-played-desktop")
	wang.phone(true)
	wang.eval(`String(document.querySelector('#h-occ').scrollIntoView())`)
	wang.shot("program-played-phone")
}
