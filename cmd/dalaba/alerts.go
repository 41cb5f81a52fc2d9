package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/protocol"
)

func cmdSend(ctx context.Context, args []string) error {
	fs := newFlags("alert send")
	api := apiFlags(fs)
	var areas, terms multi
	fs.Var(&areas, "area", "target area code (repeatable): county, township or village")
	fs.Var(&terms, "terminal", "target terminal id (repeatable)")
	audioFile := fs.String("audio", "", "MP3 or WAV file to broadcast")
	text := fs.String("text", "", "text to broadcast, read out by text to speech (instead of --audio)")
	lang := fs.String("lang", "zh", "language of --text: zh or en")
	tone := fs.Bool("tone", false, "with --text: an attention chime before the speech")
	level := fs.Int("level", 4, "1 特别重大 (red), 2 重大 (orange), 3 较大 (yellow), 4 一般 (blue)")
	class := fs.String("class", protocol.ClassEmergency, "emergency or daily")
	title := fs.String("title", "", "title (default: the audio file name)")
	event := fs.String("event", "00000", "5-character event type code")
	drill := fs.Int("drill", 0, "send as a drill of message kind 3, 4 or 5")
	repeat := fs.Int("repeat", 1, "times to play")
	volume := fs.Int("volume", 0, "0..100 (0: each terminal's own volume)")
	valid := fs.Int("valid", 0, "minutes the alert stays valid (default: the controller's)")
	watch := fs.Bool("watch", false, "watch the deliveries until every terminal finishes")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if (*audioFile == "") == (*text == "") {
		return fmt.Errorf("alert send: give --audio FILE or --text TEXT (one of them)")
	}
	c, err := api()
	if err != nil {
		return err
	}
	var m map[string]any
	if *text != "" {
		m, err = c.speak(ctx, controller.TTSRequest{Text: *text, Lang: *lang, AttentionTone: *tone})
		if *title == "" {
			*title = string([]rune(*text)[:min(len([]rune(*text)), 30)])
		}
	} else {
		m, err = c.upload(ctx, *audioFile)
	}
	if err != nil {
		return err
	}
	if *title == "" {
		*title = strings.TrimSuffix(filepathBase(*audioFile), ".mp3")
	}
	req := controller.AlertRequest{Class: *class, Level: *level, EventType: *event, Title: *title, Areas: areas, Terminals: terms,
		Media: []string{m["sha256"].(string)}, Repeat: *repeat, Volume: *volume, ValidMinutes: *valid, MsgType: protocol.MsgActual}
	if *drill != 0 {
		req.MsgType = *drill
	}
	var v controller.AlertView
	if err := c.post(ctx, "/api/v1/alerts", req, &v); err != nil {
		return err
	}
	if v.Status == "pending" {
		fmt.Printf("alert %s waits for approval by a second person (dalaba approvals)\n", v.ID)
	} else {
		fmt.Printf("alert %s issued to %d terminals\n", v.ID, total(v.Counts))
	}
	if !*watch {
		return nil
	}
	ok, err := watchAlert(ctx, c, v.ID, os.Stdout)
	if err != nil {
		return err
	}
	if !ok {
		return exitError(1)
	}
	return nil
}

func filepathBase(p string) string {
	if i := strings.LastIndexAny(p, `/\`); i >= 0 {
		return p[i+1:]
	}
	return p
}

// multi is a repeatable string flag.
type multi []string

func (m *multi) String() string     { return strings.Join(*m, ",") }
func (m *multi) Set(v string) error { *m = append(*m, v); return nil }

func total(counts map[string]int) int {
	n := 0
	for _, v := range counts {
		n += v
	}
	return n
}

func cmdWatch(ctx context.Context, args []string) error {
	fs := newFlags("alert watch")
	api := apiFlags(fs)
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	ok, err := watchAlert(ctx, c, pos[0], os.Stdout)
	if err != nil {
		return err
	}
	if !ok {
		return exitError(1)
	}
	return nil
}

// watchAlert prints each delivery change as a line, then the final table,
// until every delivery is final. It reports whether every terminal
// finished "done".
func watchAlert(ctx context.Context, c *client, id string, out io.Writer) (bool, error) {
	changed := make(chan struct{}, 1)
	sctx, cancel := context.WithCancel(ctx)
	defer cancel()
	go c.follow(sctx, "/api/v1/events?alert="+url.QueryEscape(id), changed)
	tick := time.NewTicker(2 * time.Second)
	defer tick.Stop()
	seen := map[string]string{}
	for waiting, announced := false, false; ; {
		var v controller.AlertView
		if err := c.get(ctx, "/api/v1/alerts/"+url.PathEscape(id), &v); err != nil {
			return false, err
		}
		switch v.Status {
		case "pending":
			if !waiting {
				fmt.Fprintf(out, "%s  level %d  %s  waits for approval…\n", v.ID, v.Level, v.Title)
				waiting = true
			}
			select {
			case <-ctx.Done():
				return false, ctx.Err()
			case <-changed:
			case <-tick.C:
			}
			continue
		case "rejected":
			fmt.Fprintf(out, "%s was rejected by %s: %s\n", v.ID, v.ApprovedBy, v.Comment)
			return false, nil
		}
		if len(v.Deliveries) == 0 {
			fmt.Fprintf(out, "%s is %s with no deliveries: %s\n", v.ID, v.Status, v.Comment)
			return false, nil
		}
		if !announced {
			fmt.Fprintf(out, "%s  level %d  %s  %s  → %d terminals\n", v.ID, v.Level, v.Title, kindText(v), len(v.Deliveries))
			announced = true
		}
		final, done := 0, 0
		for _, d := range v.Deliveries {
			if seen[d.TerminalID] != d.State {
				fmt.Fprintf(out, "%s  %s  %-9s %s\n", d.UpdatedAt.Local().Format("15:04:05.000"), d.TerminalID, d.State, reasonText(d))
				seen[d.TerminalID] = d.State
			}
			if protocol.DeliveryFinal(d.State) {
				final++
			}
			if d.State == protocol.DeliveryDone {
				done++
			}
		}
		if final == len(v.Deliveries) {
			fmt.Fprint(out, renderDeliveries(v))
			return done == len(v.Deliveries), nil
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-changed:
		case <-tick.C:
		}
	}
}

func kindText(v controller.AlertView) string {
	if v.Drill {
		return fmt.Sprintf("演练 drill (kind %d)", v.MsgType)
	}
	return v.Class
}

func reasonText(d store.Delivery) string {
	if d.Detail != "" {
		return d.Reason + ": " + d.Detail
	}
	return d.Reason
}

func renderDeliveries(v controller.AlertView) string {
	var b strings.Builder
	fmt.Fprintf(&b, "\n%s  %s  status %s\n", v.ID, v.Title, v.Status)
	tw := newTab(&b)
	fmt.Fprintln(tw, "TERMINAL\tSTATE\tCODE\tREASON\tUPDATED")
	ds := append(v.Deliveries[:0:0], v.Deliveries...)
	sort.Slice(ds, func(i, j int) bool { return ds[i].TerminalID < ds[j].TerminalID })
	for _, d := range ds {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", d.TerminalID, d.State, protocol.BroadcastState(d.State), reasonText(d), d.UpdatedAt.Local().Format("15:04:05.000"))
	}
	tw.Flush()
	return b.String()
}

// follow reads a Server-Sent Events stream and signals on each event.
func (c *client) follow(ctx context.Context, path string, changed chan<- struct{}) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+path, nil)
	if err != nil {
		return
	}
	req.Header.Set("Authorization", "Bearer "+c.token)
	resp, err := (&http.Client{}).Do(req)
	if err != nil {
		return
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), "data:") {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
}

func cmdCancel(ctx context.Context, args []string) error {
	fs := newFlags("alert cancel")
	api := apiFlags(fs)
	reason := fs.String("reason", "", "why it is cancelled")
	c, pos, err := connect(fs, api, args, "ID")
	if err != nil {
		return err
	}
	var v controller.AlertView
	if err := c.post(ctx, "/api/v1/alerts/"+url.PathEscape(pos[0])+"/cancel", map[string]string{"reason": *reason}, &v); err != nil {
		return err
	}
	fmt.Printf("alert %s cancelled\n", v.ID)
	return nil
}

func cmdAlerts(ctx context.Context, args []string) error {
	fs := newFlags("alerts")
	api := apiFlags(fs)
	c, _, err := connect(fs, api, args)
	if err != nil {
		return err
	}
	var vs []controller.AlertView
	if err := c.get(ctx, "/api/v1/alerts", &vs); err != nil {
		return err
	}
	tw := table()
	fmt.Fprintln(tw, "EBM ID\tCREATED\tLEVEL\tCLASS\tTITLE\tSTATUS\tDONE/TOTAL")
	for _, v := range vs {
		title, status := v.Title, v.Status
		if v.Drill {
			title = "[演练 DRILL] " + title
		}
		if v.NeedsReview {
			status += " · ISSUED WITHOUT APPROVAL, NEEDS REVIEW"
		}
		fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d/%d\n", v.ID, v.CreatedAt.Local().Format("01-02 15:04"), v.Level, v.Class, title, status,
			v.Counts[protocol.DeliveryDone], total(v.Counts))
	}
	return tw.Flush()
}
