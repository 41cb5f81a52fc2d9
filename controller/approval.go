package controller

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"dalaba/controller/access"
	"dalaba/controller/auth"
	"dalaba/controller/store"
	"dalaba/protocol"
)

const policyKey = "policy"

// Policy returns the county's alert policy (access.DefaultPolicy until an
// admin sets one).
func (c *Controller) Policy(ctx context.Context) (access.Policy, error) {
	v, err := c.store.Meta(ctx, policyKey)
	if errors.Is(err, store.ErrNotFound) {
		return access.DefaultPolicy(), nil
	}
	if err != nil {
		return access.Policy{}, err
	}
	var p access.Policy
	if err := json.Unmarshal([]byte(v), &p); err != nil {
		return access.Policy{}, fmt.Errorf("stored policy: %w", err)
	}
	return p, nil
}

// SetPolicy validates and stores a policy.
func (c *Controller) SetPolicy(ctx context.Context, p access.Policy) error {
	if err := p.Validate(); err != nil {
		return invalid("policy", "%v", err)
	}
	b, _ := json.Marshal(p)
	return c.store.SetMeta(ctx, policyKey, string(b))
}

// ErrOwnAlert is returned when an author tries to approve their own alert.
var ErrOwnAlert = errors.New("the author of an alert cannot approve or reject it; another approver must")

// Decide approves or rejects a pending alert. Approval signs the exact
// command the author composed, resolves its terminals now, and sends it.
func (c *Controller) Decide(ctx context.Context, by, id string, approve bool, comment string) (store.Alert, error) {
	a, err := c.store.Alert(ctx, id)
	if err != nil {
		return a, err
	}
	if a.Status != store.AlertPending {
		return a, fmt.Errorf("alert %s is %s: %w", id, a.Status, store.ErrNotPending)
	}
	if a.CreatedBy == by {
		return a, fmt.Errorf("%w", forbidden("%v", ErrOwnAlert))
	}
	if strings.TrimSpace(comment) == "" {
		return a, invalid("comment", "say why you approve or reject it")
	}
	now := c.now()
	if !now.Before(a.Expires) {
		return a, fmt.Errorf("alert %s: its validity window has passed: %w", id, store.ErrNotPending)
	}
	if !approve {
		if err := c.store.Decide(ctx, id, by, comment, nil, nil, now); err != nil {
			return a, err
		}
		return c.store.Alert(ctx, id)
	}
	targets, err := c.store.ActiveTargets(ctx, a.Targets)
	if err != nil {
		return a, err
	}
	signed := c.signPayload(a.Draft)
	if err := c.store.Decide(ctx, id, by, comment, signed, targets, now); err != nil {
		return a, err
	}
	a, err = c.store.Alert(ctx, id)
	if err != nil {
		return a, err
	}
	c.dispatch(ctx, a, targets)
	return a, nil
}

// alertVisible: an alert is visible to a principal whose areas share any
// place with its targets.
func (c *Controller) alertVisible(ctx context.Context, p *principal, a store.Alert) bool {
	for _, area := range a.Targets.Areas {
		if p.scope().Overlaps(area) {
			return true
		}
	}
	for _, id := range a.Targets.Terminals {
		if c.terminalVisible(ctx, p, id) {
			return true
		}
	}
	return false
}

// alertInScope: a principal may act on an alert (cancel, approve) only when
// every target lies inside their areas.
func (c *Controller) alertInScope(ctx context.Context, p *principal, t protocol.Targets) error {
	if err := p.scope().CheckTargets(t.Areas); err != nil {
		return forbidden("%v", err)
	}
	for _, id := range t.Terminals {
		if !c.terminalVisible(ctx, p, id) {
			return forbidden("terminal %s is outside your areas", id)
		}
	}
	return nil
}

// approversFor lists who may decide on a pending alert: approvers whose
// areas cover its targets, other than its author.
func (c *Controller) approversFor(ctx context.Context, a store.Alert) ([]string, error) {
	users, err := c.store.Users(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, u := range users {
		if u.Disabled || u.Name == a.CreatedBy || !access.Can(u.Roles, access.ApproveAlert) {
			continue
		}
		p := &principal{user: u}
		if c.alertInScope(ctx, p, a.Targets) == nil {
			out = append(out, u.Name)
		}
	}
	return out, nil
}

// CreateUser adds an operator with a one-time password they must change at
// first sign-in.
func (c *Controller) CreateUser(ctx context.Context, in UserRequest) (NewUser, error) {
	pw := auth.OneTimePassword()
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return NewUser{}, err
	}
	display := in.Display
	if display == "" {
		display = in.Name
	}
	u, err := c.store.CreateUser(ctx, store.User{Name: in.Name, Display: display, Password: hash, MustChange: true,
		Roles: in.Roles, Areas: in.Areas}, c.now())
	if err != nil {
		return NewUser{}, err
	}
	return NewUser{User: u, Password: pw}, nil
}

// SetUserPassword sets a password chosen elsewhere (the demo's), checked
// against the rules, not one-time.
func (c *Controller) SetUserPassword(ctx context.Context, name, pw string) error {
	u, err := c.store.UserByName(ctx, name)
	if err != nil {
		return err
	}
	if err := auth.CheckPasswordRules(pw, name); err != nil {
		return err
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return err
	}
	return c.store.SetPassword(ctx, u.ID, hash, false, "", c.now())
}
