package controller

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"

	"dalaba/controller/access"
)

// everyone marks the routes every signed-in operator may call about themself.
var everyone = slices.Clone(access.Roles)

// routeRoles is who may call each route, written out from issue 3's role
// descriptions rather than derived from access.Can, so that a wrong grant
// or a wrong action on a route fails here. A route added to apiRoutes
// without a line here fails the test.
var routeRoles = map[string][]string{
	"GET /api/v1/me":                               everyone,
	"POST /api/v1/me/password":                     everyone,
	"POST /api/v1/signout":                         everyone,
	"POST /api/v1/signout/everywhere":              everyone,
	"GET /api/v1/tokens":                           everyone,
	"POST /api/v1/tokens":                          everyone,
	"DELETE /api/v1/tokens/{id}":                   everyone,
	"GET /api/v1/users":                            {access.Admin},
	"POST /api/v1/users":                           {access.Admin},
	"PATCH /api/v1/users/{name}":                   {access.Admin},
	"POST /api/v1/users/{name}/reset-password":     {access.Admin},
	"GET /api/v1/settings/policy":                  everyone,
	"PUT /api/v1/settings/policy":                  {access.Admin},
	"GET /api/v1/audit":                            {access.Admin},
	"GET /api/v1/audit.csv":                        {access.Admin},
	"GET /api/v1/audit/verify":                     {access.Admin},
	"GET /api/v1/ebd/packets":                      {access.Admin},
	"GET /api/v1/areas":                            everyone,
	"POST /api/v1/areas":                           {access.Admin},
	"GET /api/v1/terminals":                        everyone,
	"POST /api/v1/terminals":                       {access.Admin, access.Technician},
	"POST /api/v1/terminals/bulk":                  {access.Admin, access.Technician},
	"GET /api/v1/terminals/pending":                {access.Admin, access.Technician},
	"POST /api/v1/terminals/pending/{kid}/approve": {access.Admin, access.Technician},
	"GET /api/v1/terminals/{id}":                   everyone,
	"POST /api/v1/terminals/{id}/revoke":           {access.Admin, access.Technician},
	"POST /api/v1/terminals/{id}/config":           {access.Admin, access.Technician},
	"POST /api/v1/terminals/{id}/test-tone":        {access.Admin, access.Technician},
	"GET /api/v1/terminals/{id}/reports":           everyone,
	"GET /api/v1/reports":                          everyone,
	"GET /api/v1/faults":                           everyone,
	"POST /api/v1/media":                           {access.Officer, access.Cadre},
	"GET /api/v1/media":                            everyone,
	"POST /api/v1/media/tts":                       {access.Officer, access.Cadre},
	"GET /api/v1/media/{sha256}":                   everyone,
	"POST /api/v1/alerts":                          {access.Officer, access.Cadre},
	"GET /api/v1/live":                             {access.Officer, access.Cadre},
	"GET /api/v1/alerts":                           everyone,
	"GET /api/v1/alerts/{id}":                      everyone,
	"GET /api/v1/alerts/{id}/command":              everyone,
	"GET /api/v1/alerts/{id}/cap":                  everyone,
	"POST /api/v1/cap":                             {access.Officer},
	"POST /api/v1/alerts/{id}/cancel":              {access.Officer, access.Cadre},
	"GET /api/v1/approvals":                        {access.Approver},
	"POST /api/v1/alerts/{id}/approve":             {access.Approver},
	"POST /api/v1/alerts/{id}/reject":              {access.Approver},
	"POST /api/v1/alerts/{id}/review":              {access.Approver},
	"GET /api/v1/events":                           everyone,
	"GET /api/v1/console":                          everyone,
	"GET /api/v1/overview":                         everyone,
	"GET /api/v1/terminals/{id}/heartbeat":         everyone,
	"GET /api/v1/terminals/{id}/heartbeats":        everyone,
	"GET /api/v1/keys":                             {access.Admin},
	"POST /api/v1/keys/rotate":                     {access.Admin},
	"POST /api/v1/keys/{kid}/retire":               {access.Admin},
}

// probeBody is sent to every state-changing route: no route accepts an
// unknown field, so a role that gets past authorization is stopped by the
// body (400) or by the unknown id in the path (404) before anything
// changes. Routes that read no body act on an unknown id.
var probeBody = []byte(`{"matrix_probe":true}`)

// probePath fills a pattern's wildcards with ids that exist nowhere.
var probePath = strings.NewReplacer("{id}", "64502241020030000000099", "{kid}", "0123456789abcdef", "{name}", "nobody")

// TestRoleRouteMatrix tries every role against every authenticated route:
// a role without the route's action gets 403, one with it is let past
// authorization (its harmless request then answers 2xx, 400, 404 or 409).
func TestRoleRouteMatrix(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	// One county-wide user per role; the admin too is a second one, so
	// that Init's admin keeps its token to read the audit log.
	users := map[string]*client{}
	for _, role := range access.Roles {
		users[role] = h.role(t, role)
	}
	routes := h.c.apiRoutes()
	// Signing out everywhere revokes the caller's token: it goes last.
	slices.SortStableFunc(routes, func(a, b apiRoute) int {
		return boolInt(a.pattern == "POST /api/v1/signout/everywhere") - boolInt(b.pattern == "POST /api/v1/signout/everywhere")
	})
	for _, rt := range routes {
		allowed, ok := routeRoles[rt.pattern]
		if !ok {
			t.Errorf("route %s has no line in routeRoles: say which roles may call it", rt.pattern)
			continue
		}
		method, path, _ := strings.Cut(rt.pattern, " ")
		path = probePath.Replace(path)
		var body any
		if method != http.MethodGet {
			body = probeBody
		}
		for _, role := range access.Roles {
			may := slices.Contains(allowed, role)
			t.Run(rt.pattern+"/"+role, func(t *testing.T) {
				status, raw := probe(t, users[role], method, path, body)
				switch {
				case !may && status != http.StatusForbidden:
					t.Fatalf("status %d, want 403 for a %s: %s", status, role, raw)
				case !may:
					var e apiError
					if json.Unmarshal(raw, &e) != nil || !strings.Contains(e.Error, "your roles ("+role+") do not allow") {
						t.Fatalf("403 body %s does not name the role and the action", raw)
					}
				case status == http.StatusUnauthorized || status == http.StatusForbidden || status >= 500:
					t.Fatalf("status %d, want the %s let past authorization: %s", status, role, raw)
				}
			})
		}
	}
	// A refusal is audited, naming what was needed.
	if es := h.auditEntries(t, "action=access.denied&actor=viewer1"); len(es) == 0 || !strings.Contains(es[0].Detail, "needs ") {
		t.Fatalf("refusals of the viewer were not audited: %+v", es)
	}
}

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// probe calls a route and returns as soon as the status is known: an
// event stream that a role may open answers 200 and keeps going.
func probe(t *testing.T, cl *client, method, path string, body any) (int, []byte) {
	t.Helper()
	if path != "/api/v1/events" {
		return cl.call(t, method, path, body, nil)
	}
	req, err := http.NewRequest(method, cl.h.base+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+cl.bearer)
	resp, err := apiClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK {
		return resp.StatusCode, nil
	}
	var raw json.RawMessage
	json.NewDecoder(resp.Body).Decode(&raw)
	return resp.StatusCode, raw
}
