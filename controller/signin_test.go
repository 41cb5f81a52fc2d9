package controller

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/store"
)

// TestFirstSignIn: a one-time password only opens the way to choosing a
// password that meets the rules.
func TestFirstSignIn(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	var nu NewUser
	h.admin.mustCall(t, http.StatusCreated, "POST", "/api/v1/users", UserRequest{Name: "clerk", Roles: []string{access.Viewer}, Areas: []string{county}}, &nu)
	hc := from(t, "127.0.0.2")
	cases := []struct {
		name   string
		in     SignIn
		status int
		field  string
	}{
		{"wrong password", SignIn{Name: "clerk", Password: "Wrong-pass-2026"}, http.StatusUnauthorized, ""},
		{"unknown user", SignIn{Name: "nobody", Password: nu.Password}, http.StatusUnauthorized, ""},
		{"one-time password kept", SignIn{Name: "clerk", Password: nu.Password}, http.StatusForbidden, "new_password"},
		{"short new password", SignIn{Name: "clerk", Password: nu.Password, NewPassword: "ab-12"}, http.StatusBadRequest, "new_password"},
		{"new password holding the name", SignIn{Name: "clerk", Password: nu.Password, NewPassword: "clerk-2026-融安"}, http.StatusBadRequest, "new_password"},
		{"well-known new password", SignIn{Name: "clerk", Password: nu.Password, NewPassword: "password123"}, http.StatusBadRequest, "new_password"},
		{"one kind of character", SignIn{Name: "clerk", Password: nu.Password, NewPassword: "abcdefghijkl"}, http.StatusBadRequest, "new_password"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			status, out, raw, resp := h.signIn(t, hc, c.in)
			var e apiError
			if status != c.status || json.Unmarshal(raw, &e) != nil || e.Field != c.field || e.Error == "" {
				t.Fatalf("status %d %s, want %d naming %q", status, raw, c.status, c.field)
			}
			if len(resp.Cookies()) != 0 || out.Token != "" {
				t.Fatalf("a refused sign-in set cookies %v or gave a token", resp.Cookies())
			}
		})
	}
	status, out, raw, resp := h.signIn(t, hc, SignIn{Name: "clerk", Password: nu.Password, NewPassword: testPassword})
	if status != http.StatusOK || out.User.MustChange || out.CSRFToken == "" {
		t.Fatalf("sign-in with a good new password: %d %s", status, raw)
	}
	t.Run("session cookie", func(t *testing.T) {
		var ck *http.Cookie
		for _, c := range resp.Cookies() {
			if c.Name == SessionCookie {
				ck = c
			}
		}
		if ck == nil || ck.Value == "" {
			t.Fatalf("no %s cookie in %v", SessionCookie, resp.Header["Set-Cookie"])
		}
		if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/" {
			t.Fatalf("cookie %q: HttpOnly %v, SameSite %v, Path %q; want HttpOnly, Strict, /", resp.Header.Get("Set-Cookie"), ck.HttpOnly, ck.SameSite, ck.Path)
		}
		if strings.Contains(string(raw), ck.Value) {
			t.Fatal("the session secret is in the answer's body, where scripts can read it")
		}
	})
	t.Run("the one-time password is spent", func(t *testing.T) {
		if status, _, raw, _ := h.signIn(t, hc, SignIn{Name: "clerk", Password: nu.Password}); status != http.StatusUnauthorized {
			t.Fatalf("one-time password after the change: %d %s", status, raw)
		}
		h.session(t, "clerk", testPassword)
	})
	t.Run("audited", func(t *testing.T) {
		es := h.auditEntries(t, "")
		for _, want := range []struct{ action, actor string }{
			{"user.signin_failed", "clerk"}, {"user.signin_failed", "nobody"}, {"user.password_change", "clerk"}, {"user.signin", "clerk"},
		} {
			if !hasAudit(es, want.action, want.actor, "") {
				t.Errorf("no %s entry for %s", want.action, want.actor)
			}
		}
		for _, e := range es {
			if e.Action == "user.signin_failed" && e.Source != "127.0.0.2" {
				t.Errorf("failed sign-in recorded from %q, want 127.0.0.2", e.Source)
			}
		}
	})
}

// TestSignInLockout: five failures lock an account, whatever address the
// next try comes from and even with the right password; twenty failures
// from one address lock that address, whatever account it tries, and a
// success in between does not reset the address's count.
func TestSignInLockout(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	target := h.newUser(t, "target", []string{access.Viewer}, county)
	bystander := h.newUser(t, "bystander", []string{access.Viewer}, county)
	try := func(t *testing.T, ip, name, pw string, want int) {
		t.Helper()
		if status, _, raw, _ := h.signIn(t, from(t, ip), SignIn{Name: name, Password: pw}); status != want {
			t.Fatalf("sign-in of %s from %s: %d %s, want %d", name, ip, status, raw, want)
		}
	}

	t.Run("per account", func(t *testing.T) {
		for i := 1; i <= 4; i++ {
			try(t, fmt.Sprintf("127.0.1.%d", i), target.name, "Wrong-pass-2026", http.StatusUnauthorized)
		}
		try(t, "127.0.1.9", target.name, target.password, http.StatusOK) // four failures lock nothing
		for i := 1; i <= 5; i++ {
			try(t, fmt.Sprintf("127.0.1.%d", i), target.name, "Wrong-pass-2026", http.StatusUnauthorized)
		}
		try(t, "127.0.1.6", target.name, target.password, http.StatusTooManyRequests)
		try(t, "127.0.1.6", bystander.name, bystander.password, http.StatusOK) // the addresses are not locked
		h.clock.advance(16 * time.Minute)
		try(t, "127.0.1.6", target.name, target.password, http.StatusOK)
	})
	t.Run("per address", func(t *testing.T) {
		// Twenty failures from one address lock it, and a guesser who holds
		// one valid account cannot clear the count by signing in with it.
		for i := 1; i <= 20; i++ {
			try(t, "127.0.2.1", fmt.Sprintf("guess%d", i), "Wrong-pass-2026", http.StatusUnauthorized)
			if i%4 == 0 && i < 20 {
				try(t, "127.0.2.1", bystander.name, bystander.password, http.StatusOK)
			}
		}
		try(t, "127.0.2.1", bystander.name, bystander.password, http.StatusTooManyRequests)
		try(t, "127.0.2.2", bystander.name, bystander.password, http.StatusOK)
	})
	if es := h.auditEntries(t, "action=user.signin_locked"); !hasAudit(es, "user.signin_locked", target.name, "") || !hasAudit(es, "user.signin_locked", bystander.name, "") {
		t.Fatalf("locked sign-ins not audited: %+v", es)
	}
}

// TestCSRF: a state-changing request made with the session cookie needs the
// session's CSRF token in X-CSRF-Token.
func TestCSRF(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	officer := h.officer(t)
	s := h.session(t, officer.name, officer.password)
	other := h.session(t, officer.name, officer.password)
	tokens := func() int {
		var ts []store.Token
		officer.mustCall(t, http.StatusOK, "GET", "/api/v1/tokens", nil, &ts)
		return len(ts)
	}
	before := tokens()
	cases := []struct {
		name   string
		csrf   string
		status int
	}{
		{"no header", "", http.StatusForbidden},
		{"another session's token", other.csrf, http.StatusForbidden},
		{"a byte short", s.csrf[:len(s.csrf)-1], http.StatusForbidden},
		{"the session's token", s.csrf, http.StatusCreated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cl := *s
			cl.csrf = c.csrf
			n := tokens()
			status, raw := cl.call(t, "POST", "/api/v1/tokens", map[string]string{"name": "laptop"}, nil)
			if status != c.status {
				t.Fatalf("status %d %s, want %d", status, raw, c.status)
			}
			if c.status == http.StatusForbidden && (tokens() != n || !strings.Contains(string(raw), CSRFHeader)) {
				t.Fatalf("refused request: %s; tokens %d, before %d", raw, tokens(), n)
			}
		})
	}
	if got := tokens(); got != before+1 {
		t.Fatalf("%d tokens, want %d", got, before+1)
	}
	noCSRF := *s
	noCSRF.csrf = ""
	noCSRF.mustCall(t, http.StatusOK, "GET", "/api/v1/me", nil, nil) // reading needs no CSRF token
	noCSRF.refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+"64502241020030000000099"+"/cancel", nil)
}

// TestSessionExpiry: a session ends after 30 minutes unused, and 12 hours
// after sign-in however much it is used.
func TestSessionExpiry(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	u := h.newUser(t, "clerk", []string{access.Viewer}, county)
	me := func(cl *client) int {
		status, _ := cl.call(t, "GET", "/api/v1/me", nil, nil)
		return status
	}
	t.Run("idle", func(t *testing.T) {
		s := h.session(t, u.name, u.password)
		for i, step := range []struct {
			advance time.Duration
			want    int
		}{{29 * time.Minute, http.StatusOK}, {29 * time.Minute, http.StatusOK}, {31 * time.Minute, http.StatusUnauthorized}, {0, http.StatusUnauthorized}} {
			h.clock.advance(step.advance)
			if got := me(s); got != step.want {
				t.Fatalf("step %d (+%s): status %d, want %d", i, step.advance, got, step.want)
			}
		}
	})
	t.Run("absolute", func(t *testing.T) {
		s := h.session(t, u.name, u.password)
		var used time.Duration
		for used+25*time.Minute <= SessionMax {
			h.clock.advance(25 * time.Minute)
			used += 25 * time.Minute
			if got := me(s); got != http.StatusOK {
				t.Fatalf("%s after sign-in, used every 25 minutes: status %d", used, got)
			}
		}
		h.clock.advance(25 * time.Minute)
		if got := me(s); got != http.StatusUnauthorized {
			t.Fatalf("%s after sign-in: status %d, want 401", used+25*time.Minute, got)
		}
	})
}

// TestEndingAccess: signing out, signing out everywhere, disabling a user,
// changing or resetting a password.
func TestEndingAccess(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	status := func(cl *client) int {
		s, _ := cl.call(t, "GET", "/api/v1/me", nil, nil)
		return s
	}
	expect := func(t *testing.T, want int, cls ...*client) {
		t.Helper()
		for i, cl := range cls {
			if got := status(cl); got != want {
				t.Fatalf("credential %d of %s: status %d, want %d", i, cl.name, got, want)
			}
		}
	}
	// extraToken makes a second API token for cl.
	extraToken := func(t *testing.T, cl *client) *client {
		var out map[string]string
		cl.mustCall(t, http.StatusCreated, "POST", "/api/v1/tokens", map[string]string{"name": "cli"}, &out)
		return &client{h: h, name: cl.name, password: cl.password, hc: apiClient, bearer: out["token"]}
	}

	t.Run("sign out, then sign out everywhere", func(t *testing.T) {
		u := h.newUser(t, "leaver", []string{access.Viewer}, county)
		s1, s2, tok := h.session(t, u.name, u.password), h.session(t, u.name, u.password), extraToken(t, u)
		s1.mustCall(t, http.StatusOK, "POST", "/api/v1/signout", nil, nil)
		expect(t, http.StatusUnauthorized, s1)
		expect(t, http.StatusOK, s2, u, tok)
		s2.mustCall(t, http.StatusOK, "POST", "/api/v1/signout/everywhere", nil, nil)
		expect(t, http.StatusUnauthorized, s2, u, tok)
		expect(t, http.StatusOK, h.admin) // another user's access is untouched
		expect(t, http.StatusOK, h.session(t, u.name, u.password))
	})
	t.Run("disabled, re-enabled, demoted", func(t *testing.T) {
		u := h.newUser(t, "disabled", []string{access.Officer}, county)
		s := h.session(t, u.name, u.password)
		h.admin.mustCall(t, http.StatusOK, "PATCH", "/api/v1/users/"+u.name, map[string]bool{"disabled": true}, nil)
		expect(t, http.StatusUnauthorized, s, u)
		u.refused(t, http.StatusUnauthorized, "", "POST", "/api/v1/media?name=x.wav", tone(100*time.Millisecond))
		if st, _, raw, _ := h.signIn(t, apiClient, SignIn{Name: u.name, Password: u.password}); st != http.StatusUnauthorized {
			t.Fatalf("sign-in of a disabled user: %d %s", st, raw)
		}
		h.admin.mustCall(t, http.StatusOK, "PATCH", "/api/v1/users/"+u.name, map[string]bool{"disabled": false}, nil)
		expect(t, http.StatusUnauthorized, u) // re-enabling does not bring back old tokens
		back := h.session(t, u.name, u.password)
		back.mustCall(t, http.StatusCreated, "POST", "/api/v1/media?name=x.wav", tone(100*time.Millisecond), nil)
		// A change of roles applies to the next request.
		h.admin.mustCall(t, http.StatusOK, "PATCH", "/api/v1/users/"+u.name, map[string]any{"roles": []string{access.Viewer}}, nil)
		back.refused(t, http.StatusForbidden, "", "POST", "/api/v1/media?name=x.wav", tone(100*time.Millisecond))
	})
	t.Run("password change, then reset by the admin", func(t *testing.T) {
		u := h.newUser(t, "changer", []string{access.Viewer}, county)
		s1, s2 := h.session(t, u.name, u.password), h.session(t, u.name, u.password)
		const changed, chosen = "Another-融安-77", "Reset-融安-88"
		s1.refused(t, http.StatusForbidden, "password", "POST", "/api/v1/me/password", map[string]string{"password": "Wrong-pass-2026", "new_password": changed})
		s1.refused(t, http.StatusBadRequest, "new_password", "POST", "/api/v1/me/password", map[string]string{"password": u.password, "new_password": "short-1"})
		s1.mustCall(t, http.StatusOK, "POST", "/api/v1/me/password", map[string]string{"password": u.password, "new_password": changed}, nil)
		expect(t, http.StatusOK, s1)
		expect(t, http.StatusUnauthorized, s2)
		if st, _, _, _ := h.signIn(t, apiClient, SignIn{Name: u.name, Password: u.password}); st != http.StatusUnauthorized {
			t.Fatalf("old password after the change: %d", st)
		}
		s3 := h.session(t, u.name, changed)

		var nu NewUser
		h.admin.mustCall(t, http.StatusOK, "POST", "/api/v1/users/"+u.name+"/reset-password", nil, &nu)
		expect(t, http.StatusUnauthorized, s1, s3)
		if st, _, raw, _ := h.signIn(t, apiClient, SignIn{Name: u.name, Password: nu.Password}); st != http.StatusForbidden || !strings.Contains(string(raw), "new_password") {
			t.Fatalf("sign-in with the reset one-time password: %d %s, want 403 naming new_password", st, raw)
		}
		if st, _, raw, _ := h.signIn(t, apiClient, SignIn{Name: u.name, Password: nu.Password, NewPassword: chosen}); st != http.StatusOK {
			t.Fatalf("sign-in replacing the reset one-time password: %d %s", st, raw)
		}
		expect(t, http.StatusOK, h.session(t, u.name, chosen))
	})
}
