package controller

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"dalaba/controller/access"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// Kinds of external alert sources.
const (
	SourceCAP = "cap" // OASIS CAP 1.2 (weather services, early-warning platforms)
	SourceEBD = "ebd" // GD/J-GY/T EBD packets from the superior platform
)

// Source names the external origin of an alert that no operator composed:
// its kind and the sender's own id (CAP <sender>; for EBD the sending
// platform's EBRID). Its Actor is who the audit log and the alert's
// created_by name.
type Source struct {
	Kind   string
	Sender string
}

// Actor is the source as an audit actor and alert author, e.g.
// "cap:w-nws.webmaster@noaa.gov". It never equals an operator's name (those
// have no colon), so any approver may decide on a source's draft.
func (s Source) Actor() string { return s.Kind + ":" + s.Sender }

// SourceConfig is the controller's policy for one external sender
// (config key "sources"; docs/sources.md).
type SourceConfig struct {
	Kind   string `json:"kind"`   // "cap" or "ebd"
	Sender string `json:"sender"` // CAP <sender>, or the EBD platform's EBRID
	Name   string `json:"name"`   // shown to operators, e.g. "融安县气象局"
	// Issue is "draft" (the default: an approver decides, whatever the
	// county's approval policy says) or "auto" (issued at once).
	Issue string `json:"issue"`
	// RequireSignature refuses this sender's messages unless they carry a
	// valid signature from the trust list. "auto" needs it for CAP: an
	// unsigned message could be posted by anyone holding an officer's token.
	RequireSignature bool `json:"require_signature"`
}

// Issue policies of a source.
const (
	IssueDraft = "draft"
	IssueAuto  = "auto"
)

func (s SourceConfig) validate(key string) error {
	if s.Kind != SourceCAP && s.Kind != SourceEBD {
		return fmt.Errorf("%s.kind: %q must be %q or %q", key, s.Kind, SourceCAP, SourceEBD)
	}
	if strings.TrimSpace(s.Sender) == "" || strings.ContainsAny(s.Sender, " \t\r\n,&<\"") {
		return fmt.Errorf("%s.sender: %q must be the sender's id, without spaces, commas or & < \"", key, s.Sender)
	}
	if s.Issue != "" && s.Issue != IssueDraft && s.Issue != IssueAuto {
		return fmt.Errorf("%s.issue: %q must be %q or %q", key, s.Issue, IssueDraft, IssueAuto)
	}
	if s.Kind == SourceCAP && s.Issue == IssueAuto && !s.RequireSignature {
		return fmt.Errorf("%s.issue: \"auto\" for a CAP sender needs \"require_signature\": true (an unsigned message must wait for an approver)", key)
	}
	return nil
}

// validateSources checks the "sources" list: each entry, and no sender twice.
func (c Config) validateSources() []error {
	var errs []error
	seen := map[Source]bool{}
	for i, s := range c.Sources {
		key := fmt.Sprintf("sources[%d]", i)
		if err := s.validate(key); err != nil {
			errs = append(errs, err)
			continue
		}
		src := Source{s.Kind, s.Sender}
		if seen[src] {
			errs = append(errs, fmt.Errorf("%s.sender: %s sender %q is listed twice", key, s.Kind, s.Sender))
		}
		seen[src] = true
	}
	return errs
}

// ErrUnknownSource is returned for a sender the configuration does not list.
var ErrUnknownSource = errors.New("sender is not configured")

// sourceConfig returns the configuration of a source.
func (c *Controller) sourceConfig(src Source) (SourceConfig, error) {
	i := slices.IndexFunc(c.cfg.Sources, func(s SourceConfig) bool { return s.Kind == src.Kind && s.Sender == src.Sender })
	if i < 0 {
		return SourceConfig{}, fmt.Errorf("%s sender %q: %w (add it to \"sources\" in controller.json)", src.Kind, src.Sender, ErrUnknownSource)
	}
	return c.cfg.Sources[i], nil
}

// countyCode is the 12-digit area this platform serves, from its EBRID.
func (c *Controller) countyCode() string {
	return c.cfg.PlatformEBRID[1 : 1+protocol.AreaCodeLen]
}

// ingestAlert creates an alert on behalf of an external source: every CAP
// message and EBD packet that asks for a broadcast comes through here, so
// all of them get the same targeting, approval, signing and audit.
//
//   - src must be listed in the "sources" configuration (ErrUnknownSource).
//     The caller has already authenticated the message (signature, token) as
//     that source's policy requires.
//   - Scope is the whole county: every target area and terminal must lie in
//     the platform's county (else a ValidationError naming "areas" or
//     "terminals").
//   - The source's policy decides, not the county's approval policy: "draft"
//     stores it pending for an approver (any approver; its author is the
//     source), "auto" signs and dispatches it at once. Issue-now is ignored.
//   - It is audited with the source as actor (alert.create or alert.send,
//     like an operator's) and the detail naming the sender.
//
// The request's validation errors are CreateAlert's (ValidationError naming
// the field); nothing is stored when one is returned.
func (c *Controller) ingestAlert(ctx context.Context, src Source, req AlertRequest) (store.Alert, error) {
	sc, err := c.sourceConfig(src)
	if err != nil {
		return store.Alert{}, err
	}
	county := access.Scope{c.countyCode()}
	for _, a := range req.Areas {
		if err := protocol.ValidAreaCode(a); err != nil {
			return store.Alert{}, invalid("areas", "%v", err)
		}
	}
	if err := county.CheckTargets(req.Areas); err != nil {
		return store.Alert{}, invalid("areas", "%v", err)
	}
	for _, id := range req.Terminals {
		if area, ok := c.terminalArea(ctx, id); !ok || !county.Covers(area) {
			return store.Alert{}, invalid("terminals", "terminal %s is not enrolled in this county", id)
		}
	}
	req.IssueNow = false
	pending := sc.Issue != IssueAuto
	a, err := c.createAlert(ctx, src.Actor(), req, &pending)
	if err != nil {
		return store.Alert{}, err
	}
	action := "alert.create"
	if a.Status == store.AlertActive {
		action = "alert.send"
	}
	c.audit(ctx, src.Actor(), src.Kind, action, a.ID, "", a.Status,
		fmt.Sprintf("from %s sender %s (%s): %s level %d %q to %v", src.Kind, src.Sender, sourcePolicyName(sc), a.Class, a.Level, a.Title, a.Targets))
	return a, nil
}

func sourcePolicyName(sc SourceConfig) string {
	if sc.Issue == IssueAuto {
		return "issued automatically"
	}
	return "draft for approval"
}

// ingestCancel withdraws an alert on behalf of the source that created it
// (a CAP Cancel, an EBD cancel message): an active alert is cancelled and
// its terminals told, a draft still waiting for approval is withdrawn. A
// source may only withdraw its own alerts. Audited like ingestAlert.
func (c *Controller) ingestCancel(ctx context.Context, src Source, alertID, reason string) error {
	a, err := c.store.Alert(ctx, alertID)
	if err != nil {
		return err
	}
	if a.CreatedBy != src.Actor() {
		return forbidden("alert %s was not created by %s", alertID, src.Actor())
	}
	if a.Status != store.AlertActive && a.Status != store.AlertPending {
		return fmt.Errorf("alert %s is %s: %w", alertID, a.Status, store.ErrNotActive)
	}
	if err := c.CancelAlert(ctx, src.Actor(), alertID, reason); err != nil {
		return err
	}
	after, _ := c.store.Alert(ctx, alertID)
	c.audit(ctx, src.Actor(), src.Kind, "alert.cancel", alertID, a.Status, after.Status, reason)
	return nil
}
