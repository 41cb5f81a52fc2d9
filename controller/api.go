package controller

import (
	"encoding/json"
	"errors"
	"io"
	"net/http"

	"dalaba/controller/access"
	"dalaba/controller/console"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// routes is the HTTP surface: the terminals' WebSocket endpoint and the
// JSON API (docs/api.md). Every API route but health and sign-in needs a
// session or an API token, and names the action it performs.
func (c *Controller) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/terminal", c.serveTerminal)
	mux.HandleFunc("GET /api/v1/health", c.apiHealth)
	mux.HandleFunc("POST /api/v1/signin", c.apiSignIn)
	// The superior platform's packets: no session, authenticated by SM2 signature (docs/ebd.md).
	mux.HandleFunc("POST /ebd/packets", c.serveEBD)
	web := console.New() // the operators' web console (docs/console.md)
	mux.Handle("GET /{$}", web)
	mux.Handle("GET "+console.Prefix, web)
	for _, rt := range c.apiRoutes() {
		mux.Handle(rt.pattern, c.authed(rt.action, rt.handle))
	}
	return mux
}

// apiRoute is one API route that needs a signed-in principal.
type apiRoute struct {
	pattern string
	action  access.Action
	handle  func(w http.ResponseWriter, r *http.Request, p *principal)
}

// apiRoutes lists every authenticated route with the action it needs;
// tests walk it to check that none answers without a valid identity and
// each refuses the roles that lack its action. Scope (which areas) is
// checked inside the handlers, which know the targets.
func (c *Controller) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/v1/me", actionSelf, c.apiMe},
		{"POST /api/v1/me/password", actionSelf, c.apiChangePassword},
		{"POST /api/v1/signout", actionSelf, c.apiSignOut},
		{"POST /api/v1/signout/everywhere", actionSelf, c.apiSignOutEverywhere},
		{"GET /api/v1/tokens", actionSelf, c.apiTokens},
		{"POST /api/v1/tokens", actionSelf, c.apiCreateToken},
		{"DELETE /api/v1/tokens/{id}", actionSelf, c.apiRevokeToken},
		{"GET /api/v1/users", access.ManageUsers, c.apiUsers},
		{"POST /api/v1/users", access.ManageUsers, c.apiCreateUser},
		{"PATCH /api/v1/users/{name}", access.ManageUsers, c.apiUpdateUser},
		{"POST /api/v1/users/{name}/reset-password", access.ManageUsers, c.apiResetPassword},
		{"GET /api/v1/settings/policy", access.View, c.apiPolicy},
		{"PUT /api/v1/settings/policy", access.ManageSettings, c.apiSetPolicy},
		{"GET /api/v1/audit", access.ViewAudit, c.apiAudit},
		{"GET /api/v1/audit.csv", access.ViewAudit, c.apiAuditCSV},
		{"GET /api/v1/audit/verify", access.ViewAudit, c.apiAuditVerify},
		{"GET /api/v1/ebd/packets", access.ViewAudit, c.apiEBDPackets},
		{"GET /api/v1/areas", access.View, c.apiAreas},
		{"POST /api/v1/areas", access.ManageSettings, c.apiPutArea},
		{"GET /api/v1/terminals", access.View, c.apiTerminals},
		{"POST /api/v1/terminals", access.ManageTerminals, c.apiEnroll},
		{"POST /api/v1/terminals/bulk", access.ManageTerminals, c.apiBulkEnroll},
		{"GET /api/v1/terminals/pending", access.ManageTerminals, c.apiPending},
		{"POST /api/v1/terminals/pending/{kid}/approve", access.ManageTerminals, c.apiApprove},
		{"GET /api/v1/terminals/{id}", access.View, c.apiTerminal},
		{"POST /api/v1/terminals/{id}/revoke", access.ManageTerminals, c.apiRevoke},
		{"POST /api/v1/terminals/{id}/config", access.ManageTerminals, c.apiConfigure},
		{"POST /api/v1/terminals/{id}/test-tone", access.ManageTerminals, c.apiTestTone},
		{"GET /api/v1/terminals/{id}/reports", access.View, c.apiReports},
		{"GET /api/v1/reports", access.View, c.apiReports},
		{"GET /api/v1/faults", access.View, c.apiFaults},
		{"POST /api/v1/media", access.UploadMedia, c.apiUpload},
		{"GET /api/v1/media", access.View, c.apiMediaList},
		{"POST /api/v1/media/tts", access.UploadMedia, c.apiTTS},
		{"GET /api/v1/media/{sha256}", access.View, c.apiMediaFile},
		{"POST /api/v1/alerts", access.SendDaily, c.apiCreateAlert},
		{"GET /api/v1/live", access.SendDaily, c.apiLive},
		{"GET /api/v1/alerts", access.View, c.apiAlerts},
		{"GET /api/v1/alerts/{id}", access.View, c.apiAlert},
		{"GET /api/v1/alerts/{id}/command", access.View, c.apiAlertCommand},
		{"GET /api/v1/alerts/{id}/cap", access.View, c.apiAlertCAP},
		{"POST /api/v1/cap", access.SendEmergency, c.apiCAP},
		{"POST /api/v1/alerts/{id}/cancel", access.CancelAlert, c.apiCancel},
		{"GET /api/v1/approvals", access.ApproveAlert, c.apiApprovals},
		{"POST /api/v1/alerts/{id}/approve", access.ApproveAlert, c.apiApproveAlert},
		{"POST /api/v1/alerts/{id}/reject", access.ApproveAlert, c.apiRejectAlert},
		{"POST /api/v1/alerts/{id}/review", access.ApproveAlert, c.apiReviewAlert},
		{"GET /api/v1/programs", access.View, c.apiPrograms},
		{"POST /api/v1/programs", access.ManagePrograms, c.apiCreateProgram},
		{"GET /api/v1/programs/{id}", access.View, c.apiProgram},
		{"PATCH /api/v1/programs/{id}", access.ManagePrograms, c.apiUpdateProgram},
		{"DELETE /api/v1/programs/{id}", access.ManagePrograms, c.apiDeleteProgram},
		{"GET /api/v1/programs/{id}/occurrences", access.View, c.apiProgramOccurrences},
		{"GET /api/v1/events", access.View, c.apiEvents},
		{"GET /api/v1/console", access.View, c.apiConsole},
		{"GET /api/v1/overview", access.View, c.apiOverview},
		{"GET /api/v1/terminals/{id}/heartbeat", access.View, c.apiHeartbeat},
		{"GET /api/v1/terminals/{id}/heartbeats", access.View, c.apiHeartbeats},
		{"GET /api/v1/keys", access.ManageKeys, c.apiKeys},
		{"POST /api/v1/keys/rotate", access.ManageKeys, c.apiRotateKey},
		{"POST /api/v1/keys/{kid}/retire", access.ManageKeys, c.apiRetireKey},
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

// apiError is the body of every error answer.
type apiError struct {
	Error string `json:"error"`
	Field string `json:"field,omitempty"`
}

func writeError(w http.ResponseWriter, status int, err error) {
	body := apiError{Error: err.Error()}
	var ve *ValidationError
	if errors.As(err, &ve) {
		body.Field = ve.Field
	}
	writeJSON(w, status, body)
}

// fail maps an error to its HTTP status.
func (c *Controller) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ve *ValidationError
	switch {
	case errors.As(err, &ve), errors.Is(err, ErrBadMedia):
		writeError(w, http.StatusBadRequest, err)
	case errors.Is(err, store.ErrNotFound):
		writeError(w, http.StatusNotFound, err)
	case errors.Is(err, errForbidden):
		writeError(w, http.StatusForbidden, err)
	case errors.Is(err, store.ErrNotActive), errors.Is(err, ErrOffline), errors.Is(err, store.ErrNotPending), errors.Is(err, store.ErrExists):
		writeError(w, http.StatusConflict, err)
	default:
		c.log.Error("api", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("internal error; see the controller log"))
	}
}

// readJSON decodes a request body strictly, with a size bound.
func readJSON(r *http.Request, v any) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, 1<<20))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return invalid("body", "not valid JSON for this request: %v", err)
	}
	return nil
}

func (c *Controller) apiHealth(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"ok": true, "protocol": protocol.Version, "online": c.hub.online()})
}
