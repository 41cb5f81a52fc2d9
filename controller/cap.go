package controller

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net/url"
	"os"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"dalaba/cap"
	"dalaba/controller/store"
	"dalaba/protocol"
	"dalaba/tts"
)

// CAPConfig is the config key "cap" (docs/sources.md). Which senders are
// accepted, and whether each is issued at once or drafted for approval,
// is in "sources" (kind "cap").
type CAPConfig struct {
	// Trust lists the certificates trusted to sign for each sender.
	Trust []CAPTrust `json:"trust"`
	// Feeds are polled for new messages (an Atom feed of CAP messages, or
	// one CAP message).
	Feeds []CAPFeed `json:"feeds"`
	// Areas maps a geocode, written "valueName=value" (e.g. "SAME=006037"),
	// to the county's 12-digit area codes it covers.
	Areas map[string][]string `json:"areas"`
	// AreaCodeNames are geocode valueNames whose value is itself a 行政区划
	// 代码 (6 or 12 digits). Default: ["CPEAS Geographic Code"] (China's
	// early-warning platform).
	AreaCodeNames []string `json:"area_code_names"`
	// Events maps a CAP <event> or an <eventCode> value to a 5-character
	// event type; unmapped events take "00000".
	Events map[string]string `json:"events"`
	// Sender is the <sender> of exported alerts (default: this platform's
	// EBRID followed by "@dalaba").
	Sender string `json:"sender"`
}

// CAPTrust trusts the certificates in a PEM file to sign a sender's messages.
type CAPTrust struct {
	Sender   string `json:"sender"`
	CertFile string `json:"cert_file"`
}

// CAPFeed is a URL polled every IntervalSeconds (default 60).
type CAPFeed struct {
	URL             string `json:"url"`
	IntervalSeconds int    `json:"interval_seconds"`
}

func (cc CAPConfig) validate() error {
	var errs []error
	for i, t := range cc.Trust {
		if t.Sender == "" {
			errs = append(errs, fmt.Errorf("cap.trust[%d].sender: must be set", i))
		}
		if _, err := loadCerts(t.CertFile); err != nil {
			errs = append(errs, fmt.Errorf("cap.trust[%d].cert_file: %v", i, err))
		}
	}
	for i, f := range cc.Feeds {
		u, err := url.Parse(f.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("cap.feeds[%d].url: %q must be an http:// or https:// URL", i, f.URL))
		}
		if f.IntervalSeconds < 0 || f.IntervalSeconds > 86400 {
			errs = append(errs, fmt.Errorf("cap.feeds[%d].interval_seconds: %d is outside 1..86400 (0: 60)", i, f.IntervalSeconds))
		}
	}
	for k, codes := range cc.Areas {
		if name, value, ok := strings.Cut(k, "="); !ok || name == "" || value == "" {
			errs = append(errs, fmt.Errorf("cap.areas: key %q must be valueName=value, e.g. \"SAME=006037\"", k))
		}
		for _, code := range codes {
			if err := protocol.ValidAreaCode(code); err != nil {
				errs = append(errs, fmt.Errorf("cap.areas[%q]: %v", k, err))
			}
		}
	}
	for k, ev := range cc.Events {
		if len(ev) != 5 {
			errs = append(errs, fmt.Errorf("cap.events[%q]: %q must be 5 characters (e.g. 11B03)", k, ev))
		}
	}
	if cc.Sender != "" && strings.ContainsAny(cc.Sender, " \t\r\n,<&") {
		errs = append(errs, fmt.Errorf("cap.sender: %q must not contain spaces, commas, < or &", cc.Sender))
	}
	return errors.Join(errs...)
}

// loadCerts reads every certificate of a PEM file.
func loadCerts(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: %v", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	return out, nil
}

// capTrust lists the certificates trusted for a sender.
func (c *Controller) capTrust(sender string) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for _, t := range c.cfg.CAP.Trust {
		if t.Sender != sender {
			continue
		}
		certs, err := loadCerts(t.CertFile)
		if err != nil {
			return nil, fmt.Errorf("trust list of %s: %w", sender, err)
		}
		out = append(out, certs...)
	}
	return out, nil
}

// CAPResult says what became of a received CAP message.
type CAPResult struct {
	Sender     string   `json:"sender"`
	Identifier string   `json:"identifier"`
	Outcome    string   `json:"outcome"`
	AlertID    string   `json:"alert_id,omitempty"`
	Status     string   `json:"alert_status,omitempty"` // pending (waits for approval) or active
	Cancelled  []string `json:"cancelled,omitempty"`
	Duplicate  bool     `json:"duplicate"`
	SignedBy   string   `json:"signed_by,omitempty"`
}

// capInvalid turns a cap.Error into a ValidationError naming the element.
func capInvalid(err error) error {
	var ce *cap.Error
	if errors.As(err, &ce) {
		return invalid(ce.Element, "%s", ce.Msg)
	}
	return err
}

// ReceiveCAP processes one CAP 1.2 message, received through via ("api
// <user>" or "feed <url>"): hostile XML and malformed messages are refused
// with an error naming the element; the sender must be configured in
// "sources"; its signature is verified when present or required; a message
// seen before is answered from the record; then an Alert (or Update) becomes
// an alert through ingestAlert, and a Cancel (or Update) withdraws the alerts
// of the messages it references. Nothing is stored when it is refused.
func (c *Controller) ReceiveCAP(ctx context.Context, data []byte, via string) (CAPResult, error) {
	c.capMu.Lock() // one at a time: the duplicate check and the record agree
	defer c.capMu.Unlock()
	a, err := cap.Parse(data)
	if err != nil {
		return CAPResult{}, capInvalid(err)
	}
	src := Source{Kind: SourceCAP, Sender: a.Sender}
	sc, err := c.sourceConfig(src)
	if err != nil {
		return CAPResult{}, err
	}
	res := CAPResult{Sender: a.Sender, Identifier: a.Identifier}
	trust, err := c.capTrust(a.Sender)
	if err != nil {
		return res, err
	}
	if sc.RequireSignature || (cap.HasSignature(data) && len(trust) > 0) {
		signed, cert, err := cap.Verify(data, trust, c.now())
		if err != nil {
			return res, capInvalid(err)
		}
		if a, err = cap.Parse(signed); err != nil { // act only on the signed bytes
			return res, capInvalid(err)
		}
		if a.Sender != src.Sender {
			return res, fmt.Errorf("%w: the signed message is from %q, not %q", cap.ErrSignature, a.Sender, src.Sender)
		}
		if cert != nil {
			res.SignedBy = cert.Subject.String()
		}
	}
	if prev, err := c.store.CAPMessage(ctx, a.Sender, a.Identifier); err == nil {
		res.Outcome, res.AlertID, res.Duplicate, res.SignedBy = prev.Outcome, prev.AlertID, true, prev.SignedBy
		return res, nil
	} else if !errors.Is(err, store.ErrNotFound) {
		return res, err
	}
	if err := c.actOnCAP(ctx, src, a, &res); err != nil {
		return res, err
	}
	m := store.CAPMessage{Sender: a.Sender, Identifier: a.Identifier, Sent: a.Sent, MsgType: a.MsgType, Status: a.Status,
		ReceivedAt: c.now(), Via: via, SignedBy: res.SignedBy, AlertID: res.AlertID, Outcome: res.Outcome, Document: data}
	if err := c.store.PutCAPMessage(ctx, m); err != nil {
		return res, fmt.Errorf("record CAP message (its effect above stands): %w", err)
	}
	return res, nil
}

// actOnCAP does what a new, authenticated message asks.
func (c *Controller) actOnCAP(ctx context.Context, src Source, a *cap.Alert, res *CAPResult) error {
	var msgType int
	switch a.Status {
	case "Actual":
		msgType = protocol.MsgActual
	case "Exercise":
		msgType = protocol.MsgPlatformDrill
	default:
		res.Outcome = fmt.Sprintf("ignored: status %s is not broadcast", a.Status)
		return nil
	}
	if a.MsgType == "Ack" || a.MsgType == "Error" {
		res.Outcome = fmt.Sprintf("ignored: msgType %s is not broadcast", a.MsgType)
		return nil
	}
	var req AlertRequest
	if a.MsgType != "Cancel" {
		var err error
		if req, err = c.capRequest(ctx, a); err != nil {
			return err
		}
		req.MsgType = msgType
	}
	var replaced []string
	if a.MsgType == "Update" || a.MsgType == "Cancel" {
		ids, err := c.capReferenced(ctx, src, a)
		if err != nil {
			return err
		}
		replaced = ids
	}
	if a.MsgType != "Cancel" { // the new alert first: if it fails, nothing has changed
		al, err := c.ingestAlert(ctx, src, req)
		if err != nil {
			return err
		}
		res.AlertID, res.Status = al.ID, al.Status
	}
	for _, id := range replaced {
		err := c.ingestCancel(ctx, src, id, fmt.Sprintf("CAP %s %s", a.MsgType, a.Identifier))
		if errors.Is(err, store.ErrNotActive) {
			continue // already over
		}
		if err != nil {
			return err
		}
		res.Cancelled = append(res.Cancelled, id)
	}
	switch {
	case a.MsgType == "Cancel":
		res.Outcome = fmt.Sprintf("cancelled %d alert(s)", len(res.Cancelled))
		return nil
	case res.Status == store.AlertPending:
		res.Outcome = "alert " + res.AlertID + " waits for approval"
	default:
		res.Outcome = "alert " + res.AlertID + " issued"
	}
	if len(res.Cancelled) > 0 {
		res.Outcome += fmt.Sprintf(", replacing %s", strings.Join(res.Cancelled, ", "))
	}
	return nil
}

// capReferenced lists the alerts of the referenced messages received
// here, each of which must be the source's own. A Cancel that references
// none of them is refused.
func (c *Controller) capReferenced(ctx context.Context, src Source, a *cap.Alert) ([]string, error) {
	refs, err := cap.ParseReferences(a.References)
	if err != nil {
		return nil, invalid("alert/references", "%v", err)
	}
	var ids []string
	known := 0
	for _, r := range refs {
		m, err := c.store.CAPMessage(ctx, r.Sender, r.Identifier)
		if errors.Is(err, store.ErrNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		known++
		if m.AlertID == "" || slices.Contains(ids, m.AlertID) {
			continue
		}
		al, err := c.store.Alert(ctx, m.AlertID)
		if err != nil {
			return nil, err
		}
		if al.CreatedBy != src.Actor() { // checked before anything is done
			return nil, forbidden("referenced alert %s was not created by %s", al.ID, src.Actor())
		}
		ids = append(ids, m.AlertID)
	}
	if a.MsgType == "Cancel" && known == 0 {
		return nil, invalid("alert/references", "none of the %d referenced message(s) was received here; nothing to cancel", len(refs))
	}
	return ids, nil
}

// capRequest maps an Alert or Update to an alert request: the info block in
// a language with a voice (Chinese first), its severity and urgency to a
// level, its event to an event type, its geocodes to the county's areas,
// and its headline, description and instruction to speech (with any
// embedded audio resource after it).
func (c *Controller) capRequest(ctx context.Context, a *cap.Alert) (AlertRequest, error) {
	if len(a.Infos) == 0 {
		return AlertRequest{}, invalid("alert/info", "an %s needs an <info> block to broadcast", a.MsgType)
	}
	i, lang, err := c.capInfo(a)
	if err != nil {
		return AlertRequest{}, err
	}
	in, at := a.Infos[i], fmt.Sprintf("alert/info[%d]", i)
	areas, err := c.capAreas(in, at)
	if err != nil {
		return AlertRequest{}, err
	}
	now := c.now()
	req := AlertRequest{Class: protocol.ClassEmergency, Level: CAPLevel(in.Severity, in.Urgency), EventType: c.capEvent(in),
		Title: capTitle(in), Areas: areas}
	if in.Expires != "" {
		exp, _ := cap.ParseTime(in.Expires) // validated by Parse
		if !exp.After(now) {
			return AlertRequest{}, invalid(at+"/expires", "%s has passed: the alert is already over", in.Expires)
		}
		req.Expires = exp
		if limit := now.Add(protocol.MaxCommandLifetime - time.Minute); exp.After(limit) {
			req.Expires = limit
		}
	}
	speech, err := c.SpeakMedia(ctx, TTSRequest{Text: capText(in, lang, c.ttsMaxChars()), Lang: lang, AttentionTone: true})
	if ve := (*ValidationError)(nil); errors.As(err, &ve) {
		el := at + "/description"
		if ve.Field == "lang" {
			el = at + "/language"
		}
		return AlertRequest{}, invalid(el, "%s", ve.Msg)
	}
	if err != nil {
		return AlertRequest{}, err
	}
	req.Media = []string{speech.SHA256}
	for j, r := range in.Resources {
		if !strings.HasPrefix(r.MimeType, "audio/") || r.DerefURI == "" {
			continue
		}
		raw, err := base64.StdEncoding.DecodeString(strings.Join(strings.Fields(r.DerefURI), ""))
		if err != nil {
			return AlertRequest{}, invalid(fmt.Sprintf("%s/resource[%d]/derefUri", at, j), "not base64: %v", err)
		}
		m, err := c.AddMedia(ctx, fmt.Sprintf("cap-%s-%d", a.Identifier, j), raw)
		if err != nil {
			return AlertRequest{}, invalid(fmt.Sprintf("%s/resource[%d]/derefUri", at, j), "%v", err)
		}
		req.Media = append(req.Media, m.SHA256)
	}
	return req, nil
}

// capInfo picks the info block to speak: Chinese, else English, else the
// first whose language has a voice. CAP's default language is en-US.
func (c *Controller) capInfo(a *cap.Alert) (int, string, error) {
	eng, err := tts.New(c.cfg.TTS.engineConfig(c.cfg.MaxUploadMB))
	if err != nil {
		return 0, "", fmt.Errorf("%w: %v", ErrSpeech, err)
	}
	voices := eng.Languages()
	langOf := func(in cap.Info) string {
		l := strings.ToLower(in.Language)
		if l == "" {
			l = "en-us"
		}
		for _, v := range voices {
			if l == v || strings.HasPrefix(l, v+"-") {
				return v
			}
		}
		return ""
	}
	for _, want := range []string{"zh", "en", ""} {
		for i, in := range a.Infos {
			if l := langOf(in); l != "" && (want == "" || l == want) {
				return i, l, nil
			}
		}
	}
	return 0, "", invalid("alert/info[0]/language", "no info block is in a language with a voice (%s); configure tts.voices", strings.Join(voices, ", "))
}

// CAPLevel maps severity and urgency to the four levels: Extreme 1,
// Severe 2, Moderate 3, Minor and Unknown 4; an urgency other than
// Immediate or Expected (Future, Past, Unknown) lowers it by one, down to 4.
func CAPLevel(severity, urgency string) int {
	level := map[string]int{"Extreme": 1, "Severe": 2, "Moderate": 3}[severity]
	if level == 0 {
		level = 4
	}
	if urgency != "Immediate" && urgency != "Expected" {
		level = min(level+1, 4)
	}
	return level
}

// capEvent maps the event (or an eventCode value) through cap.events.
func (c *Controller) capEvent(in cap.Info) string {
	if ev, ok := c.cfg.CAP.Events[in.Event]; ok {
		return ev
	}
	for _, ec := range in.EventCodes {
		if ev, ok := c.cfg.CAP.Events[ec.Value]; ok {
			return ev
		}
	}
	return "00000"
}

// capAreas maps an info block's geocodes to the county's area codes.
func (c *Controller) capAreas(in cap.Info, at string) ([]string, error) {
	county := c.countyCode()
	names := c.cfg.CAP.AreaCodeNames
	if len(names) == 0 {
		names = []string{"CPEAS Geographic Code"}
	}
	var out []string
	add := func(code string) {
		if !slices.Contains(out, code) {
			out = append(out, code)
		}
	}
	for _, ar := range in.Areas {
		for _, g := range ar.Geocodes {
			if codes, ok := c.cfg.CAP.Areas[g.ValueName+"="+g.Value]; ok {
				for _, code := range codes {
					add(code)
				}
				continue
			}
			if !slices.Contains(names, g.ValueName) {
				continue
			}
			code := strings.TrimSpace(g.Value)
			if len(code) == 6 {
				code += "000000"
			}
			switch {
			case protocol.ValidAreaCode(code) != nil:
			case protocol.AreaContains(county, code):
				add(code)
			case protocol.AreaContains(code, county):
				add(county) // a city or province warning covers the whole county
			}
		}
	}
	if len(out) == 0 {
		return nil, invalid(at+"/area", "no geocode names a place in this county (%s); map the sender's geocodes in cap.areas", county)
	}
	return out, nil
}

func capTitle(in cap.Info) string {
	t := strings.TrimSpace(in.Headline)
	if t == "" {
		t = strings.TrimSpace(in.Event)
	}
	if utf8.RuneCountInString(t) > 100 {
		t = string([]rune(t)[:100]) + "…"
	}
	return t
}

// capText is what is read out: headline, description, instruction.
func capText(in cap.Info, lang string, maxChars int) string {
	sep := ". "
	if lang == "zh" {
		sep = "。"
	}
	var parts []string
	for _, s := range []string{in.Headline, in.Description, in.Instruction} {
		if s = strings.Join(strings.Fields(s), " "); s != "" {
			parts = append(parts, strings.TrimRight(s, ".。 "))
		}
	}
	if len(parts) == 0 {
		parts = []string{in.Event}
	}
	text := strings.Join(parts, sep) + strings.TrimSpace(sep)
	if r := []rune(text); len(r) > maxChars {
		text = string(r[:maxChars])
	}
	return text
}

func (c *Controller) ttsMaxChars() int {
	if c.cfg.TTS.MaxChars > 0 {
		return c.cfg.TTS.MaxChars
	}
	return tts.Default().MaxText
}
