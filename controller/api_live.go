package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/gorilla/websocket"
)

// The operator's live speech WebSocket (docs/protocol.md, "Live speech").
const (
	liveHelloWait = 10 * time.Second // for the first message, the request
	liveIdleWait  = 5 * time.Second  // between audio frames
	liveReadLimit = 64 << 10
)

// liveUpgrader leaves the Origin check to apiLive, which knows whether the
// request is a browser's (session cookie) or a program's (API token).
var liveUpgrader = websocket.Upgrader{ReadBufferSize: 4096, WriteBufferSize: 4096, CheckOrigin: func(*http.Request) bool { return true }}

// LiveMessage is a text message on the live WebSocket, either way.
type LiveMessage struct {
	Type       string `json:"type"` // C→O: started, ended, error; O→C: end
	AlertID    string `json:"alert_id,omitempty"`
	Terminals  int    `json:"terminals,omitempty"` // targets
	Online     int    `json:"online,omitempty"`    // targets connected at the start
	MaxSeconds int    `json:"max_seconds,omitempty"`
	Reason     string `json:"reason,omitempty"` // ended: end, closed, idle, limit, error
	Frames     int    `json:"frames,omitempty"`
	Dropped    int    `json:"dropped,omitempty"`
	Seconds    int    `json:"seconds,omitempty"`
	Error      string `json:"error,omitempty"`
	Field      string `json:"field,omitempty"`
}

// sameOrigin reports whether a browser's WebSocket request comes from the
// console's own origin: the CSRF defence of a cookie-authenticated
// WebSocket, which no CSRF header can protect.
func sameOrigin(r *http.Request) bool {
	u, err := url.Parse(r.Header.Get("Origin"))
	return err == nil && u.Host != "" && strings.EqualFold(u.Host, r.Host)
}

// apiLive is GET /api/v1/live: a WebSocket whose first text message is a
// LiveRequest, authorised and scoped like composing an alert of its class;
// then binary messages of PCM (s16le, 16 kHz, mono; 20 ms each) until a
// text {"type":"end"}, a close, liveIdleWait without audio or the time limit.
func (c *Controller) apiLive(w http.ResponseWriter, r *http.Request, p *principal) {
	if p.session != nil && !sameOrigin(r) {
		c.auditAs(r.Context(), p, "access.denied", "GET /api/v1/live", "", "", "cross-origin WebSocket from "+r.Header.Get("Origin"))
		writeError(w, http.StatusForbidden, forbidden("live speech from a page of another origin (%q) is refused", r.Header.Get("Origin")))
		return
	}
	conn, err := liveUpgrader.Upgrade(w, r, nil)
	if err != nil {
		return // the upgrader answered
	}
	defer conn.Close()
	conn.SetReadLimit(liveReadLimit)
	say := func(m LiveMessage) {
		conn.SetWriteDeadline(time.Now().Add(writeWait))
		conn.WriteJSON(m)
	}
	refuse := func(err error) {
		m := LiveMessage{Type: "error", Error: err.Error()}
		var ve *ValidationError
		switch {
		case errors.As(err, &ve):
			m.Field = ve.Field
		case errors.Is(err, errForbidden):
		default:
			c.log.Error("live", "err", err)
			m.Error = "internal error; see the controller log"
		}
		say(m)
		conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, "refused"), time.Now().Add(time.Second))
	}

	conn.SetReadDeadline(time.Now().Add(liveHelloWait))
	kind, msg, err := conn.ReadMessage()
	if err != nil {
		return
	}
	var req LiveRequest
	dec := json.NewDecoder(bytes.NewReader(msg))
	dec.DisallowUnknownFields()
	if kind != websocket.TextMessage {
		refuse(invalid("body", "the first message must be the JSON request (targets, title, class), not audio"))
		return
	}
	if err := dec.Decode(&req); err != nil {
		refuse(invalid("body", "not valid JSON for a live request: %v", err))
		return
	}
	req.defaults()
	if err := c.mayCompose(r.Context(), p, req.alertRequest()); err != nil {
		refuse(err)
		return
	}
	ls, err := c.StartLive(r.Context(), p.name(), req)
	if err != nil {
		refuse(err)
		return
	}
	c.auditAs(r.Context(), p, "live.start", ls.alert.ID, "", "live", ls.describe())
	say(LiveMessage{Type: "started", AlertID: ls.alert.ID, Terminals: len(ls.targets), Online: ls.online(), MaxSeconds: int(ls.limit / time.Second)})

	reason := c.relayLive(conn, ls)
	frames, dropped, d := ls.End()
	c.auditAs(r.Context(), p, "live.end", ls.alert.ID, "live", reason,
		fmt.Sprintf("%s after %s, %d frames, %d dropped", reason, d, frames, dropped))
	c.log.Info("live speech ended", "alert", ls.alert.ID, "by", p.name(), "reason", reason, "duration", d, "frames", frames, "dropped", dropped)
	say(LiveMessage{Type: "ended", AlertID: ls.alert.ID, Reason: reason, Frames: frames, Dropped: dropped, Seconds: int(d / time.Second)})
	conn.WriteControl(websocket.CloseMessage, websocket.FormatCloseMessage(websocket.CloseNormalClosure, reason), time.Now().Add(time.Second))
}

// relayLive passes the operator's audio on until the session ends, and
// says why it ended.
func (c *Controller) relayLive(conn *websocket.Conn, ls *liveSession) string {
	deadline := ls.begun.Add(ls.limit)
	for {
		wait := time.Now().Add(liveIdleWait)
		if deadline.Before(wait) {
			wait = deadline
		}
		conn.SetReadDeadline(wait)
		kind, msg, err := conn.ReadMessage()
		var ne interface{ Timeout() bool }
		switch {
		case err != nil && errors.As(err, &ne) && ne.Timeout() && !time.Now().Before(deadline):
			return "limit"
		case err != nil && errors.As(err, &ne) && ne.Timeout():
			return "idle"
		case err != nil:
			return "closed"
		case kind == websocket.TextMessage:
			var m LiveMessage
			if json.Unmarshal(msg, &m) == nil && m.Type == "end" {
				return "end"
			}
		default:
			if err := ls.Send(msg); err != nil {
				conn.SetWriteDeadline(time.Now().Add(writeWait))
				conn.WriteJSON(LiveMessage{Type: "error", Error: err.Error(), Field: "audio"})
				return "error"
			}
		}
	}
}
