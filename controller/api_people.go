package controller

import (
	"encoding/csv"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/audit"
	"dalaba/controller/auth"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// SignIn is the body of POST /api/v1/signin.
type SignIn struct {
	Name        string `json:"name"`
	Password    string `json:"password"`
	NewPassword string `json:"new_password,omitempty"` // replaces a one-time password
	APIToken    string `json:"api_token,omitempty"`    // name a token to get one instead of a session
}

// SignedIn answers a sign-in.
type SignedIn struct {
	User      store.User `json:"user"`
	CSRFToken string     `json:"csrf_token,omitempty"`
	Token     string     `json:"token,omitempty"`
	Expires   time.Time  `json:"expires,omitempty"`
}

func (c *Controller) apiSignIn(w http.ResponseWriter, r *http.Request) {
	var in SignIn
	if err := readJSON(r, &in); err != nil {
		c.fail(w, r, err)
		return
	}
	src, now := sourceOf(r), c.now()
	for _, th := range []struct {
		t   *auth.Throttle
		key string
	}{{c.throttle, in.Name}, {c.addrThrottle, src}} {
		if locked, until := th.t.Locked(th.key, now); locked {
			c.audit(r.Context(), in.Name, src, "user.signin_locked", in.Name, "", "", "locked until "+until.Format(time.RFC3339))
			writeError(w, http.StatusTooManyRequests, fmt.Errorf("too many failed sign-ins; try again after %s", until.In(protocol.Beijing).Format("15:04")))
			return
		}
	}
	u, err := c.store.UserByName(r.Context(), in.Name)
	if err != nil {
		u.Password = dummyHash() // spend the same time as for a real account, so names are not revealed
	}
	if ok := auth.CheckPassword(u.Password, in.Password); err != nil || u.Disabled || !ok {
		locked := c.throttle.Fail(in.Name, now)
		locked = c.addrThrottle.Fail(src, now) || locked
		detail := "wrong name or password"
		if locked {
			detail += "; locked out"
		}
		c.audit(r.Context(), in.Name, src, "user.signin_failed", in.Name, "", "", detail)
		writeError(w, http.StatusUnauthorized, errors.New("wrong name or password"))
		return
	}
	if u.MustChange {
		if in.NewPassword == "" {
			writeError(w, http.StatusForbidden, &ValidationError{Field: "new_password", Msg: "this is a one-time password: choose a new one (new_password)"})
			return
		}
		if err := c.setPassword(r, &u, in.NewPassword, ""); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	c.throttle.Succeed(in.Name)
	out := SignedIn{User: u}
	if in.APIToken != "" {
		tok, _ := NewSecret()
		if err := c.store.AddUserToken(r.Context(), HashSecret(tok), in.APIToken, u.ID, now); err != nil {
			c.fail(w, r, err)
			return
		}
		out.Token = tok
		c.audit(r.Context(), u.Name, src, "token.create", HashSecret(tok)[:12], "", in.APIToken, "by sign-in")
	} else {
		cookie, _ := NewSecret()
		csrf, _ := NewSecret()
		ss := store.Session{Hash: HashSecret(cookie), UserID: u.ID, CSRF: csrf, Source: src, CreatedAt: now, LastUsed: now, ExpiresAt: now.Add(SessionMax)}
		if err := c.store.CreateSession(r.Context(), ss); err != nil {
			c.fail(w, r, err)
			return
		}
		http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: cookie, Path: "/", HttpOnly: true, Secure: c.cfg.TLSCert != "",
			SameSite: http.SameSiteStrictMode, Expires: ss.ExpiresAt})
		out.CSRFToken, out.Expires = csrf, ss.ExpiresAt
	}
	c.audit(r.Context(), u.Name, src, "user.signin", u.Name, "", "", "")
	writeJSON(w, http.StatusOK, out)
}

// dummyHash is checked against for unknown names.
var dummyHash = sync.OnceValue(func() string {
	h, _ := auth.HashPassword("no such user: the time is spent all the same")
	return h
})

// setPassword checks the rules and stores a new password, ending the user's
// other sessions.
func (c *Controller) setPassword(r *http.Request, u *store.User, pw, keep string) error {
	if err := auth.CheckPasswordRules(pw, u.Name); err != nil {
		return invalid("new_password", "%v", err)
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	if err := c.store.SetPassword(r.Context(), u.ID, hash, false, keep, c.now()); err != nil {
		return err
	}
	u.MustChange = false
	c.audit(r.Context(), u.Name, sourceOf(r), "user.password_change", u.Name, "", "", "other sessions ended")
	return nil
}

func (c *Controller) apiMe(w http.ResponseWriter, r *http.Request, p *principal) {
	writeJSON(w, http.StatusOK, p.user)
}

func (c *Controller) apiChangePassword(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct {
		Password    string `json:"password"`
		NewPassword string `json:"new_password"`
	}
	if err := readJSON(r, &in); err != nil {
		c.fail(w, r, err)
		return
	}
	if !auth.CheckPassword(p.user.Password, in.Password) {
		c.auditAs(r.Context(), p, "user.password_change_failed", p.name(), "", "", "wrong current password")
		writeError(w, http.StatusForbidden, &ValidationError{Field: "password", Msg: "the current password is wrong"})
		return
	}
	keep := ""
	if p.session != nil {
		keep = p.session.Hash
	}
	if err := c.setPassword(r, &p.user, in.NewPassword, keep); err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, p.user)
}

func (c *Controller) apiSignOut(w http.ResponseWriter, r *http.Request, p *principal) {
	if p.session != nil {
		c.store.DeleteSession(r.Context(), p.session.Hash)
	}
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true})
	c.auditAs(r.Context(), p, "user.signout", p.name(), "", "", "")
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

func (c *Controller) apiSignOutEverywhere(w http.ResponseWriter, r *http.Request, p *principal) {
	if err := c.store.DeleteUserSessions(r.Context(), p.user.ID, c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "user.signout_everywhere", p.name(), "", "", "every session ended, every API token revoked")
	writeJSON(w, http.StatusOK, map[string]bool{"signed_out": true})
}

func (c *Controller) apiTokens(w http.ResponseWriter, r *http.Request, p *principal) {
	ts, err := c.store.Tokens(r.Context(), p.user.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (c *Controller) apiCreateToken(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct {
		Name string `json:"name"`
	}
	if err := readJSON(r, &in); err != nil {
		c.fail(w, r, err)
		return
	}
	if strings.TrimSpace(in.Name) == "" {
		c.fail(w, r, invalid("name", "name the token after where it is used (e.g. laptop-cli)"))
		return
	}
	tok, _ := NewSecret()
	if err := c.store.AddUserToken(r.Context(), HashSecret(tok), in.Name, p.user.ID, c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "token.create", HashSecret(tok)[:12], "", in.Name, "")
	writeJSON(w, http.StatusCreated, map[string]string{"token": tok, "id": HashSecret(tok)[:12]})
}

func (c *Controller) apiRevokeToken(w http.ResponseWriter, r *http.Request, p *principal) {
	owner := p.user.ID
	if p.can(access.ManageUsers) {
		owner = 0 // an admin may revoke anyone's token
	}
	if err := c.store.RevokeToken(r.Context(), r.PathValue("id"), owner, c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "token.revoke", r.PathValue("id"), "", "", "")
	writeJSON(w, http.StatusOK, map[string]string{"revoked": r.PathValue("id")})
}

// UserRequest creates or changes a user.
type UserRequest struct {
	Name     string   `json:"name"`
	Display  string   `json:"display"`
	Roles    []string `json:"roles"`
	Areas    []string `json:"areas"`
	Disabled *bool    `json:"disabled,omitempty"`
}

func (c *Controller) checkUser(r *http.Request, u UserRequest) error {
	if len(u.Roles) == 0 {
		return invalid("roles", "give at least one role (%s)", strings.Join(access.Roles, ", "))
	}
	for _, role := range u.Roles {
		if !access.ValidRole(role) {
			return invalid("roles", "%q is not a role (%s)", role, strings.Join(access.Roles, ", "))
		}
	}
	if len(u.Areas) == 0 {
		return invalid("areas", "give the areas this user may reach (the county code for the whole county)")
	}
	for _, a := range u.Areas {
		if ok, err := c.store.AreaExists(r.Context(), a); err != nil {
			return err
		} else if !ok {
			return invalid("areas", "area %s is not in the area tree", a)
		}
	}
	return nil
}

func (c *Controller) apiUsers(w http.ResponseWriter, r *http.Request, p *principal) {
	us, err := c.store.Users(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, us)
}

// NewUser is a created user and the one-time password to hand them.
type NewUser struct {
	User     store.User `json:"user"`
	Password string     `json:"one_time_password"`
}

func (c *Controller) apiCreateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	var in UserRequest
	if err := readJSON(r, &in); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := validUserName(in.Name); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.checkUser(r, in); err != nil {
		c.fail(w, r, err)
		return
	}
	res, err := c.CreateUser(r.Context(), in)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "user.create", res.User.Name, "", jsonText(in), "one-time password issued")
	writeJSON(w, http.StatusCreated, res)
}

func validUserName(n string) error {
	if len(n) < 2 || len(n) > 64 || strings.ContainsAny(n, " \t\r\n/\\:") {
		return invalid("name", "%q: 2..64 characters, no spaces, slashes or colons", n)
	}
	return nil
}

func (c *Controller) apiUpdateUser(w http.ResponseWriter, r *http.Request, p *principal) {
	u, err := c.store.UserByName(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	before := u
	in := UserRequest{Name: u.Name, Display: u.Display, Roles: u.Roles, Areas: u.Areas}
	if err := readJSON(r, &in); err != nil {
		c.fail(w, r, err)
		return
	}
	if in.Name != u.Name {
		c.fail(w, r, invalid("name", "a user's name cannot change"))
		return
	}
	if err := c.checkUser(r, in); err != nil {
		c.fail(w, r, err)
		return
	}
	if u.ID == p.user.ID && (!slices.Contains(in.Roles, access.Admin) || in.Disabled != nil && *in.Disabled) {
		c.fail(w, r, invalid("roles", "you cannot remove your own admin role or disable yourself; ask another admin"))
		return
	}
	u.Display, u.Roles, u.Areas = in.Display, in.Roles, in.Areas
	if in.Disabled != nil {
		u.Disabled = *in.Disabled
	}
	if err := c.store.UpdateUser(r.Context(), u, c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "user.update", u.Name, jsonText(userSummary(before)), jsonText(userSummary(u)), "")
	writeJSON(w, http.StatusOK, u)
}

func userSummary(u store.User) map[string]any {
	return map[string]any{"display": u.Display, "roles": u.Roles, "areas": u.Areas, "disabled": u.Disabled}
}

func (c *Controller) apiResetPassword(w http.ResponseWriter, r *http.Request, p *principal) {
	u, err := c.store.UserByName(r.Context(), r.PathValue("name"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pw := auth.OneTimePassword()
	hash, err := auth.HashPassword(pw)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.store.SetPassword(r.Context(), u.ID, hash, true, "", c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.store.DeleteUserSessions(r.Context(), u.ID, c.now()); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "user.password_reset", u.Name, "", "", "one-time password issued; sessions ended, API tokens revoked")
	writeJSON(w, http.StatusOK, NewUser{User: u, Password: pw})
}

func (c *Controller) apiPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	pol, err := c.Policy(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, pol)
}

func (c *Controller) apiSetPolicy(w http.ResponseWriter, r *http.Request, p *principal) {
	var pol access.Policy
	if err := readJSON(r, &pol); err != nil {
		c.fail(w, r, err)
		return
	}
	before, _ := c.Policy(r.Context())
	if err := c.SetPolicy(r.Context(), pol); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "settings.policy", "policy", jsonText(before), jsonText(pol), "")
	writeJSON(w, http.StatusOK, pol)
}

func (c *Controller) auditFilter(r *http.Request) (store.AuditFilter, error) {
	q := r.URL.Query()
	f := store.AuditFilter{Actor: q.Get("actor"), Action: q.Get("action"), Target: q.Get("target")}
	for key, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(key); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return f, invalid(key, "%q is not an RFC 3339 time", v)
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100000 {
			return f, invalid("limit", "%q must be 1..100000", v)
		}
		f.Limit = n
	}
	return f, nil
}

func (c *Controller) apiAudit(w http.ResponseWriter, r *http.Request, p *principal) {
	f, err := c.auditFilter(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	es, err := c.store.Audit(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if es == nil {
		es = []audit.Entry{}
	}
	writeJSON(w, http.StatusOK, es)
}

func (c *Controller) apiAuditCSV(w http.ResponseWriter, r *http.Request, p *principal) {
	f, err := c.auditFilter(r)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if f.Limit == 0 {
		f.Limit = 100000
	}
	es, err := c.store.Audit(r.Context(), f)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "text/csv; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="dalaba-audit.csv"`)
	w.Write([]byte("\xEF\xBB\xBF")) // BOM: spreadsheets open the Chinese text as UTF-8
	cw := csv.NewWriter(w)
	cw.Write([]string{"seq", "time (Beijing)", "actor", "source", "action", "target", "before", "after", "detail", "seal"})
	for _, e := range es {
		cw.Write([]string{strconv.FormatInt(e.Seq, 10), e.At.In(protocol.Beijing).Format(time.DateTime), e.Actor, e.Source,
			e.Action, e.Target, e.Before, e.After, e.Detail, fmt.Sprintf("%x", e.Seal)})
	}
	cw.Flush()
}

func (c *Controller) apiAuditVerify(w http.ResponseWriter, r *http.Request, p *principal) {
	n, err := c.VerifyAudit(r.Context())
	var prob *audit.Problem
	switch {
	case err == nil:
		writeJSON(w, http.StatusOK, map[string]any{"ok": true, "entries": n})
	case errors.As(err, &prob):
		writeJSON(w, http.StatusOK, map[string]any{"ok": false, "entries_verified": n, "first_bad_seq": prob.Seq, "problem": prob.Error()})
	default:
		c.fail(w, r, err)
	}
}
