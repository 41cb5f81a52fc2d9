package controller

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"dalaba/audio"
	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// AlertRequest is what an operator asks for. Zero values take defaults.
type AlertRequest struct {
	Class        string    `json:"class"`    // emergency (default) or daily
	MsgType      int       `json:"msg_type"` // 1 actual (default), 3..5 drill
	Level        int       `json:"level"`
	EventType    string    `json:"event_type"` // 5 characters, default "00000"
	Title        string    `json:"title"`
	Areas        []string  `json:"areas"`
	Terminals    []string  `json:"terminals"`
	Media        []string  `json:"media"`  // sha256 of uploaded media
	Repeat       int       `json:"repeat"` // default 1
	Volume       int       `json:"volume"` // 0 = the terminal's own volume
	NotBefore    time.Time `json:"not_before"`
	Expires      time.Time `json:"expires"`
	ValidMinutes int       `json:"valid_minutes"` // used when expires is zero
	PlayAt       time.Time `json:"play_at"`
	IssueNow     bool      `json:"issue_now"` // level 1 only, where enabled: send now, review afterwards
	test         bool      // a test tone (TestTone): class test, never from a request body
}

// ValidationError is a request an operator must correct. Field names the
// JSON field.
type ValidationError struct {
	Field string
	Msg   string
}

func (e *ValidationError) Error() string { return e.Field + ": " + e.Msg }

func invalid(field, format string, args ...any) error {
	return &ValidationError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// AlertView is an alert with its delivery tally.
type AlertView struct {
	store.Alert
	Drill      bool             `json:"drill"`
	Counts     map[string]int   `json:"counts"`
	Deliveries []store.Delivery `json:"deliveries,omitempty"`
}

// CreateAlert validates a request, resolves its targets and gives it an
// EBM id. When the county's policy wants a second person for its class and
// level, the exact command is kept, unsigned, for an approver (Decide);
// otherwise it is signed once for all targets, stored with a delivery row
// per terminal, and sent to every connected target. Permission and scope
// are the caller's to check (the API does, for its principal).
func (c *Controller) CreateAlert(ctx context.Context, by string, req AlertRequest) (store.Alert, error) {
	return c.createAlert(ctx, by, req, nil)
}

// createAlert is CreateAlert; a non-nil pendingOverride replaces the county
// policy's approval decision (an external source's own policy, ingest.go).
func (c *Controller) createAlert(ctx context.Context, by string, req AlertRequest, pendingOverride *bool) (store.Alert, error) {
	now := c.now()
	cmd, err := c.buildAlert(ctx, req, now)
	if err != nil {
		return store.Alert{}, err
	}
	targets, err := c.store.ActiveTargets(ctx, cmd.Targets)
	if err != nil {
		return store.Alert{}, err
	}
	if len(targets) == 0 {
		return store.Alert{}, invalid("areas", "no enrolled terminal in the chosen areas or terminals")
	}
	policy, err := c.Policy(ctx)
	if err != nil {
		return store.Alert{}, err
	}
	if cmd.Alert.Drill() && policy.DrillPriority != 0 {
		cmd.Alert.Priority = policy.DrillPriority
	}
	pending := policy.NeedsApproval(cmd.Alert.Class, cmd.Alert.Level)
	if pendingOverride != nil {
		pending = *pendingOverride
	}
	issueNow := req.IssueNow && pending
	if issueNow && !(policy.IssueNowLevel1 && cmd.Alert.Class == protocol.ClassEmergency && cmd.Alert.Level == 1) {
		return store.Alert{}, invalid("issue_now", "issue now is only for level 1 emergencies, and only where the county enabled it")
	}
	pending = pending && !issueNow
	seq, err := c.store.NextEBMSequence(ctx, now.In(protocol.Beijing).Format("20060102"))
	if err != nil {
		return store.Alert{}, err
	}
	if cmd.Alert.EBMID, err = protocol.NewEBMID(c.cfg.PlatformEBRID, now, seq); err != nil {
		return store.Alert{}, err
	}
	if err := cmd.Validate(); err != nil {
		return store.Alert{}, invalid("alert", "%v", err)
	}
	payload, err := json.Marshal(cmd)
	if err != nil {
		return store.Alert{}, err
	}
	a := store.Alert{ID: cmd.Alert.EBMID, CommandID: cmd.ID, Class: cmd.Alert.Class, MsgType: cmd.Alert.MsgType,
		Level: cmd.Alert.Level, EventType: cmd.Alert.EventType, Title: cmd.Alert.Title, Targets: cmd.Targets,
		CreatedAt: now, CreatedBy: by, NotBefore: cmd.NotBefore, Expires: cmd.Expires, Draft: payload, NeedsReview: issueNow}
	if pending {
		a.Status = store.AlertPending
		if err := c.store.CreateAlert(ctx, a, nil, now); err != nil {
			return store.Alert{}, err
		}
		c.log.Info("alert waits for approval", "alert", a.ID, "by", by, "level", a.Level, "class", a.Class)
		c.events.Publish(events.Event{Kind: events.KindAlert, AlertID: a.ID, Data: a})
		return a, nil
	}
	a.Status = store.AlertActive
	a.Signed = c.signPayload(payload)
	if err := c.store.CreateAlert(ctx, a, targets, now); err != nil {
		return store.Alert{}, err
	}
	if issueNow {
		c.log.Warn("LEVEL 1 ALERT ISSUED WITHOUT APPROVAL (issue now); it must be reviewed", "alert", a.ID, "by", by)
	}
	c.dispatch(ctx, a, targets)
	return a, nil
}

// signPayload signs exact command bytes with the active issuing key.
func (c *Controller) signPayload(payload []byte) []byte {
	c.keyMu.RLock()
	sc := protocol.SignBytes(payload, c.signer)
	c.keyMu.RUnlock()
	signed, _ := json.Marshal(sc)
	return signed
}

// dispatch announces a signed alert and sends it to its terminals.
func (c *Controller) dispatch(ctx context.Context, a store.Alert, targets []string) {
	c.log.Info("alert issued", "alert", a.ID, "by", a.CreatedBy, "level", a.Level, "class", a.Class, "terminals", len(targets))
	c.events.Publish(events.Event{Kind: events.KindAlert, AlertID: a.ID, Data: a})
	c.deliverAll(ctx, a.ID, a.Signed, targets)
}

// deliver sends a signed command to terminal id over s (nil when it is not
// connected) and moves its delivery from state to sent, or to offline.
func (c *Controller) deliver(ctx context.Context, s *session, id, alertID string, signed []byte, state string) {
	next := protocol.DeliveryOffline
	if s != nil {
		msg, err := json.Marshal(protocol.Frame{Type: protocol.TypeCommand, Body: signed})
		if err == nil && s.send(msg) {
			next = protocol.DeliverySent
		}
	}
	if !protocol.DeliveryAdvances(state, next) {
		return
	}
	d := store.Delivery{AlertID: alertID, TerminalID: id, State: next, UpdatedAt: c.now()}
	c.hub.reports.delivered(ctx, d, func(changed bool, err error) {
		if err != nil {
			c.log.Error("record delivery", "alert", alertID, "terminal", id, "err", err)
		} else if changed {
			c.publishDelivery(d)
		}
	})
}

// ConfigureTerminal signs a config command for one connected terminal.
func (c *Controller) ConfigureTerminal(ctx context.Context, by, id string, cfg protocol.Config) error {
	t, err := c.store.Terminal(ctx, id)
	if err != nil {
		return err
	}
	if err := cfg.Validate(); err != nil {
		return invalid("config", "%v", err)
	}
	s := c.hub.get(t.ID)
	if s == nil {
		return fmt.Errorf("terminal %s is offline; try again when it is connected: %w", id, ErrOffline)
	}
	now := c.now()
	cmd := &protocol.Command{ID: newCommandID(), Kind: protocol.KindConfig, IssuedAt: now, NotBefore: now.Add(-time.Minute),
		Expires: now.Add(10 * time.Minute), Targets: protocol.Targets{Terminals: []string{t.ID}}, Config: &cfg}
	sc, err := c.sign(cmd)
	if err != nil {
		return err
	}
	if !s.sendFrame(protocol.TypeCommand, sc) {
		return fmt.Errorf("terminal %s: %w", id, ErrOffline)
	}
	c.log.Info("terminal configured", "terminal", id, "by", by, "command", cmd.ID)
	return nil
}

// ErrOffline is returned for an action that needs a connected terminal.
var ErrOffline = errors.New("terminal is not connected")

func (c *Controller) buildAlert(ctx context.Context, req AlertRequest, now time.Time) (*protocol.Command, error) {
	if req.Class == "" {
		req.Class = protocol.ClassEmergency
	}
	if req.MsgType == 0 {
		req.MsgType = protocol.MsgActual
	}
	if req.EventType == "" {
		req.EventType = "00000"
	}
	if req.Repeat == 0 {
		req.Repeat = 1
	}
	if strings.TrimSpace(req.Title) == "" {
		return nil, invalid("title", "a title is required")
	}
	if err := checkAlertFields(req); err != nil {
		return nil, err
	}
	if err := checkWindow(&req, now, c.cfg.DefaultValidMin); err != nil {
		return nil, err
	}
	if len(req.Media) == 0 {
		return nil, invalid("media", "upload audio first and give its sha256")
	}
	media := make([]protocol.Media, 0, len(req.Media))
	for _, sha := range req.Media {
		m, err := c.store.MediaByHash(ctx, sha)
		if errors.Is(err, store.ErrNotFound) {
			return nil, invalid("media", "no uploaded media with sha256 %s", sha)
		} else if err != nil {
			return nil, err
		}
		media = append(media, m.Media)
	}
	targets, err := checkTargets(req.Areas, req.Terminals)
	if err != nil {
		return nil, err
	}
	cmd := &protocol.Command{
		ID: newCommandID(), Kind: protocol.KindAlert, IssuedAt: issuedAt(req, now), NotBefore: req.NotBefore, Expires: req.Expires,
		Targets: targets,
		Alert: &protocol.Alert{
			Class: req.Class, MsgType: req.MsgType, Level: req.Level,
			EventType: req.EventType, Title: req.Title, PlayAt: req.PlayAt, Repeat: req.Repeat, Volume: req.Volume, Media: media,
		},
	}
	if req.test {
		cmd.Alert.Class = protocol.ClassTest
	}
	// Check the whole command, with a stand-in id, before spending a
	// sequence number: only an alert that is then stored consumes one.
	cmd.Alert.EBMID = c.cfg.PlatformEBRID + now.In(protocol.Beijing).Format("20060102") + "0001"
	if err := cmd.Validate(); err != nil {
		return nil, invalid("alert", "%v", err)
	}
	return cmd, nil
}

// issuedAt is the command's issue time: now, or an earlier not_before.
func issuedAt(req AlertRequest, now time.Time) time.Time {
	if req.NotBefore.Before(now) {
		return req.NotBefore
	}
	return now
}

// checkAlertFields applies protocol.Alert's rules to the request so that an
// error names the request field (protocol.Alert.Validate names the alert).
func checkAlertFields(req AlertRequest) error {
	switch req.Class {
	case protocol.ClassEmergency, protocol.ClassDaily:
	default:
		return invalid("class", "%q must be %q or %q", req.Class, protocol.ClassEmergency, protocol.ClassDaily)
	}
	if req.MsgType != protocol.MsgActual && (req.MsgType < protocol.MsgPlatformDrill || req.MsgType > protocol.MsgTerminalDrill) {
		return invalid("msg_type", "%d must be 1 (actual) or 3..5 (drill); to cancel an alert, use its cancel action", req.MsgType)
	}
	minLevel := 1
	if req.Class == protocol.ClassDaily {
		minLevel = 0
	}
	if req.Level < minLevel || req.Level > 4 {
		return invalid("level", "%d must be %d..4 for a %s alert (1 特别重大 .. 4 一般)", req.Level, minLevel, req.Class)
	}
	if len(req.EventType) != 5 {
		return invalid("event_type", "%q must be 5 characters (e.g. 11000)", req.EventType)
	}
	if req.Repeat < 1 || req.Repeat > 100 {
		return invalid("repeat", "%d must be 1..100", req.Repeat)
	}
	if req.Volume < 0 || req.Volume > 100 {
		return invalid("volume", "%d must be 0..100 (0: the terminal's own volume)", req.Volume)
	}
	return nil
}

// checkTargets checks an operator's target set: area codes and terminal
// ids well formed, and the set valid as a command's targets.
func checkTargets(areas, terminals []string) (protocol.Targets, error) {
	for _, a := range areas {
		if err := protocol.ValidAreaCode(a); err != nil {
			return protocol.Targets{}, invalid("areas", "%v", err)
		}
	}
	for _, t := range terminals {
		if err := protocol.ValidEBRID(t); err != nil {
			return protocol.Targets{}, invalid("terminals", "%v", err)
		}
	}
	tg := protocol.Targets{Areas: areas, Terminals: terminals}
	if err := tg.Validate(); err != nil {
		return protocol.Targets{}, invalid("areas", "%v", err)
	}
	return tg, nil
}

// checkWindow fills in the validity window's defaults and checks it: it
// must not have ended, must not be empty, and must fit a command's lifetime.
func checkWindow(req *AlertRequest, now time.Time, defaultMin int) error {
	maxMin := int(protocol.MaxCommandLifetime / time.Minute)
	if req.ValidMinutes < 0 || req.ValidMinutes > maxMin {
		return invalid("valid_minutes", "%d is outside 1..%d", req.ValidMinutes, maxMin)
	}
	if req.NotBefore.Sub(now) > protocol.MaxCommandLifetime {
		return invalid("not_before", "%s is more than %s ahead", req.NotBefore.Format(time.RFC3339), protocol.MaxCommandLifetime)
	}
	if req.NotBefore.IsZero() {
		req.NotBefore = now
	}
	if req.Expires.IsZero() {
		mins := req.ValidMinutes
		if mins == 0 {
			mins = defaultMin
		}
		req.Expires = req.NotBefore.Add(time.Duration(mins) * time.Minute)
	}
	if !req.Expires.After(now) {
		return invalid("expires", "the validity window has already ended (%s)", req.Expires.Format(time.RFC3339))
	}
	if !req.Expires.After(req.NotBefore) {
		return invalid("expires", "%s is not after not_before %s", req.Expires.Format(time.RFC3339), req.NotBefore.Format(time.RFC3339))
	}
	if life := req.Expires.Sub(issuedAt(*req, now)); life > protocol.MaxCommandLifetime {
		field := "expires"
		if req.ValidMinutes != 0 && req.Expires.Equal(req.NotBefore.Add(time.Duration(req.ValidMinutes)*time.Minute)) {
			field = "valid_minutes"
		}
		return invalid(field, "the window of %s is longer than the maximum %s", life.Round(time.Minute), protocol.MaxCommandLifetime)
	}
	return nil
}

// CancelAlert signs a cancel for an active alert and sends it to every
// target that may have it.
func (c *Controller) CancelAlert(ctx context.Context, by, id, reason string) error {
	a, err := c.store.Alert(ctx, id)
	if err != nil {
		return err
	}
	now := c.now()
	if a.Status == store.AlertPending {
		if reason == "" {
			reason = "withdrawn before approval"
		}
		if err := c.store.WithdrawAlert(ctx, id, reason, now); err != nil {
			return err
		}
		c.log.Info("pending alert withdrawn", "alert", id, "by", by, "reason", reason)
		if w, err := c.store.Alert(ctx, id); err == nil {
			c.events.Publish(events.Event{Kind: events.KindAlert, At: now, AlertID: id, Data: w})
		}
		return nil
	}
	cmd := &protocol.Command{ID: newCommandID(), Kind: protocol.KindCancel, IssuedAt: now, NotBefore: now.Add(-time.Minute),
		Expires: a.Expires, Targets: a.Targets, Cancel: &protocol.Cancel{EBMID: a.ID, Reason: reason}}
	if !cmd.Expires.After(now) {
		return fmt.Errorf("alert %s: %w (its validity already ended)", id, store.ErrNotActive)
	}
	sc, err := c.sign(cmd)
	if err != nil {
		return err
	}
	signed, _ := json.Marshal(sc)
	changed, err := c.store.CancelAlert(ctx, id, signed, now)
	if err != nil {
		return err
	}
	for _, d := range changed {
		c.publishDelivery(d)
	}
	c.log.Info("alert cancelled", "alert", id, "by", by, "reason", reason)
	msg, _ := json.Marshal(protocol.Frame{Type: protocol.TypeCommand, Body: signed})
	ds, err := c.store.Deliveries(ctx, id)
	if err != nil {
		return err
	}
	for _, d := range ds {
		if protocol.DeliveryFinal(d.State) {
			continue
		}
		if s := c.hub.get(d.TerminalID); s != nil {
			s.send(msg)
		}
	}
	return nil
}

// View returns an alert with its counts and, if asked, its deliveries.
func (c *Controller) View(ctx context.Context, id string, withDeliveries bool) (AlertView, error) {
	a, err := c.store.Alert(ctx, id)
	if err != nil {
		return AlertView{}, err
	}
	v := AlertView{Alert: a, Drill: a.MsgType >= protocol.MsgPlatformDrill}
	if v.Counts, err = c.store.Counts(ctx, id); err != nil {
		return v, err
	}
	if withDeliveries {
		v.Deliveries, err = c.store.Deliveries(ctx, id)
	}
	return v, err
}

func newCommandID() string {
	b := make([]byte, 16)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Test tone: TestToneSeconds of TestToneHz, at a daily notice's priority.
const (
	TestToneHz      = 1000
	TestToneSeconds = 3
)

// TestTone makes one connected terminal play a short tone: a signed alert
// of class test, level 0, to that terminal only, valid a few minutes and
// never held for approval, so its delivery and receipts are an alert's.
// Permission and scope are the caller's to check.
func (c *Controller) TestTone(ctx context.Context, by, terminalID string) (store.Alert, error) {
	t, err := c.store.Terminal(ctx, terminalID)
	if err != nil {
		return store.Alert{}, err
	}
	if t.Status != store.TerminalActive || c.hub.get(t.ID) == nil {
		return store.Alert{}, fmt.Errorf("terminal %s is offline; try again when it is connected: %w", t.ID, ErrOffline)
	}
	tone, err := c.AddMedia(ctx, "test-tone-1khz.wav", audio.ToneWAV(TestToneHz, TestToneSeconds*time.Second, 16000, 0.5))
	if err != nil {
		return store.Alert{}, err
	}
	never := false
	return c.createAlert(ctx, by, AlertRequest{Class: protocol.ClassDaily, Level: 0, Title: "测试音 test tone · " + t.Name,
		Terminals: []string{t.ID}, Media: []string{tone.SHA256}, ValidMinutes: 5, test: true}, &never)
}
