package controller

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"dalaba/controller/store"
	"dalaba/ebd"
	"dalaba/protocol"
)

// EBDConfig is the config key "ebd": the packet exchange with the superior
// (city or provincial) platform (docs/ebd.md). Paths are PEM files;
// relative ones are inside data_dir. With trust_certs empty the exchange
// is off and /ebd/packets answers 404.
type EBDConfig struct {
	TrustCerts  string `json:"trust_certs"`   // superior platforms' SM2 certificates, verified against
	Key         string `json:"key"`           // this platform's SM2 private key, signs answers and reports
	Cert        string `json:"cert"`          // this platform's certificate; its serial names the key
	SuperiorURL string `json:"superior_url"`  // where broadcast state reports are posted; "" none
	MaxPacketMB int    `json:"max_packet_mb"` // largest packet tar; 0: max_upload_mb
}

// validate checks the "ebd" key's shape; the files are read by New.
func (e EBDConfig) validate() error {
	var errs []error
	if e.TrustCerts == "" && (e.Key != "" || e.Cert != "" || e.SuperiorURL != "") {
		errs = append(errs, errors.New("ebd.trust_certs: must be set to use ebd.key, ebd.cert or ebd.superior_url (the superior platforms' certificates)"))
	}
	if e.TrustCerts != "" && (e.Key == "" || e.Cert == "") {
		errs = append(errs, errors.New("ebd.key and ebd.cert: both are needed to sign answers to the superior platform"))
	}
	if e.SuperiorURL != "" {
		u, err := url.Parse(e.SuperiorURL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("ebd.superior_url: %q is not an http:// or https:// URL", e.SuperiorURL))
		}
	}
	if e.MaxPacketMB < 0 || e.MaxPacketMB > protocol.MaxMediaSize>>20 {
		errs = append(errs, fmt.Errorf("ebd.max_packet_mb: %d is outside 1..%d (0: max_upload_mb)", e.MaxPacketMB, protocol.MaxMediaSize>>20))
	}
	return errors.Join(errs...)
}

// ebdState is the running exchange: nil when not configured.
type ebdState struct {
	trust    *ebd.Trust
	signer   *ebd.Signer
	superior string
	limits   ebd.Limits
	dir      string        // data/ebd: rejected packets are kept under it
	mu       sync.Mutex    // one packet is processed at a time, so an id is processed once
	kick     chan struct{} // wakes the state reporter
	retryMin time.Duration // first retry delay of a state report; doubles to retryMax
	retryMax time.Duration
}

// newEBD reads the exchange's certificates and key.
func newEBD(cfg Config) (*ebdState, error) {
	e := cfg.EBD
	if e.TrustCerts == "" {
		return nil, nil
	}
	read := func(key, p string) ([]byte, error) {
		if !filepath.IsAbs(p) {
			p = filepath.Join(cfg.DataDir, p)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil, fmt.Errorf("ebd.%s: %w", key, err)
		}
		return b, nil
	}
	trustPEM, err := read("trust_certs", e.TrustCerts)
	if err != nil {
		return nil, err
	}
	trust, err := ebd.ParseTrust(trustPEM)
	if err != nil {
		return nil, fmt.Errorf("ebd.trust_certs %s: %w", e.TrustCerts, err)
	}
	keyPEM, err := read("key", e.Key)
	if err != nil {
		return nil, err
	}
	certPEM, err := read("cert", e.Cert)
	if err != nil {
		return nil, err
	}
	signer, err := ebd.ParseSigner(keyPEM, certPEM)
	if err != nil {
		return nil, fmt.Errorf("ebd.key and ebd.cert: %w", err)
	}
	mb := e.MaxPacketMB
	if mb == 0 {
		mb = cfg.MaxUploadMB
	}
	s := &ebdState{trust: trust, signer: signer, superior: e.SuperiorURL, dir: filepath.Join(cfg.DataDir, "ebd"),
		limits: ebd.Limits{MaxEntries: ebd.DefaultLimits.MaxEntries, MaxTotal: int64(mb) << 20},
		kick:   make(chan struct{}, 1), retryMin: 5 * time.Second, retryMax: 5 * time.Minute}
	if err := os.MkdirAll(filepath.Join(s.dir, "rejected"), 0o700); err != nil {
		return nil, fmt.Errorf("ebd: %w", err)
	}
	return s, nil
}

// ebdExpiryWarnings names the exchange's certificates that expire within
// KeyWarnBefore: a superior platform's, whose packets will then fail, and
// this platform's own, whose answers the superior will refuse.
func (c *Controller) ebdExpiryWarnings(now time.Time) []string {
	if c.ebd == nil {
		return nil
	}
	var out []string
	warn := func(what string, notAfter time.Time, todo string) {
		if left := notAfter.Sub(now); left < KeyWarnBefore {
			out = append(out, fmt.Sprintf("%s expires on %s (%d days left): %s", what, notAfter.Format(time.DateOnly), int(left.Hours()/24), todo))
		}
	}
	for _, cert := range c.ebd.trust.Certs() {
		warn(fmt.Sprintf("superior platform certificate %s (%s)", cert.SN, cert.Subject), cert.NotAfter,
			"get its successor and add it to ebd.trust_certs")
	}
	warn("this platform's EBD certificate "+c.ebd.signer.SN(), c.ebd.signer.NotAfter(), "renew it (ebd.key, ebd.cert) and give the new certificate to the superior platform")
	return out
}

// ebdResult is the answer to one packet.
type ebdResult struct {
	code int
	desc string
}

func resultOf(err error) ebdResult {
	var e *ebd.Error
	if errors.As(err, &e) {
		return ebdResult{e.Code, e.Desc}
	}
	return ebdResult{ebd.ResultOther, err.Error()}
}

// handlePacket acts on a packet whose signature checked out, once per EBD
// id: a second arrival gets the first one's result.
func (c *Controller) handlePacket(ctx context.Context, p *ebd.Packet) ebdResult {
	if p.EBD.Type == ebd.TypeConnectionCheck {
		return ebdResult{ebd.ResultOK, "connection check"}
	}
	c.ebd.mu.Lock()
	defer c.ebd.mu.Unlock()
	if prev, err := c.store.EBDPacketByID(ctx, p.ID); err == nil {
		return ebdResult{prev.ResultCode, "already received at " + ebd.FormatTime(prev.ReceivedAt) + ": " + prev.ResultDesc}
	}
	var res ebdResult
	switch p.EBD.Type {
	case ebd.TypeEBM:
		res = c.handleEBM(ctx, p)
	case ebd.TypeEBMStateRequest:
		res = c.handleStateRequest(ctx, p)
	case ebd.TypeResponse:
		res = ebdResult{ebd.ResultOK, "receipt noted"}
	default:
		res = ebdResult{ebd.ResultOther, fmt.Sprintf("EBDType %q is not handled by this county platform", p.EBD.Type)}
	}
	rec := store.EBDPacket{ID: p.ID, Sender: p.EBD.SRC.Code(), Type: p.EBD.Type, ReceivedAt: c.now(), ResultCode: res.code, ResultDesc: res.desc}
	if err := c.store.PutEBDPacket(ctx, rec); err != nil {
		c.log.Error("record EBD packet", "ebd", p.ID, "err", err)
	}
	return res
}

// handleEBM turns an EBM into an alert (or a cancel) through ingestAlert.
func (c *Controller) handleEBM(ctx context.Context, p *ebd.Packet) ebdResult {
	if p.EBD.EBM == nil {
		return ebdResult{ebd.ResultMissing, "EBDType EBM without an EBM element"}
	}
	a, err := p.EBD.EBM.Check(p.Files)
	if err != nil {
		return resultOf(err)
	}
	src := Source{Kind: SourceEBD, Sender: p.EBD.SRC.Code()}
	if _, err := c.sourceConfig(src); err != nil {
		return ebdResult{ebd.ResultOther, err.Error()}
	}
	if prev, err := c.store.EBDAlertByEBM(ctx, a.EBMID); err == nil {
		return ebdResult{ebd.ResultOK, fmt.Sprintf("EBM %s was already received (alert %s)", a.EBMID, prev.AlertID)}
	}
	if a.MsgType == protocol.MsgCancel {
		link, err := c.store.EBDAlertByEBM(ctx, a.Related)
		if err != nil {
			return ebdResult{ebd.ResultOther, fmt.Sprintf("no alert here came from EBM %s", a.Related)}
		}
		if err := c.ingestCancel(ctx, src, link.AlertID, "cancelled by the superior platform, EBM "+a.EBMID); err != nil {
			return ebdResult{ebd.ResultOther, fmt.Sprintf("cancel alert %s: %v", link.AlertID, err)}
		}
		c.ebdKick()
		return ebdResult{ebd.ResultOK, "alert " + link.AlertID + " cancelled"}
	}
	req, err := c.ebmRequest(ctx, a, p.Files)
	if err != nil {
		return resultOf(err)
	}
	alert, err := c.ingestAlert(ctx, src, req)
	if err != nil {
		var ve *ValidationError
		if errors.As(err, &ve) || errors.Is(err, ErrUnknownSource) {
			return ebdResult{ebd.ResultOther, err.Error()}
		}
		c.log.Error("EBM to alert", "ebm", a.EBMID, "err", err)
		return ebdResult{ebd.ResultOther, "internal error; the county platform logged it"}
	}
	if err := c.store.PutEBDAlert(ctx, store.EBDAlert{EBMID: a.EBMID, AlertID: alert.ID, Sender: src.Sender, EBDID: p.ID}); err != nil {
		c.log.Error("link EBM to alert", "ebm", a.EBMID, "alert", alert.ID, "err", err)
	}
	c.ebdKick()
	return ebdResult{ebd.ResultOK, fmt.Sprintf("alert %s %s", alert.ID, alert.Status)}
}

// ebmRequest maps a checked EBM to an alert request: severity 1..4 is an
// emergency of that level, 0 a daily message; areas are narrowed to this
// county; the recordings are stored as media, or the text is spoken.
func (c *Controller) ebmRequest(ctx context.Context, a ebd.Alert, files map[string][]byte) (AlertRequest, error) {
	req := AlertRequest{Class: protocol.ClassEmergency, MsgType: a.MsgType, Level: a.Severity, EventType: a.EventType,
		Title: a.Title, NotBefore: a.Start, Expires: a.End}
	if a.Severity == 0 {
		req.Class = protocol.ClassDaily
	}
	if limit := c.now().Add(protocol.MaxCommandLifetime - time.Minute); req.Expires.After(limit) {
		req.Expires = limit // an alert lives at most a command's lifetime
	}
	county := c.countyCode()
	for _, code := range a.Areas {
		switch {
		case protocol.AreaContains(county, code):
		case protocol.AreaContains(code, county):
			code = county // the city or province: all of this county
		default:
			continue
		}
		if !slices.Contains(req.Areas, code) {
			req.Areas = append(req.Areas, code)
		}
	}
	if len(req.Areas) == 0 {
		return req, &ebd.Error{Code: ebd.ResultOther, Desc: fmt.Sprintf("none of the areas %v lies in this county (%s)", a.Areas, county)}
	}
	for _, name := range a.Audio {
		m, err := c.AddMedia(ctx, name, files[name])
		if err != nil {
			return req, &ebd.Error{Code: ebd.ResultOther, Desc: fmt.Sprintf("recording %s: %v", name, err)}
		}
		req.Media = append(req.Media, m.SHA256)
	}
	if len(req.Media) == 0 {
		text := a.Title
		if a.Text != "" && a.Text != a.Title {
			text += "。" + a.Text
		}
		lang := "zh"
		if strings.HasPrefix(strings.ToLower(a.Language), "en") {
			lang = "en"
		}
		m, err := c.SpeakMedia(ctx, TTSRequest{Text: text, Lang: lang, AttentionTone: true})
		if err != nil {
			return req, &ebd.Error{Code: ebd.ResultOther, Desc: fmt.Sprintf("the EBM has no recording and speaking its text failed: %v", err)}
		}
		req.Media = []string{m.SHA256}
	}
	return req, nil
}

// handleStateRequest answers an EBMStateRequest by reporting the EBM's
// state again (to the superior URL, as every report).
func (c *Controller) handleStateRequest(ctx context.Context, p *ebd.Packet) ebdResult {
	if p.EBD.StateRequest == nil {
		return ebdResult{ebd.ResultMissing, "EBMStateRequest/EBM/EBMID is missing"}
	}
	id := strings.TrimSpace(p.EBD.StateRequest.EBM.EBMID)
	link, err := c.store.EBDAlertByEBM(ctx, id)
	if err != nil {
		return ebdResult{ebd.ResultOther, fmt.Sprintf("no alert here came from EBM %q", id)}
	}
	if c.ebd.superior == "" {
		return ebdResult{ebd.ResultOther, "this county platform has no superior_url to report to"}
	}
	if err := c.store.SetEBDReported(ctx, link.EBMID, -1, false, c.now()); err != nil {
		return resultOf(err)
	}
	c.ebdKick()
	return ebdResult{ebd.ResultOK, "state report follows"}
}

// keepRejected saves a packet whose signature failed, with the reason,
// under data/ebd/rejected for inspection.
func (c *Controller) keepRejected(raw []byte, id, reason, from string) string {
	if id == "" {
		id = "unknown"
	}
	name := c.now().UTC().Format("20060102T150405.000Z") + "_" + id
	dir := filepath.Join(c.ebd.dir, "rejected")
	if err := os.WriteFile(filepath.Join(dir, name+".tar"), raw, 0o600); err != nil {
		c.log.Error("keep rejected EBD packet", "ebd", id, "err", err)
		return ""
	}
	note := fmt.Sprintf("from: %s\nreceived: %s\nresult: %d\nreason: %s\n", from, c.now().UTC().Format(time.RFC3339), ebd.ResultSignature, reason)
	os.WriteFile(filepath.Join(dir, name+".txt"), []byte(note), 0o600)
	c.pruneRejected()
	return name + ".tar"
}

func (c *Controller) ebdKick() {
	select {
	case c.ebd.kick <- struct{}{}:
	default:
	}
}

// ebdID makes this platform's next EBD id.
func (c *Controller) ebdID(ctx context.Context) (string, error) {
	now := c.now()
	seq, err := c.store.NextEBDSequence(ctx, now.In(protocol.Beijing).Format("20060102"))
	if err != nil {
		return "", err
	}
	return ebd.NewEBDID(c.cfg.PlatformEBRID, now, seq)
}

// retryDelay is the jittered, doubling wait before report attempt n+1.
func (s *ebdState) retryDelay(attempts int) time.Duration {
	d := s.retryMin << min(attempts, 16)
	if d > s.retryMax || d <= 0 {
		d = s.retryMax
	}
	return d/2 + rand.N(d/2+1)
}
