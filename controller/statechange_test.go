package controller

import (
	"testing"
	"time"

	"dalaba/protocol"
)

// TestTerminalStateFollowsPlayback: a terminal tells the controller at once
// when it starts and stops playing, not at its next heartbeat (5 s here),
// so the county's overview shows the truth within a second.
func TestTerminalStateFollowsPlayback(t *testing.T) {
	h := startController(t, nil)
	_, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	h.setPolicy(t, noApproval())
	m := h.upload(t, tone(600*time.Millisecond))
	// Let the connection's first heartbeats pass, so the next is 5 s away.
	time.Sleep(500 * time.Millisecond)
	v := h.send(t, AlertRequest{Title: "状态", Level: 4, Areas: []string{villageA}, Media: []string{m.SHA256}})
	for _, want := range []string{protocol.StatePlaying, protocol.StateIdle} {
		start := time.Now()
		for h.terminalRow(t, id).State != want {
			if time.Since(start) > 1500*time.Millisecond {
				t.Fatalf("terminal state %q, want %q within 1.5 s (the heartbeat is every 5 s)", h.terminalRow(t, id).State, want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	h.waitDelivery(t, v.ID, id, protocol.DeliveryDone)
}
