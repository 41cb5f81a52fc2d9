package console_test

import (
	"context"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
)

// TestConsoleAdmin drives the admin pages: the admin adds an officer for
// one village and sees the one-time password once (which then signs in and
// must be changed), disables and re-enables a cadre, resets a password,
// changes the approval policy, is refused retiring the active signing key
// with the reason shown, rotates the key and retires the old one once
// every terminal confirmed the new. Other roles have no admin page.
func TestConsoleAdmin(t *testing.T) {
	chrome := chromium(t)
	r := startRig(t)
	shots := artifacts(t)
	b := browser(t, chrome)
	ctx := context.Background()

	zhao := openPage(t, b, "zhao", shots)
	zhao.signIn(r.base, "zhao", password)
	zhao.signedIn()
	zhao.eval(`String(window.confirm = () => true)`)
	zhao.go_("#/admin")
	zhao.wait("the user list", `document.querySelectorAll('#user-list tr[data-user]').length === 6`)

	// A client-side check first, then a new officer for 大将村.
	zhao.do("add a user without roles", chromedp.SendKeys(chromedp.ID("user-name"), "liu"), chromedp.Click(chromedp.ID("user-submit")))
	zhao.wait("the errors", `document.querySelector('#users-msg').textContent.includes('请至少选择一个角色')`)
	zhao.do("add liu",
		chromedp.SendKeys(chromedp.ID("user-display"), "刘应急"),
		chromedp.Click(chromedp.ID("role-officer")),
		chromedp.Evaluate[chromedp.Void](`(() => { const s = document.querySelector('#user-areas'); for (const o of s.options) o.selected = o.value === '`+villageB+`'; })()`),
		chromedp.Click(chromedp.ID("user-submit")))
	zhao.wait("the one-time password", `!!document.querySelector('#one-time-password')`)
	oneTime := strings.TrimSpace(zhao.text("#one-time-password"))
	if !regexp.MustCompile(`^\S{8,}$`).MatchString(oneTime) {
		t.Fatalf("one-time password %q", oneTime)
	}
	zhao.wait("liu listed", `!!document.querySelector('#user-list tr[data-user="liu"]')`)
	liu, err := r.ctrl.Store().UserByName(ctx, "liu")
	if err != nil || !slices.Equal(liu.Roles, []string{"officer"}) || !slices.Equal(liu.Areas, []string{villageB}) || !liu.MustChange || liu.Display != "刘应急" {
		t.Fatalf("stored liu %+v, %v: want an officer of 大将村 who must change the password", liu, err)
	}
	zhao.shot("admin-new-user-desktop")
	liuPage := openPage(t, b, "liu", shots)
	liuPage.signIn(r.base, "liu", oneTime)
	liuPage.do("see the forced change", chromedp.WaitVisible(chromedp.ID("new-password")))

	// Disable and enable the cadre; reset the technician's password.
	zhao.do("disable wang", chromedp.Click(chromedp.ID("toggle-wang")))
	zhao.wait("wang disabled", `document.querySelector('#user-list tr[data-user="wang"]').textContent.includes('已停用')`)
	if u, _ := r.ctrl.Store().UserByName(ctx, "wang"); !u.Disabled {
		t.Errorf("wang is not disabled in the store")
	}
	zhao.do("enable wang", chromedp.Click(chromedp.ID("toggle-wang")))
	zhao.wait("wang enabled", `!document.querySelector('#user-list tr[data-user="wang"]').textContent.includes('已停用')`)
	zhao.do("reset chen's password", chromedp.Click(chromedp.ID("reset-chen")))
	zhao.wait("chen's one-time password", `document.querySelector('#one-time').textContent.includes('chen')`)
	if u, _ := r.ctrl.Store().UserByName(ctx, "chen"); !u.MustChange {
		t.Errorf("chen need not change his password after a reset")
	}
	if got := zhao.eval(`String(!!document.querySelector('#toggle-zhao'))`); got != "false" {
		t.Errorf("the admin may disable himself from the page")
	}

	// The approval policy: daily notices without a level now need approval.
	zhao.do("tick daily level 0", chromedp.Click(chromedp.ID("approve-daily-0")), chromedp.Click(chromedp.ID("policy-submit")))
	zhao.wait("the policy saved", `document.querySelector('#policy-msg').textContent.includes('审批规则已保存')`)
	pol, err := r.ctrl.Policy(ctx)
	if err != nil || !slices.Contains(pol.Approval["daily"], 0) {
		t.Errorf("policy %+v, %v: want daily level 0 to need approval", pol, err)
	}

	// Keys: the active key cannot be retired; rotate, then retire the old.
	keys, err := r.ctrl.Store().IssuingKeys(ctx)
	if err != nil || len(keys) != 1 {
		t.Fatalf("keys %+v, %v", keys, err)
	}
	old := keys[0].KeyID
	zhao.do("retire the active key", chromedp.Click(chromedp.ID("retire-"+old)))
	zhao.wait("the refusal", `!!document.querySelector('#retire-refused')`)
	if got := zhao.text("#retire-refused"); !strings.Contains(got, "请先轮换") {
		t.Errorf("refusal %q: want the reason in Chinese (请先轮换)", got)
	}
	zhao.shot("admin-key-refused-desktop")
	zhao.do("rotate", chromedp.Click(chromedp.ID("rotate-key")))
	zhao.wait("the new key", `document.querySelectorAll('#key-list tr[data-kid]').length === 2`)
	waitUntil(t, "every terminal confirms the new key", func() bool {
		ks, err := r.ctrl.Store().IssuingKeys(ctx)
		if err != nil {
			t.Fatal(err)
		}
		lacking, err := r.ctrl.Store().TerminalsLackingKey(ctx, ks[0].KeyID)
		return err == nil && len(lacking) == 0
	})
	zhao.do("retire the old key", chromedp.Click(chromedp.ID("retire-"+old)))
	zhao.wait("the old key retired", `document.querySelector('#keys-msg').textContent.includes('已退役') &&
		document.querySelector('#key-list tr[data-kid="`+old+`"]').textContent.includes('已退役')`)
	zhao.shot("admin-desktop")
	zhao.phone(true)
	zhao.go_("#/overview")
	zhao.signedIn()
	zhao.go_("#/admin")
	zhao.wait("the admin page", `!!document.querySelector('#key-list tr[data-kid]')`)
	zhao.shot("admin-phone")

	// An officer has no admin page.
	li := openPage(t, b, "li", shots)
	li.signIn(r.base, "li", password)
	li.signedIn()
	if got := li.text("#nav"); strings.Contains(got, "管理") {
		t.Errorf("approver's menu %q offers 管理", got)
	}
}
