package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"dalaba/cap"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// apiCAP receives one CAP 1.2 message (POST /api/v1/cap, the XML as the
// body). The caller is an officer's API token or session; the message's
// own sender must be configured in "sources", and its policy decides.
func (c *Controller) apiCAP(w http.ResponseWriter, r *http.Request, p *principal) {
	data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, cap.MaxSize))
	var tooBig *http.MaxBytesError
	switch {
	case errors.As(err, &tooBig):
		writeError(w, http.StatusRequestEntityTooLarge, fmt.Errorf("document: larger than the limit of %d bytes", cap.MaxSize))
		return
	case err != nil:
		writeError(w, http.StatusBadRequest, fmt.Errorf("upload interrupted: %v", err))
		return
	}
	res, err := c.ReceiveCAP(r.Context(), data, "api "+p.name())
	target := res.Sender + "/" + res.Identifier
	if err != nil {
		c.auditAs(r.Context(), p, "cap.refuse", target, "", "", err.Error())
		c.failCAP(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "cap.receive", target, "", res.Outcome, fmt.Sprintf("duplicate %v, signed by %q", res.Duplicate, res.SignedBy))
	status := http.StatusOK
	if res.AlertID != "" && !res.Duplicate {
		status = http.StatusCreated
	}
	writeJSON(w, status, res)
}

// failCAP answers an unauthenticated message (unknown sender, signature)
// with 403 and everything else as fail does.
func (c *Controller) failCAP(w http.ResponseWriter, r *http.Request, err error) {
	if errors.Is(err, ErrUnknownSource) || errors.Is(err, cap.ErrSignature) {
		writeError(w, http.StatusForbidden, err)
		return
	}
	if errors.Is(err, ErrSpeech) {
		writeError(w, http.StatusServiceUnavailable, err)
		return
	}
	c.fail(w, r, err)
}

// apiAlertCAP exports an issued alert as CAP 1.2.
func (c *Controller) apiAlertCAP(w http.ResponseWriter, r *http.Request, p *principal) {
	a, err := c.visibleAlert(r.Context(), p, r.PathValue("id"))
	if err == nil && len(a.Signed) == 0 {
		err = fmt.Errorf("alert %s is %s and was never issued: %w", a.ID, a.Status, store.ErrNotFound)
	}
	var doc []byte
	if err == nil {
		doc, err = c.ExportCAP(r.Context(), a)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/cap+xml; charset=utf-8")
	w.Header().Set("Content-Disposition", fmt.Sprintf("attachment; filename=%q", a.ID+".cap.xml"))
	w.Write(doc)
}

// capSeverity is CAPLevel's inverse for export.
var capSeverity = map[int]string{1: "Extreme", 2: "Severe", 3: "Moderate", 4: "Minor"}

// ExportCAP writes an issued alert as a CAP 1.2 message: identifier the
// EBM id, severity from the level, one area per target (its name, and its
// 12-digit code as a "CPEAS Geographic Code" geocode, or the terminal's
// EBRID), and the audio as resources.
func (c *Controller) ExportCAP(ctx context.Context, a store.Alert) ([]byte, error) {
	var cmd protocol.Command
	if err := json.Unmarshal(a.Draft, &cmd); err != nil || cmd.Alert == nil {
		return nil, fmt.Errorf("alert %s: stored command unreadable: %v", a.ID, err)
	}
	sender := c.cfg.CAP.Sender
	if sender == "" {
		sender = c.cfg.PlatformEBRID + "@dalaba"
	}
	status := "Actual"
	if a.MsgType >= protocol.MsgPlatformDrill {
		status = "Exercise"
	}
	sent := a.CreatedAt
	if !a.ApprovedAt.IsZero() {
		sent = a.ApprovedAt
	}
	severity := capSeverity[a.Level]
	if severity == "" {
		severity = "Unknown"
	}
	in := cap.Info{Language: "zh-CN", Categories: []string{"Other"}, Event: a.Title, Urgency: "Immediate", Severity: severity,
		Certainty: "Observed", EventCodes: []cap.Value{{ValueName: "EBM EventType", Value: a.EventType}},
		Effective: cap.FormatTime(a.NotBefore), Expires: cap.FormatTime(a.Expires), Headline: a.Title,
		Parameters: []cap.Value{{ValueName: "EBM Level", Value: strconv.Itoa(a.Level)}, {ValueName: "EBM Class", Value: a.Class},
			{ValueName: "EBM MsgType", Value: strconv.Itoa(a.MsgType)}}}
	areas, err := c.store.Areas(ctx)
	if err != nil {
		return nil, err
	}
	names := map[string]string{}
	for _, ar := range areas {
		names[ar.Code] = ar.Name
	}
	for _, code := range a.Targets.Areas {
		name := names[code]
		if name == "" {
			name = code
		}
		in.Areas = append(in.Areas, cap.Area{AreaDesc: name, Geocodes: []cap.Value{{ValueName: "CPEAS Geographic Code", Value: code}}})
	}
	for _, id := range a.Targets.Terminals {
		in.Areas = append(in.Areas, cap.Area{AreaDesc: "terminal " + id, Geocodes: []cap.Value{{ValueName: "EBRID", Value: id}}})
	}
	for _, m := range cmd.Alert.Media {
		in.Resources = append(in.Resources, cap.Resource{ResourceDesc: "audio " + m.SHA256, MimeType: mimeOf(m.Format),
			Size: strconv.FormatInt(m.Size, 10), URI: "/api/v1/media/" + m.SHA256})
	}
	out := &cap.Alert{Identifier: a.ID, Sender: sender, Sent: cap.FormatTime(sent), Status: status, MsgType: "Alert",
		Scope: "Public", Infos: []cap.Info{in}}
	if a.Status != store.AlertActive {
		out.Note = "status " + a.Status
	}
	return cap.Marshal(out)
}

func mimeOf(format string) string {
	if format == "mp3" {
		return "audio/mpeg"
	}
	return "audio/wav"
}

// capClient fetches feeds: bounded in time, no cookies.
var capClient = &http.Client{Timeout: 20 * time.Second}

// capPollLoop polls every configured feed until ctx ends.
func (c *Controller) capPollLoop(ctx context.Context) {
	for _, f := range c.cfg.CAP.Feeds {
		go func() {
			every := time.Duration(f.IntervalSeconds) * time.Second
			if every == 0 {
				every = time.Minute
			}
			t := time.NewTicker(every)
			defer t.Stop()
			for {
				c.pollFeed(ctx, f.URL)
				select {
				case <-ctx.Done():
					return
				case <-t.C:
				}
			}
		}()
	}
}

// pollFeed fetches one feed (or single message) and receives every CAP
// message it names; errors are logged and the next poll tries again.
func (c *Controller) pollFeed(ctx context.Context, feedURL string) {
	log := c.log.With("feed", feedURL)
	data, err := fetchCAP(ctx, feedURL)
	if err != nil {
		log.Warn("CAP feed unreachable", "err", err)
		return
	}
	isAlert, entries, err := cap.Document(data)
	if err != nil {
		log.Warn("CAP feed refused", "err", err)
		return
	}
	if isAlert {
		c.receiveFromFeed(ctx, feedURL, feedURL, data)
		return
	}
	base, _ := url.Parse(feedURL)
	for _, e := range entries {
		ref, err := url.Parse(e.Link)
		if err != nil {
			log.Warn("CAP feed entry link", "entry", e.ID, "err", err)
			continue
		}
		u := base.ResolveReference(ref)
		if u.Scheme != "http" && u.Scheme != "https" {
			log.Warn("CAP feed entry link is not http(s)", "entry", e.ID, "link", e.Link)
			continue
		}
		doc, err := fetchCAP(ctx, u.String())
		if err != nil {
			log.Warn("CAP message unreachable", "url", u.String(), "err", err)
			continue
		}
		c.receiveFromFeed(ctx, feedURL, u.String(), doc)
	}
}

// receiveFromFeed receives a polled message; new ones are audited as done
// by the system for the feed.
func (c *Controller) receiveFromFeed(ctx context.Context, feedURL, docURL string, data []byte) {
	res, err := c.ReceiveCAP(ctx, data, "feed "+feedURL)
	target := res.Sender + "/" + res.Identifier
	switch {
	case err != nil:
		c.log.Warn("CAP message refused", "feed", feedURL, "url", docURL, "err", err)
		c.audit(ctx, "system", "feed "+feedURL, "cap.refuse", target, "", "", docURL+": "+err.Error())
	case !res.Duplicate:
		c.log.Info("CAP message received", "feed", feedURL, "sender", res.Sender, "identifier", res.Identifier, "outcome", res.Outcome)
		c.audit(ctx, "system", "feed "+feedURL, "cap.receive", target, "", res.Outcome, docURL)
	}
}

// fetchCAP GETs a document of at most cap.MaxSize bytes.
func fetchCAP(ctx context.Context, u string) ([]byte, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", "application/cap+xml, application/atom+xml, application/xml")
	resp, err := capClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("%s: %s", u, resp.Status)
	}
	data, err := io.ReadAll(io.LimitReader(resp.Body, cap.MaxSize+1))
	if err != nil {
		return nil, err
	}
	if len(data) > cap.MaxSize {
		return nil, fmt.Errorf("%s: larger than %d bytes", u, cap.MaxSize)
	}
	return data, nil
}
