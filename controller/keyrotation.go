package controller

import (
	"context"
	"crypto/ed25519"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"net/http"
	"slices"
	"time"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// KeyWarnBefore is how long before an issuing key or the TLS certificate
// expires the controller starts warning.
const KeyWarnBefore = 90 * 24 * time.Hour

// RotateKey makes a new issuing key and makes it the one that signs. Every
// connected terminal first gets a keys command, signed by the old key,
// that trusts old and new; a terminal that connects later gets it on
// connection. The old key stays trusted until it is retired.
func (c *Controller) RotateKey(ctx context.Context, by string, life time.Duration) (store.IssuingKey, error) {
	c.keyMu.RLock()
	old := c.signer
	c.keyMu.RUnlock()
	priv, err := newIssuingKey(c.cfg.DataDir)
	if err != nil {
		return store.IssuingKey{}, err
	}
	now := c.now()
	k := store.IssuingKey{PublicKey: priv.Public().(ed25519.PublicKey), CreatedAt: now, NotAfter: now.Add(life), Active: true}
	if err := c.store.AddIssuingKey(ctx, k); err != nil {
		return k, err
	}
	if err := c.loadKeys(ctx); err != nil {
		return k, err
	}
	k.KeyID = protocol.KeyID(k.PublicKey)
	c.log.Info("issuing key rotated", "new_kid", k.KeyID, "old_kid", protocol.KeyID(old.Public().(ed25519.PublicKey)), "by", by)
	c.broadcastKeys(ctx, old)
	return k, nil
}

// RetireKey stops trusting an old key. It refuses while some terminal has
// not yet confirmed the active key, unless force: such a terminal would be
// left trusting only the retired key, deaf to everything new.
func (c *Controller) RetireKey(ctx context.Context, by, kid string, force bool) error {
	c.keyMu.RLock()
	active := c.keys[0].KeyID
	c.keyMu.RUnlock()
	if kid == active {
		return invalid("kid", "key %s signs today's commands; rotate first, then retire the old one", kid)
	}
	lacking, err := c.store.TerminalsLackingKey(ctx, active)
	if err != nil {
		return err
	}
	if len(lacking) > 0 && !force {
		return invalid("force", "%d terminals have not yet confirmed the active key %s (e.g. %s); they would stop trusting the controller. Wait until they connect, or force", len(lacking), active, lacking[0])
	}
	if err := c.store.RetireKey(ctx, kid, c.now()); err != nil {
		return err
	}
	if err := c.loadKeys(ctx); err != nil {
		return err
	}
	c.keyMu.RLock()
	signer := c.signer
	c.keyMu.RUnlock()
	c.broadcastKeys(ctx, signer)
	c.log.Info("issuing key retired", "kid", kid, "by", by)
	return nil
}

// keysCommand signs the trusted key set with signer, for terminal targets.
func (c *Controller) keysCommand(signer ed25519.PrivateKey, targets protocol.Targets) ([]byte, error) {
	now := c.now()
	cmd := &protocol.Command{ID: newCommandID(), Kind: protocol.KindKeys, IssuedAt: now, NotBefore: now.Add(-time.Minute),
		Expires: now.Add(time.Hour), Targets: targets, Keys: &protocol.Keys{Keys: c.publicKeys()}}
	sc, err := protocol.Sign(cmd, signer)
	if err != nil {
		return nil, err
	}
	kids := make([]string, 0, len(cmd.Keys.Keys))
	for _, k := range cmd.Keys.Keys {
		kids = append(kids, k.KeyID)
	}
	c.keysSent.Store(cmd.ID, kids)
	return json.Marshal(protocol.Frame{Type: protocol.TypeCommand, Body: mustJSON(sc)})
}

func mustJSON(v any) json.RawMessage {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err) // only for values that always marshal
	}
	return b
}

// broadcastKeys sends the key set, signed by signer, to every connected
// terminal.
func (c *Controller) broadcastKeys(ctx context.Context, signer ed25519.PrivateKey) {
	c.hub.mu.RLock()
	sessions := make([]*session, 0, len(c.hub.sessions))
	for _, s := range c.hub.sessions {
		sessions = append(sessions, s)
	}
	c.hub.mu.RUnlock()
	for _, s := range sessions {
		msg, err := c.keysCommand(signer, protocol.Targets{Terminals: []string{s.terminalID}})
		if err == nil {
			s.send(msg)
		}
	}
	c.events.Publish(events.Event{Kind: events.KindAlert, Data: map[string]any{"keys": c.publicKeys()}})
}

// keysFor returns a keys command for a terminal that trusts kids, when its
// trust differs from the controller's set, signed by a key it trusts; or
// nil when it needs none (or trusts nothing the controller still holds).
func (c *Controller) keysFor(terminalID string, kids []string) []byte {
	c.keyMu.RLock()
	want := make([]string, 0, len(c.keys))
	for _, k := range c.keys {
		want = append(want, k.KeyID)
	}
	var signer ed25519.PrivateKey
	for _, kid := range kids {
		if p, ok := c.private[kid]; ok {
			signer = p
			break
		}
	}
	c.keyMu.RUnlock()
	have := slices.Clone(kids)
	slices.Sort(have)
	slices.Sort(want)
	if signer == nil || slices.Equal(have, want) {
		return nil
	}
	msg, err := c.keysCommand(signer, protocol.Targets{Terminals: []string{terminalID}})
	if err != nil {
		return nil
	}
	return msg
}

// expiryWarnings logs, at start and daily, any issuing key or TLS
// certificate that expires within KeyWarnBefore.
func (c *Controller) expiryWarnings(ctx context.Context) {
	t := time.NewTicker(24 * time.Hour)
	defer t.Stop()
	for {
		for _, w := range c.ExpiryWarnings() {
			c.log.Warn(w)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// ExpiryWarnings lists what expires soon, in words for an operator.
func (c *Controller) ExpiryWarnings() []string {
	now := c.now()
	var out []string
	c.keyMu.RLock()
	for _, k := range c.keys {
		if left := k.NotAfter.Sub(now); left < KeyWarnBefore {
			out = append(out, fmt.Sprintf("issuing key %s expires on %s (%d days left): run `dalaba key rotate`", k.KeyID, k.NotAfter.Format(time.DateOnly), int(left.Hours()/24)))
		}
	}
	c.keyMu.RUnlock()
	if c.cfg.TLSCert != "" {
		if pair, err := tls.LoadX509KeyPair(c.cfg.TLSCert, c.cfg.TLSKey); err == nil {
			if cert, err := x509.ParseCertificate(pair.Certificate[0]); err == nil {
				if left := cert.NotAfter.Sub(now); left < KeyWarnBefore {
					out = append(out, fmt.Sprintf("TLS certificate %s expires on %s (%d days left): renew it", c.cfg.TLSCert, cert.NotAfter.Format(time.DateOnly), int(left.Hours()/24)))
				}
			}
		}
	}
	out = append(out, c.ebdExpiryWarnings(now)...)
	return out
}

func (c *Controller) apiKeys(w http.ResponseWriter, r *http.Request, p *principal) {
	all, err := c.store.IssuingKeys(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	lacking, err := c.store.TerminalsLackingKey(r.Context(), all[0].KeyID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"keys": all, "terminals_without_active_key": len(lacking), "warnings": c.ExpiryWarnings()})
}

func (c *Controller) apiRotateKey(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct {
		ValidDays int `json:"valid_days"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &in); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if in.ValidDays == 0 {
		in.ValidDays = 730
	}
	if in.ValidDays < 30 || in.ValidDays > 3650 {
		c.fail(w, r, invalid("valid_days", "%d is outside 30..3650", in.ValidDays))
		return
	}
	before := c.publicKeys()[0].KeyID
	k, err := c.RotateKey(r.Context(), p.name(), time.Duration(in.ValidDays)*24*time.Hour)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "key.rotate", k.KeyID, before, k.KeyID, fmt.Sprintf("valid until %s", k.NotAfter.Format(time.DateOnly)))
	writeJSON(w, http.StatusCreated, k)
}

func (c *Controller) apiRetireKey(w http.ResponseWriter, r *http.Request, p *principal) {
	var in struct {
		Force bool `json:"force"`
	}
	if r.ContentLength != 0 {
		if err := readJSON(r, &in); err != nil {
			c.fail(w, r, err)
			return
		}
	}
	if err := c.RetireKey(r.Context(), p.name(), r.PathValue("kid"), in.Force); err != nil {
		c.fail(w, r, err)
		return
	}
	c.auditAs(r.Context(), p, "key.retire", r.PathValue("kid"), "trusted", "retired", fmt.Sprintf("force=%v", in.Force))
	writeJSON(w, http.StatusOK, map[string]string{"retired": r.PathValue("kid")})
}

// keysConfirmed records a terminal's new key set when it reports a keys
// command done.
func (c *Controller) keysConfirmed(ctx context.Context, terminalID string, rc *protocol.Receipt) {
	if rc == nil || rc.State != protocol.DeliveryDone {
		return
	}
	kids, ok := c.keysSent.LoadAndDelete(rc.CommandID)
	if !ok {
		return
	}
	c.hub.reports.trusts(ctx, terminalID, kids.([]string)) // after what it said on connecting
}
