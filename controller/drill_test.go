package controller

import (
	"encoding/json"
	"net/http"
	"testing"
	"time"

	"dalaba/protocol"
)

// TestDrillPriority: the county places drills on the terminals' priority
// ladder; the signed command carries the place, a real alert does not.
func TestDrillPriority(t *testing.T) {
	h := startController(t, nil)
	h.enrolledTerminal(t, villageA, "大巷村1号")
	p := noApproval()
	p.DrillPriority = protocol.PriorityDaily
	h.setPolicy(t, p)
	m := h.upload(t, tone(100*time.Millisecond))
	cases := []struct {
		name    string
		msgType int
		want    int
	}{
		{"terminal drill below live speech", protocol.MsgTerminalDrill, protocol.PriorityDaily},
		{"real alert by class and level", protocol.MsgActual, 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := h.send(t, AlertRequest{Title: "演练", Level: 2, MsgType: c.msgType, Areas: []string{villageA}, Media: []string{m.SHA256}})
			var sc protocol.SignedCommand
			h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+v.ID+"/command", nil, &sc)
			var cmd protocol.Command
			if err := json.Unmarshal(sc.Payload, &cmd); err != nil {
				t.Fatal(err)
			}
			if cmd.Alert.Priority != c.want {
				t.Fatalf("signed priority %d, want %d", cmd.Alert.Priority, c.want)
			}
		})
	}
}
