package controller

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"os"
	"path/filepath"
	"slices"
	"time"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/ebd"
	"dalaba/protocol"
)

// data/ebd/rejected keeps the newest rejected packets, at most this many
// and this many bytes: an unauthenticated sender cannot fill the disk.
const (
	maxRejectedKept  = 200
	maxRejectedBytes = 256 << 20
)

// ebdReportSpacing paces state reporting while deliveries change fast (an
// alert to thousands of terminals): one pass over the EBD alerts at most
// this often.
const ebdReportSpacing = 250 * time.Millisecond

// serveEBD is POST /ebd/packets: a packet from the superior platform, as
// multipart part "file" holding EBDT_<id>.tar. No session: the packet is
// authenticated by its SM2 signature. Every answer is HTTP 200 with a
// signed receipt tar holding an EBDResponse and its result code.
func (c *Controller) serveEBD(w http.ResponseWriter, r *http.Request) {
	if c.ebd == nil {
		writeError(w, http.StatusNotFound, errors.New("the EBD exchange is not configured on this platform (ebd.trust_certs in controller.json; see docs/ebd.md)"))
		return
	}
	ctx := r.Context()
	from := sourceOf(r)
	raw, files, err := ebd.ReadRequest(w, r, c.ebd.limits)
	id, sender := ebd.PacketID(files), ""
	var res ebdResult
	var p *ebd.Packet
	if err == nil {
		p, err = ebd.Open(files, c.ebd.trust, c.now())
	}
	switch {
	case err != nil:
		res = resultOf(err)
		detail := fmt.Sprintf("EBD %s from %s: result %d: %s", id, from, res.code, res.desc)
		if res.code == ebd.ResultSignature && raw != nil {
			detail += "; kept as " + c.keepRejected(raw, id, res.desc, from)
		}
		c.log.Warn("EBD packet refused", "ebd", id, "from", from, "result", res.code, "reason", res.desc)
		c.audit(ctx, "ebd:unverified", from, "ebd.reject", id, "", "", detail)
	default:
		sender = p.EBD.SRC.Code()
		res = c.handlePacket(ctx, p)
		if p.EBD.Type != ebd.TypeConnectionCheck {
			c.log.Info("EBD packet", "ebd", id, "type", p.EBD.Type, "sender", sender, "result", res.code, "desc", res.desc)
			c.audit(ctx, Source{SourceEBD, sender}.Actor(), from, "ebd.receive", id, "", fmt.Sprint(res.code),
				fmt.Sprintf("%s signed by certificate %s: %s", p.EBD.Type, p.Cert.SN, res.desc))
		}
	}
	tar, rid, err := c.ebdResponse(ctx, id, sender, res)
	if err != nil {
		c.log.Error("EBD response", "ebd", id, "err", err)
		writeError(w, http.StatusInternalServerError, errors.New("internal error; see the controller log"))
		return
	}
	w.Header().Set("Content-Type", "application/x-tar")
	w.Header().Set("Content-Disposition", `attachment; filename="`+ebd.TarName(rid)+`"`)
	w.WriteHeader(http.StatusOK)
	w.Write(tar)
}

// ebdResponse builds the signed EBDResponse answering EBD related.
func (c *Controller) ebdResponse(ctx context.Context, related, dest string, res ebdResult) ([]byte, string, error) {
	id, err := c.ebdID(ctx)
	if err != nil {
		return nil, "", err
	}
	now := c.now()
	e := ebd.Header(id, ebd.TypeResponse, c.cfg.PlatformEBRID, dest, now)
	if related != "" {
		e.RelatedEBD = &ebd.Related{EBDID: related}
	}
	e.Response = &ebd.Response{ResultCode: res.code, ResultDesc: res.desc}
	tar, err := c.ebd.signer.Build(e, now)
	return tar, id, err
}

// pruneRejected keeps the newest rejected packets within maxRejectedKept
// and maxRejectedBytes.
func (c *Controller) pruneRejected() {
	dir := filepath.Join(c.ebd.dir, "rejected")
	ents, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	var tars []os.DirEntry
	for _, e := range ents {
		if filepath.Ext(e.Name()) == ".tar" {
			tars = append(tars, e)
		}
	}
	slices.Reverse(tars) // names start with the time: newest first
	var kept, size int64
	for _, e := range tars {
		if info, err := e.Info(); err == nil {
			size += info.Size()
		}
		if kept++; kept > maxRejectedKept || (size > maxRejectedBytes && kept > 1) {
			name := e.Name()
			os.Remove(filepath.Join(dir, name))
			os.Remove(filepath.Join(dir, name[:len(name)-4]+".txt"))
		}
	}
}

// ebdReportLoop reports the broadcast state of every alert that came from
// the superior platform, upward to ebd.superior_url, whenever it changes:
// woken by delivery events, and once a second for retries. A failed report
// is retried with a doubling, jittered delay; the state to report is read
// afresh each time, so only the newest is sent.
func (c *Controller) ebdReportLoop(ctx context.Context) {
	if c.ebd == nil || c.ebd.superior == "" {
		return
	}
	sub := c.events.Subscribe(64, func(e events.Event) bool {
		return e.Kind == events.KindDelivery || e.Kind == events.KindAlert
	})
	defer c.events.Unsubscribe(sub)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-c.ebd.kick:
		case <-sub.C:
		}
		for drained := false; !drained; { // one pass answers every event queued so far
			select {
			case <-sub.C:
			default:
				drained = true
			}
		}
		c.reportEBDStates(ctx)
		select {
		case <-ctx.Done():
			return
		case <-time.After(ebdReportSpacing):
		}
	}
}

func (c *Controller) reportEBDStates(ctx context.Context) {
	links, err := c.store.EBDAlertsToReport(ctx)
	if err != nil {
		if ctx.Err() == nil {
			c.log.Error("EBD state reports", "err", err)
		}
		return
	}
	for _, link := range links {
		now := c.now()
		if now.Before(link.NextAttemptAt) {
			continue
		}
		state, desc, cov, err := c.broadcastState(ctx, link.AlertID)
		if err != nil || state <= link.ReportedState {
			continue // reports only move forward (a terminal back from offline is queued again)
		}
		if err := c.sendStateReport(ctx, link, state, desc, cov); err != nil {
			if ctx.Err() != nil {
				return
			}
			next := c.now().Add(c.ebd.retryDelay(link.Attempts))
			c.log.Warn("EBD state report failed; will retry", "ebm", link.EBMID, "state", state, "attempt", link.Attempts+1, "next", next, "err", err)
			c.store.SetEBDRetry(ctx, link.EBMID, link.Attempts+1, next, err.Error())
			continue
		}
		final := state >= 3
		c.log.Info("EBD state reported", "ebm", link.EBMID, "alert", link.AlertID, "state", state)
		if err := c.store.SetEBDReported(ctx, link.EBMID, state, final, c.now()); err != nil {
			c.log.Error("record EBD state report", "ebm", link.EBMID, "err", err)
		}
	}
}

// broadcastState sums an alert up as one standard broadcast state code:
// 0 unprocessed (awaiting approval, or queued), 1 waiting, 2 playing (a
// terminal is playing or has played, others are not settled), 3 success
// (all settled, at least one played), 4 failed (none played, or rejected
// by the approver), 5 cancelled. The reporter sends only higher codes than
// the last one accepted, so upward the state only moves forward.
func (c *Controller) broadcastState(ctx context.Context, alertID string) (int, string, *ebd.Coverage, error) {
	a, err := c.store.Alert(ctx, alertID)
	if err != nil {
		return 0, "", nil, err
	}
	counts, err := c.store.Counts(ctx, alertID)
	if err != nil {
		return 0, "", nil, err
	}
	total, settled := 0, 0
	for st, n := range counts {
		total += n
		if protocol.DeliveryFinal(st) {
			settled += n
		}
	}
	done := counts[protocol.DeliveryDone]
	cov := &ebd.Coverage{AreaCode: c.countyCode(), ResBrdStat: fmt.Sprintf("%d/%d", done, total)}
	if total > 0 {
		cov.CoverageRate = fmt.Sprintf("%.2f", float64(done)/float64(total))
	}
	switch {
	case a.Status == store.AlertPending:
		return 0, "awaiting approval at the county", nil, nil
	case a.Status == store.AlertRejected:
		return 4, "rejected by the county's approver", nil, nil
	case a.Status == store.AlertCancelled:
		return 5, "cancelled", cov, nil
	case total > 0 && settled == total && done > 0:
		return 3, fmt.Sprintf("played on %d of %d terminals", done, total), cov, nil
	case total > 0 && settled == total:
		return 4, fmt.Sprintf("played on none of %d terminals", total), cov, nil
	case counts[protocol.DeliveryPlaying] > 0 || done > 0:
		return 2, fmt.Sprintf("playing: %d playing, %d played, of %d terminals", counts[protocol.DeliveryPlaying], done, total), cov, nil
	case counts[protocol.DeliveryQueued] == total:
		return 0, "queued", cov, nil
	}
	return 1, fmt.Sprintf("waiting: %d of %d terminals settled", settled, total), cov, nil
}

// sendStateReport posts a signed EBMStateResponse to the superior platform
// and checks its signed receipt.
func (c *Controller) sendStateReport(ctx context.Context, link store.EBDAlert, state int, desc string, cov *ebd.Coverage) error {
	id, err := c.ebdID(ctx)
	if err != nil {
		return err
	}
	now := c.now()
	e := ebd.Header(id, ebd.TypeEBMStateResponse, c.cfg.PlatformEBRID, link.Sender, now)
	e.StateResponse = &ebd.StateResponse{RptTime: ebd.FormatTime(now), EBM: ebd.RelatedEBM{EBMID: link.EBMID},
		BrdStateCode: state, BrdStateDesc: desc, Coverage: cov}
	tar, err := c.ebd.signer.Build(e, now)
	if err != nil {
		return err
	}
	return c.postEBD(ctx, id, tar)
}

// postEBD sends a packet to the superior platform and accepts only a
// receipt signed by a trusted platform with result 0 or 1.
func (c *Controller) postEBD(ctx context.Context, id string, tar []byte) error {
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	h := textproto.MIMEHeader{}
	h.Set("Content-Disposition", `form-data; name="file"; filename="`+ebd.TarName(id)+`"`)
	h.Set("Content-Type", "application/octet-stream")
	part, _ := mw.CreatePart(h)
	part.Write(tar)
	mw.Close()
	rctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodPost, c.ebd.superior, &body)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mw.FormDataContentType())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("post to the superior platform: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("the superior platform answered HTTP %d", resp.StatusCode)
	}
	files, err := ebd.ReadTar(io.LimitReader(resp.Body, 1<<20), ebd.DefaultLimits)
	if err != nil {
		return fmt.Errorf("the superior platform's receipt: %w", err)
	}
	p, err := ebd.Open(files, c.ebd.trust, c.now())
	if err != nil {
		return fmt.Errorf("the superior platform's receipt: %w", err)
	}
	if p.EBD.Response == nil {
		return fmt.Errorf("the superior platform answered %s, not an EBDResponse", p.EBD.Type)
	}
	if rc := p.EBD.Response.ResultCode; rc != ebd.ResultOK && rc != ebd.ResultReceived {
		return fmt.Errorf("the superior platform answered result %d: %s", rc, p.EBD.Response.ResultDesc)
	}
	return nil
}

// ebdPacketsView is GET /api/v1/ebd/packets: the packets received (newest
// first) and the rejected ones kept for inspection.
type ebdPacketsView struct {
	Configured bool              `json:"configured"`
	Packets    []store.EBDPacket `json:"packets"`
	Rejected   []string          `json:"rejected"` // file names under data/ebd/rejected, newest first
}

func (c *Controller) apiEBDPackets(w http.ResponseWriter, r *http.Request, p *principal) {
	v := ebdPacketsView{Configured: c.ebd != nil, Packets: []store.EBDPacket{}, Rejected: []string{}}
	if c.ebd != nil {
		var err error
		if v.Packets, err = c.store.EBDPackets(r.Context(), 500); err != nil {
			c.fail(w, r, err)
			return
		}
		ents, _ := os.ReadDir(filepath.Join(c.ebd.dir, "rejected"))
		for i := len(ents) - 1; i >= 0; i-- {
			if filepath.Ext(ents[i].Name()) == ".tar" {
				v.Rejected = append(v.Rejected, ents[i].Name())
			}
		}
	}
	writeJSON(w, http.StatusOK, v)
}
