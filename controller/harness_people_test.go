package controller

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"slices"
	"sync/atomic"
	"testing"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/store"
)

// testClock is a test controller's clock: real time plus an offset that a
// test moves forward, so that session, lockout and validity windows pass
// without sleeping. It is installed before the controller runs.
type testClock struct{ offset atomic.Int64 }

func (k *testClock) now() time.Time { return time.Now().Add(time.Duration(k.offset.Load())) }

func (k *testClock) advance(d time.Duration) { k.offset.Add(int64(d)) }

// testPassword meets the password rules and contains no test user's name.
const testPassword = "Xq7-融安-防汛-2026"

// client calls the API as one signed-in operator: with an API token, or
// with a session cookie (in hc's jar) and the session's CSRF token.
type client struct {
	h        *testController
	name     string
	password string
	hc       *http.Client
	bearer   string // API token; "" for a session
	csrf     string // sent as X-CSRF-Token on state-changing requests
}

// call makes a request. body is sent as is when it is []byte, as JSON
// otherwise; out, when not nil, receives a 2xx answer.
func (cl *client) call(t *testing.T, method, path string, body, out any) (int, []byte) {
	t.Helper()
	hdr := http.Header{}
	if cl.bearer != "" {
		hdr.Set("Authorization", "Bearer "+cl.bearer)
	}
	if cl.csrf != "" && method != http.MethodGet {
		hdr.Set(CSRFHeader, cl.csrf)
	}
	resp, raw := request(t, cl.hc, method, cl.h.base+path, hdr, body)
	if out != nil && resp.StatusCode/100 == 2 {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: decode %s: %v", method, path, raw, err)
		}
	}
	return resp.StatusCode, raw
}

// mustCall is call that fails the test unless the status is want.
func (cl *client) mustCall(t *testing.T, want int, method, path string, body, out any) {
	t.Helper()
	if status, raw := cl.call(t, method, path, body, out); status != want {
		t.Fatalf("%s %s as %s: status %d, want %d: %s", method, path, cl.name, status, want, raw)
	}
}

// refused is call that expects an error answer with status and, when
// field is not empty, naming that field.
func (cl *client) refused(t *testing.T, status int, field, method, path string, body any) apiError {
	t.Helper()
	got, raw := cl.call(t, method, path, body, nil)
	var e apiError
	if err := json.Unmarshal(raw, &e); err != nil || got != status || e.Error == "" || (field != "" && e.Field != field) {
		t.Fatalf("%s %s as %s: %d %s, want %d naming field %q", method, path, cl.name, got, raw, status, field)
	}
	return e
}

// request sends one request and reads the whole answer.
func request(t *testing.T, hc *http.Client, method, url string, hdr http.Header, body any) (*http.Response, []byte) {
	t.Helper()
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case []byte:
		rd = bytes.NewReader(b)
	default:
		data, err := json.Marshal(b)
		if err != nil {
			t.Fatal(err)
		}
		rd = bytes.NewReader(data)
	}
	req, err := http.NewRequest(method, url, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read answer: %v", method, url, err)
	}
	return resp, raw
}

// from returns an HTTP client whose connections come from ip (any address
// in 127.0.0.0/8 reaches the controller), with a cookie jar of its own.
func from(t *testing.T, ip string) *http.Client {
	t.Helper()
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DialContext: d.DialContext}
	t.Cleanup(tr.CloseIdleConnections)
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Transport: tr, Jar: jar, Timeout: 5 * time.Second}
}

// signIn posts a sign-in from hc and returns the status, the answer and
// the raw response (for its cookies).
func (h *testController) signIn(t *testing.T, hc *http.Client, in SignIn) (int, SignedIn, []byte, *http.Response) {
	t.Helper()
	resp, raw := request(t, hc, "POST", h.base+"/api/v1/signin", nil, in)
	var out SignedIn
	if resp.StatusCode == http.StatusOK {
		if err := json.Unmarshal(raw, &out); err != nil {
			t.Fatalf("sign-in answer %s: %v", raw, err)
		}
	}
	return resp.StatusCode, out, raw, resp
}

// newUser creates an operator through the API as the admin, and signs them
// in once: the one-time password is replaced by testPassword and an API
// token is asked for. The client calls with that token.
func (h *testController) newUser(t *testing.T, name string, roles []string, areas ...string) *client {
	t.Helper()
	var nu NewUser
	h.admin.mustCall(t, http.StatusCreated, "POST", "/api/v1/users", UserRequest{Name: name, Roles: roles, Areas: areas}, &nu)
	if !nu.User.MustChange || nu.Password == "" {
		t.Fatalf("new user %+v with one-time password %q: it must be changed at first sign-in", nu.User, nu.Password)
	}
	status, out, raw, _ := h.signIn(t, apiClient, SignIn{Name: name, Password: nu.Password, NewPassword: testPassword, APIToken: "test"})
	if status != http.StatusOK || out.Token == "" || out.User.MustChange {
		t.Fatalf("first sign-in of %s: %d %s", name, status, raw)
	}
	return &client{h: h, name: name, password: testPassword, hc: apiClient, bearer: out.Token}
}

// session signs name in from a fresh cookie jar and returns a client that
// calls with the session cookie and its CSRF token.
func (h *testController) session(t *testing.T, name, password string) *client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{Jar: jar, Timeout: 5 * time.Second}
	status, out, raw, _ := h.signIn(t, hc, SignIn{Name: name, Password: password})
	if status != http.StatusOK || out.CSRFToken == "" || out.Token != "" {
		t.Fatalf("session sign-in of %s: %d %s", name, status, raw)
	}
	return &client{h: h, name: name, password: password, hc: hc, csrf: out.CSRFToken}
}

// user returns the operator name, made by newUser on first use (each one
// costs three argon2id hashes, so tests make only those they use).
func (h *testController) user(t *testing.T, name string, roles []string, areas ...string) *client {
	t.Helper()
	h.mu.Lock()
	defer h.mu.Unlock()
	if cl := h.users[name]; cl != nil {
		return cl
	}
	cl := h.newUser(t, name, roles, areas...)
	h.users[name] = cl
	return cl
}

// role returns a county-wide operator holding just role, named role+"1".
func (h *testController) role(t *testing.T, role string) *client {
	t.Helper()
	return h.user(t, role+"1", []string{role}, county)
}

func (h *testController) officer(t *testing.T) *client  { return h.role(t, access.Officer) }
func (h *testController) approver(t *testing.T) *client { return h.role(t, access.Approver) }

// send has the county officer compose an alert and, when the policy holds
// it for approval, the county approver approve it. It returns the alert as
// the approval (or creation) answered.
func (h *testController) send(t *testing.T, req AlertRequest) AlertView {
	t.Helper()
	var v AlertView
	h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", req, &v)
	if v.Status == store.AlertPending {
		h.approver(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/approve", decision{Comment: "核实无误"}, &v)
	}
	if v.Status != store.AlertActive {
		t.Fatalf("alert %s is %s after sending, want active", v.ID, v.Status)
	}
	return v
}

// setPolicy puts the county's alert policy as the admin.
func (h *testController) setPolicy(t *testing.T, p access.Policy) {
	t.Helper()
	h.admin.mustCall(t, http.StatusOK, "PUT", "/api/v1/settings/policy", p, nil)
}

// noApproval is a policy under which nothing waits for an approver, for
// tests that are not about approval.
func noApproval() access.Policy {
	return access.Policy{Approval: map[string][]int{}, DrillRoles: []string{access.Officer}}
}

// auditEntries reads the audit log, newest first, as the admin.
func (h *testController) auditEntries(t *testing.T, query string) []auditRow {
	t.Helper()
	var es []auditRow
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/audit?limit=100000&"+query, nil, &es)
	return es
}

// auditRow is an audit entry as the API shows it.
type auditRow struct {
	Seq    int64     `json:"seq"`
	At     time.Time `json:"at"`
	Actor  string    `json:"actor"`
	Source string    `json:"source"`
	Action string    `json:"action"`
	Target string    `json:"target"`
	Before string    `json:"before"`
	After  string    `json:"after"`
	Detail string    `json:"detail"`
}

// hasAudit reports whether es holds an entry of action by actor on target
// ("" matches any target).
func hasAudit(es []auditRow, action, actor, target string) bool {
	return slices.ContainsFunc(es, func(e auditRow) bool {
		return e.Action == action && e.Actor == actor && (target == "" || e.Target == target)
	})
}

// alertCount is how many alerts the admin sees.
func (h *testController) alertCount(t *testing.T) int {
	t.Helper()
	var as []AlertView
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts", nil, &as)
	return len(as)
}

// waitStatus polls until an alert has status.
func (h *testController) waitStatus(t *testing.T, id, status string) AlertView {
	t.Helper()
	var v AlertView
	waitFor(t, fmt.Sprintf("alert %s %s", id, status), func() bool {
		v = h.view(t, id)
		return v.Status == status
	})
	return v
}
