package sim

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"dalaba/protocol"
)

// alertValid is how long the test alert stays valid.
const alertValid = 10

// AlertResult is what one alert to the whole fleet did.
type AlertResult struct {
	ID       string
	Media    string          // the sha256 of its audio
	Accepted time.Time       // the API accepted it
	Playing  []time.Duration // per terminal, accept → first sound, sorted
	Fetching []time.Duration // per terminal that fetched, accept → its fetch began (the command verified and accepted), sorted
	Fetched  int             // terminals that fetched its media (0 when cached)
	Paused   []time.Duration // per terminal whose audio paused waiting for its media, how long in all, sorted
	Counts   map[string]int  // the controller's deliveries by state
	Done     time.Duration   // accept → every delivery done
}

// Alert uploads the audio, sends one terminal-drill alert of the daily
// class to the generated townships (no second person needed) and waits
// until the controller counts every delivery done, or ctx ends.
func (fl *Fleet) Alert(ctx context.Context, audio []byte, name string) (*AlertResult, error) {
	a := newAPI(fl.o.API, fl.o.AlertToken)
	var m struct {
		SHA256 string `json:"sha256"`
	}
	if err := a.do(ctx, "POST", "/api/v1/media?name="+url.QueryEscape(name), audio, &m); err != nil {
		return nil, fmt.Errorf("upload the alert audio: %w", err)
	}
	return fl.AlertMedia(ctx, m.SHA256)
}

// AlertMedia is Alert with audio the controller has already.
func (fl *Fleet) AlertMedia(ctx context.Context, sha string) (*AlertResult, error) {
	a := newAPI(fl.o.API, fl.o.AlertToken)
	req := map[string]any{"class": protocol.ClassDaily, "msg_type": protocol.MsgTerminalDrill, "level": 4, "title": "模拟终端群演练",
		"areas": fl.townships, "media": []string{sha}, "valid_minutes": alertValid}
	var alert struct {
		ID         string         `json:"id"` // the EBM id, which terminals know it by
		CreatedAt  time.Time      `json:"created_at"`
		Counts     map[string]int `json:"counts"`
		Deliveries []struct {
			TerminalID string `json:"terminal_id"`
			State      string `json:"state"`
			Reason     string `json:"reason"`
			Detail     string `json:"detail"`
		} `json:"deliveries"`
	}
	if err := a.do(ctx, "POST", "/api/v1/alerts", req, &alert); err != nil {
		return nil, fmt.Errorf("send the test alert (needs an officer's token, --alert-token): %w", err)
	}
	res := &AlertResult{ID: alert.ID, Media: sha, Accepted: alert.CreatedAt}
	for ctx.Err() == nil {
		alert.Counts = nil // decoding merges into a map
		if err := a.do(ctx, "GET", "/api/v1/alerts/"+alert.ID+"?deliveries=false", nil, &alert); err != nil {
			return res, err
		}
		res.Counts = alert.Counts
		if alert.Counts[protocol.DeliveryDone] >= fl.o.N {
			res.Done = time.Since(res.Accepted)
			break
		}
		select {
		case <-ctx.Done():
		case <-time.After(time.Second):
		}
	}
	fetches, plays, pauses := fl.f.played(alert.ID)
	for _, at := range plays {
		res.Playing = append(res.Playing, at.Sub(res.Accepted))
	}
	for _, at := range fetches {
		res.Fetching = append(res.Fetching, at.Sub(res.Accepted))
	}
	for _, d := range pauses {
		res.Paused = append(res.Paused, d)
	}
	slices.Sort(res.Paused)
	slices.Sort(res.Playing)
	slices.Sort(res.Fetching)
	res.Fetched = len(fetches)
	if res.Done == 0 {
		if err := a.do(context.WithoutCancel(ctx), "GET", "/api/v1/alerts/"+alert.ID, nil, &alert); err != nil {
			return res, fmt.Errorf("alert %s: not every delivery done within the bound (%v); listing them: %w", alert.ID, alert.Counts, err)
		}
		var stuck []string
		for _, d := range alert.Deliveries {
			if d.State != protocol.DeliveryDone && len(stuck) < 3 {
				stuck = append(stuck, fmt.Sprintf("%s %s %s %s", d.TerminalID, d.State, d.Reason, d.Detail))
			}
		}
		return res, fmt.Errorf("alert %s: %d of %d deliveries done within the bound (%v; e.g. %s)", alert.ID, alert.Counts[protocol.DeliveryDone], fl.o.N, alert.Counts, strings.Join(stuck, "; "))
	}
	return res, nil
}
