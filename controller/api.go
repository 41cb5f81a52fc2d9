package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// routes is the HTTP surface: the terminals' WebSocket endpoint and the
// JSON API (docs/api.md). Every API route but health needs a token.
func (c *Controller) routes() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/terminal", c.serveTerminal)
	mux.HandleFunc("GET /api/v1/health", c.apiHealth)
	for _, rt := range c.apiRoutes() {
		mux.Handle(rt.pattern, c.authed(rt.handle))
	}
	return mux
}

// apiRoute is one API route that needs a token.
type apiRoute struct {
	pattern string
	handle  func(w http.ResponseWriter, r *http.Request, by string)
}

// apiRoutes lists every authenticated route; tests walk it to check that
// none answers without a valid token.
func (c *Controller) apiRoutes() []apiRoute {
	return []apiRoute{
		{"GET /api/v1/areas", c.apiAreas},
		{"POST /api/v1/areas", c.apiPutArea},
		{"GET /api/v1/terminals", c.apiTerminals},
		{"POST /api/v1/terminals", c.apiEnroll},
		{"GET /api/v1/terminals/pending", c.apiPending},
		{"POST /api/v1/terminals/pending/{kid}/approve", c.apiApprove},
		{"GET /api/v1/terminals/{id}", c.apiTerminal},
		{"POST /api/v1/terminals/{id}/revoke", c.apiRevoke},
		{"POST /api/v1/terminals/{id}/config", c.apiConfigure},
		{"GET /api/v1/terminals/{id}/reports", c.apiReports},
		{"GET /api/v1/reports", c.apiReports},
		{"GET /api/v1/faults", c.apiFaults},
		{"POST /api/v1/media", c.apiUpload},
		{"GET /api/v1/media", c.apiMediaList},
		{"POST /api/v1/alerts", c.apiCreateAlert},
		{"GET /api/v1/alerts", c.apiAlerts},
		{"GET /api/v1/alerts/{id}", c.apiAlert},
		{"GET /api/v1/alerts/{id}/command", c.apiAlertCommand},
		{"POST /api/v1/alerts/{id}/cancel", c.apiCancel},
		{"GET /api/v1/events", c.apiEvents},
	}
}

// authed checks the bearer token before calling h with the token's name.
func (c *Controller) authed(h func(w http.ResponseWriter, r *http.Request, by string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		if !ok || tok == "" {
			writeError(w, http.StatusUnauthorized, errors.New("missing API token: send Authorization: Bearer <token> (dalaba init printed one)"))
			return
		}
		name, err := c.store.TokenName(r.Context(), HashSecret(tok))
		if err != nil {
			writeError(w, http.StatusUnauthorized, errors.New("API token is not valid"))
			return
		}
		h(w, r, name)
	})
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
	case errors.Is(err, store.ErrNotActive), errors.Is(err, ErrOffline):
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

func (c *Controller) apiAreas(w http.ResponseWriter, r *http.Request, by string) {
	areas, err := c.store.Areas(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, areas)
}

func (c *Controller) apiPutArea(w http.ResponseWriter, r *http.Request, by string) {
	var a store.Area
	if err := readJSON(r, &a); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := protocol.ValidAreaCode(a.Code); err != nil {
		c.fail(w, r, invalid("code", "%v", err))
		return
	}
	if a.Parent != "" {
		if ok, err := c.store.AreaExists(r.Context(), a.Parent); err != nil || !ok {
			c.fail(w, r, invalid("parent", "area %s is not in the area tree", a.Parent))
			return
		}
		if !protocol.AreaContains(a.Parent, a.Code) || a.Parent == a.Code {
			c.fail(w, r, invalid("parent", "%s does not lie inside %s", a.Code, a.Parent))
			return
		}
	}
	if err := c.store.PutArea(r.Context(), a); err != nil {
		c.fail(w, r, invalid("name", "%v", err))
		return
	}
	writeJSON(w, http.StatusOK, a)
}

func (c *Controller) apiTerminals(w http.ResponseWriter, r *http.Request, by string) {
	area := r.URL.Query().Get("area")
	if area != "" && protocol.ValidAreaCode(area) != nil {
		c.fail(w, r, invalid("area", "%v", protocol.ValidAreaCode(area)))
		return
	}
	ts, err := c.store.Terminals(r.Context(), area)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ts)
}

func (c *Controller) apiTerminal(w http.ResponseWriter, r *http.Request, by string) {
	t, err := c.store.Terminal(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, t)
}

// EnrollRequest creates a terminal and its one-time enrollment token.
type EnrollRequest struct {
	AreaCode   string   `json:"area_code"`
	Name       string   `json:"name"`
	Latitude   *float64 `json:"latitude"`
	Longitude  *float64 `json:"longitude"`
	ValidHours int      `json:"valid_hours"` // default 72
}

// EnrollResult carries the token a technician puts in the terminal's config.
type EnrollResult struct {
	Terminal    store.Terminal `json:"terminal"`
	EnrollToken string         `json:"enroll_token"`
	ValidUntil  time.Time      `json:"valid_until"`
}

func (c *Controller) apiEnroll(w http.ResponseWriter, r *http.Request, by string) {
	var req EnrollRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	res, err := c.Enroll(r.Context(), by, req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, res)
}

// checkNewTerminal checks the area and name of a terminal to create.
func (c *Controller) checkNewTerminal(ctx context.Context, req EnrollRequest) error {
	if err := protocol.ValidAreaCode(req.AreaCode); err != nil {
		return invalid("area_code", "%v", err)
	}
	if ok, err := c.store.AreaExists(ctx, req.AreaCode); err != nil {
		return err
	} else if !ok {
		return invalid("area_code", "area %s is not in the area tree; add it first", req.AreaCode)
	}
	if strings.TrimSpace(req.Name) == "" {
		return invalid("name", "a name is required (e.g. 大塘村1号)")
	}
	return nil
}

// Enroll creates a terminal awaiting its first connection.
func (c *Controller) Enroll(ctx context.Context, by string, req EnrollRequest) (EnrollResult, error) {
	if err := c.checkNewTerminal(ctx, req); err != nil {
		return EnrollResult{}, err
	}
	if req.ValidHours == 0 {
		req.ValidHours = 72
	}
	if req.ValidHours < 1 || req.ValidHours > 24*30 {
		return EnrollResult{}, invalid("valid_hours", "%d is outside 1..720", req.ValidHours)
	}
	code, err := NewSecret()
	if err != nil {
		return EnrollResult{}, err
	}
	now := c.now()
	until := now.Add(time.Duration(req.ValidHours) * time.Hour)
	t, err := c.store.CreateTerminal(ctx, store.NewTerminal{AreaCode: req.AreaCode, Name: req.Name, Latitude: req.Latitude, Longitude: req.Longitude},
		HashSecret(code), until, now)
	if err != nil {
		return EnrollResult{}, err
	}
	c.keyMu.RLock()
	fp := protocol.Fingerprint(c.keys[0].PublicKey)
	c.keyMu.RUnlock()
	c.log.Info("terminal created for enrollment", "terminal", t.ID, "area", t.AreaCode, "by", by)
	return EnrollResult{Terminal: t, EnrollToken: code + "." + fp, ValidUntil: until}, nil
}

func (c *Controller) apiPending(w http.ResponseWriter, r *http.Request, by string) {
	ps, err := c.store.PendingTerminals(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

func (c *Controller) apiApprove(w http.ResponseWriter, r *http.Request, by string) {
	var req EnrollRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.checkNewTerminal(r.Context(), req); err != nil {
		c.fail(w, r, err)
		return
	}
	t, err := c.store.ApprovePending(r.Context(), r.PathValue("kid"), store.NewTerminal{AreaCode: req.AreaCode, Name: req.Name,
		Latitude: req.Latitude, Longitude: req.Longitude}, c.now())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("pending terminal approved", "terminal", t.ID, "kid", r.PathValue("kid"), "by", by)
	writeJSON(w, http.StatusOK, t)
}

func (c *Controller) apiRevoke(w http.ResponseWriter, r *http.Request, by string) {
	id := r.PathValue("id")
	if err := c.store.Revoke(r.Context(), id); err != nil {
		c.fail(w, r, err)
		return
	}
	if s := c.hub.get(id); s != nil {
		s.close()
	}
	c.log.Info("terminal revoked", "terminal", id, "by", by)
	writeJSON(w, http.StatusOK, map[string]string{"revoked": id})
}

func (c *Controller) apiConfigure(w http.ResponseWriter, r *http.Request, by string) {
	var cfg protocol.Config
	if err := readJSON(r, &cfg); err != nil {
		c.fail(w, r, err)
		return
	}
	if err := c.ConfigureTerminal(r.Context(), by, r.PathValue("id"), cfg); err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, map[string]string{"sent": r.PathValue("id")})
}

func (c *Controller) apiReports(w http.ResponseWriter, r *http.Request, by string) {
	limit := 200
	if v := r.URL.Query().Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			c.fail(w, r, invalid("limit", "%q must be 1..10000", v))
			return
		}
		limit = n
	}
	rs, err := c.store.Reports(r.Context(), r.PathValue("id"), r.URL.Query().Get("kind"), limit)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rs)
}

func (c *Controller) apiFaults(w http.ResponseWriter, r *http.Request, by string) {
	fs, err := c.store.Faults(r.Context(), r.URL.Query().Get("active") != "false")
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, fs)
}

func (c *Controller) apiUpload(w http.ResponseWriter, r *http.Request, by string) {
	max := int64(c.cfg.MaxUploadMB) << 20
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, max))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("upload is larger than the limit of %d MB", c.cfg.MaxUploadMB))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("upload interrupted: %v", err))
		return
	}
	m, err := c.AddMedia(r.Context(), r.URL.Query().Get("name"), data)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.log.Info("media uploaded", "sha256", m.SHA256, "name", m.Name, "bytes", m.Size, "by", by)
	writeJSON(w, http.StatusCreated, m)
}

func (c *Controller) apiMediaList(w http.ResponseWriter, r *http.Request, by string) {
	ms, err := c.store.MediaList(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ms)
}

func (c *Controller) apiCreateAlert(w http.ResponseWriter, r *http.Request, by string) {
	var req AlertRequest
	if err := readJSON(r, &req); err != nil {
		c.fail(w, r, err)
		return
	}
	a, err := c.CreateAlert(r.Context(), by, req)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	v, err := c.View(r.Context(), a.ID, false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, v)
}

func (c *Controller) apiAlerts(w http.ResponseWriter, r *http.Request, by string) {
	as, err := c.store.Alerts(r.Context(), 200)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := make([]AlertView, 0, len(as))
	for _, a := range as {
		v, err := c.View(r.Context(), a.ID, false)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		out = append(out, v)
	}
	writeJSON(w, http.StatusOK, out)
}

func (c *Controller) apiAlert(w http.ResponseWriter, r *http.Request, by string) {
	v, err := c.View(r.Context(), r.PathValue("id"), true)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// apiAlertCommand returns the signed command exactly as terminals got it,
// for audit and for checking signatures independently.
func (c *Controller) apiAlertCommand(w http.ResponseWriter, r *http.Request, by string) {
	a, err := c.store.Alert(r.Context(), r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.Write(a.Signed)
}

func (c *Controller) apiCancel(w http.ResponseWriter, r *http.Request, by string) {
	var body struct {
		Reason string `json:"reason"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &body); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if err := c.CancelAlert(r.Context(), by, r.PathValue("id"), body.Reason); err != nil {
		c.fail(w, r, err)
		return
	}
	v, err := c.View(r.Context(), r.PathValue("id"), false)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, v)
}

// apiEvents streams events as Server-Sent Events; ?alert=ID narrows them to
// one alert's deliveries.
func (c *Controller) apiEvents(w http.ResponseWriter, r *http.Request, by string) {
	fl, ok := w.(http.Flusher)
	if !ok {
		writeError(w, http.StatusInternalServerError, errors.New("streaming unsupported"))
		return
	}
	alert := r.URL.Query().Get("alert")
	sub := c.events.Subscribe(1024, func(e events.Event) bool { return alert == "" || e.AlertID == alert })
	defer c.events.Unsubscribe(sub)
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
	fmt.Fprint(w, ": dalaba events\n\n")
	fl.Flush()
	keep := time.NewTicker(15 * time.Second)
	defer keep.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keep.C:
			fmt.Fprintf(w, ": keep-alive dropped=%d\n\n", sub.Dropped())
		case e := <-sub.C:
			data, _ := json.Marshal(e)
			fmt.Fprintf(w, "event: %s\ndata: %s\n\n", e.Kind, data)
		}
		fl.Flush()
	}
}
