package controller

import (
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

// paddedPing is a ping frame of exactly size bytes: the padding travels in
// a field the controller ignores.
func paddedPing(t *testing.T, size int) []byte {
	t.Helper()
	head := `{"type":"ping","body":{"terminal_time":"2026-11-26T10:00:00Z","pad":"`
	tail := `"}}`
	if size < len(head)+len(tail) {
		t.Fatalf("a ping cannot be %d bytes", size)
	}
	return []byte(head + strings.Repeat("x", size-len(head)-len(tail)) + tail)
}

// TestOversizedFrameClosesConnection: after a valid hello, a text frame of
// protocol.MaxFrameBytes is read and answered; one byte more and the
// controller closes the connection with "message too big" (1009), and the
// terminal is offline.
func TestOversizedFrameClosesConnection(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageA, Name: "大巷村1号"}, &res)
	code, _, _ := strings.Cut(res.EnrollToken, ".")
	ws, f := rawHello(t, h.ws, newKey(t), code)
	var w protocol.Welcome
	if f.Type != protocol.TypeWelcome || protocol.DecodeBody(f, &w) != nil || w.TerminalID != res.Terminal.ID {
		t.Fatalf("hello answered %s %s, want a welcome", f.Type, f.Body)
	}
	id := w.TerminalID
	waitFor(t, "terminal online", func() bool { return h.terminalRow(t, id).State != "offline" })

	// At the limit: the ping is answered.
	if err := ws.WriteMessage(websocket.TextMessage, paddedPing(t, protocol.MaxFrameBytes)); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, msg, err := ws.ReadMessage()
		if err != nil {
			t.Fatalf("a frame of exactly %d bytes: connection ended: %v", protocol.MaxFrameBytes, err)
		}
		if f, err := protocol.Decode(msg); err == nil && f.Type == protocol.TypePong {
			break
		}
	}

	// One byte over: closed, nothing answered.
	if err := ws.WriteMessage(websocket.TextMessage, paddedPing(t, protocol.MaxFrameBytes+1)); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(waitLimit))
	for {
		_, msg, err := ws.ReadMessage()
		if err == nil {
			if f, derr := protocol.Decode(msg); derr == nil && f.Type == protocol.TypePong {
				t.Fatalf("a frame of %d bytes was answered", protocol.MaxFrameBytes+1)
			}
			continue
		}
		var ce *websocket.CloseError
		if !errors.As(err, &ce) || ce.Code != websocket.CloseMessageTooBig {
			t.Fatalf("connection ended with %v, want close code %d (message too big)", err, websocket.CloseMessageTooBig)
		}
		break
	}
	h.waitOffline(t, id)
}
