package controller

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/store"
)

// Sign-in sessions: an HttpOnly, SameSite=Strict cookie (Secure under TLS)
// whose hash is kept in the database. A session ends after SessionIdle
// without use or SessionMax after sign-in, whichever comes first.
const (
	SessionCookie = "dalaba_session"
	CSRFHeader    = "X-CSRF-Token"
	SessionIdle   = 30 * time.Minute
	SessionMax    = 12 * time.Hour
)

// principal is who is making a request.
type principal struct {
	user    store.User
	session *store.Session // nil for API tokens
	source  string         // remote address
}

func (p *principal) name() string { return p.user.Name }

func (p *principal) can(a access.Action) bool { return access.Can(p.user.Roles, a) }

func (p *principal) scope() access.Scope { return access.Scope(p.user.Areas) }

// errForbidden marks a request the principal may not make.
var errForbidden = errors.New("forbidden")

func forbidden(format string, args ...any) error {
	return fmt.Errorf("%w: %s", errForbidden, fmt.Sprintf(format, args...))
}

// identify finds the principal of a request: a session cookie, or a bearer
// token. Cookie requests that change state must carry the session's CSRF
// token in the X-CSRF-Token header.
func (c *Controller) identify(r *http.Request) (*principal, int, error) {
	p := &principal{source: sourceOf(r)}
	now := c.now()
	if tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer "); ok && tok != "" {
		u, err := c.store.TokenUser(r.Context(), HashSecret(tok))
		if err != nil {
			return nil, http.StatusUnauthorized, errors.New("API token is not valid (revoked, or never issued)")
		}
		if u.Disabled {
			return nil, http.StatusUnauthorized, errors.New("this account is disabled")
		}
		p.user = u
		return p, 0, nil
	}
	ck, err := r.Cookie(SessionCookie)
	if err != nil || ck.Value == "" {
		return nil, http.StatusUnauthorized, errors.New("sign in first, or send Authorization: Bearer <API token>")
	}
	ss, err := c.store.SessionByHash(r.Context(), HashSecret(ck.Value))
	if err != nil {
		return nil, http.StatusUnauthorized, errors.New("your session has ended; sign in again")
	}
	if now.After(ss.ExpiresAt) || now.Sub(ss.LastUsed) > SessionIdle {
		c.store.DeleteSession(r.Context(), ss.Hash)
		return nil, http.StatusUnauthorized, errors.New("your session has expired; sign in again")
	}
	u, err := c.store.UserByID(r.Context(), ss.UserID)
	if err != nil || u.Disabled {
		return nil, http.StatusUnauthorized, errors.New("this account is disabled")
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		got := r.Header.Get(CSRFHeader)
		if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(ss.CSRF)) != 1 {
			return nil, http.StatusForbidden, errors.New("missing or wrong " + CSRFHeader + " header (reload the page)")
		}
	}
	c.store.TouchSession(r.Context(), ss.Hash, now)
	p.user, p.session = u, &ss
	return p, 0, nil
}

// sourceOf is the remote IP of a request (the controller is reached
// directly, not through a proxy that would need trusting).
func sourceOf(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// authed identifies the principal, checks that a session whose password is
// a one-time one only changes it, checks the route's action, and calls h.
func (c *Controller) authed(action access.Action, h func(w http.ResponseWriter, r *http.Request, p *principal)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, status, err := c.identify(r)
		if err != nil {
			writeError(w, status, err)
			return
		}
		if p.session != nil && p.user.MustChange && action != actionSelf {
			writeError(w, http.StatusForbidden, errors.New("change your one-time password first (POST /api/v1/me/password)"))
			return
		}
		if action != actionSelf && !p.can(action) {
			c.auditAs(r.Context(), p, "access.denied", r.Method+" "+r.URL.Path, "", "", "needs "+string(action))
			writeError(w, http.StatusForbidden, forbidden("your roles (%s) do not allow %s", strings.Join(p.user.Roles, ", "), action))
			return
		}
		h(w, r, p)
	})
}

// actionSelf is for routes every signed-in user may call about themself.
const actionSelf access.Action = "self"

// auditAs writes an audit entry for a principal's action.
func (c *Controller) auditAs(ctx context.Context, p *principal, action, target, before, after, detail string) {
	actor, source := "system", ""
	if p != nil {
		actor, source = p.name(), p.source
	}
	c.audit(ctx, actor, source, action, target, before, after, detail)
}
