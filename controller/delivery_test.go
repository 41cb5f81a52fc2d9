package controller

import (
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// receiptStates lists the states a terminal reported for one alert.
func receiptStates(rs []protocol.Receipt, ebmID string) []string {
	var out []string
	for _, r := range rs {
		if r.EBMID == ebmID {
			out = append(out, r.State)
		}
	}
	return out
}

func TestAlertToOnlineTerminalReachesDone(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(300*time.Millisecond))
	ta, idA := h.enrolledTerminal(t, villageA, "大巷村1号")
	_, idB := h.enrolledTerminal(t, villageB, "大将村1号")

	v := h.send(t, AlertRequest{Title: "防汛预警", Level: 2, EventType: "11B00", Areas: []string{villageA}, Media: []string{media.SHA256}})
	if err := protocol.ValidEBMID(v.ID); err != nil {
		t.Fatal(err)
	}
	h.waitDelivery(t, v.ID, idA, protocol.DeliveryDone)

	got := h.view(t, v.ID)
	if len(got.Deliveries) != 1 || got.Deliveries[0].TerminalID != idA {
		t.Fatalf("deliveries %+v, want one to %s only", got.Deliveries, idA)
	}
	if len(got.Counts) != 1 || got.Counts[protocol.DeliveryDone] != 1 {
		t.Fatalf("counts %v", got.Counts)
	}
	// Counts only, for a client following a large alert.
	var counts AlertView
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+v.ID+"?deliveries=false", nil, &counts)
	if counts.Deliveries != nil || counts.Counts[protocol.DeliveryDone] != 1 || counts.ID != v.ID {
		t.Fatalf("?deliveries=false answered deliveries %+v, counts %v for %s", counts.Deliveries, counts.Counts, counts.ID)
	}
	if status, raw := h.call(t, "GET", "/api/v1/alerts/"+v.ID+"?deliveries=some", nil, nil); status != http.StatusBadRequest || !strings.Contains(string(raw), "deliveries") {
		t.Fatalf("?deliveries=some: %d %s, want 400 naming the parameter", status, raw)
	}
	want := []string{protocol.DeliveryAccepted, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone}
	if states := receiptStates(h.receipts(t, idA), v.ID); !slices.Equal(states, want) {
		t.Fatalf("terminal reported %v, want %v", states, want)
	}
	if rs := h.receipts(t, idB); len(rs) != 0 {
		t.Fatalf("terminal outside the area reported %+v", rs)
	}
	if st := ta.Status(); st.RelayOn || st.Playing != "" {
		t.Fatalf("terminal after done: relay on %v, playing %q", st.RelayOn, st.Playing)
	}
	// The signed command as stored is the one that was sent: it verifies
	// under the controller's key and names this alert.
	var sc protocol.SignedCommand
	h.mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+v.ID+"/command", nil, &sc)
	ring := protocol.Keyring{}
	for _, k := range h.c.publicKeys() {
		ring.Add(k.PublicKey)
	}
	cmd, err := ring.Open(sc, protocol.Recipient{TerminalID: idA, AreaCode: villageA}, time.Now())
	if err != nil || cmd.Alert.EBMID != v.ID || cmd.ID != v.CommandID || cmd.Alert.Media[0].SHA256 != media.SHA256 {
		t.Fatalf("stored command: %+v, %v", cmd, err)
	}
}

func TestOfflineTerminalGetsAlertWhenItConnects(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(200*time.Millisecond))
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	tt.stop()
	h.waitOffline(t, id)

	v := h.send(t, AlertRequest{Title: "山洪预警", Level: 3, Areas: []string{township}, Media: []string{media.SHA256}})
	if v.Counts[protocol.DeliveryOffline] != 1 || len(v.Counts) != 1 {
		t.Fatalf("counts right after create %v, want 1 offline", v.Counts)
	}
	if d, _ := deliveryOf(h.view(t, v.ID), id); d.State != protocol.DeliveryOffline {
		t.Fatalf("delivery %+v, want offline", d)
	}

	runTerminal(t, tt.cfg) // the same terminal comes back
	h.waitDelivery(t, v.ID, id, protocol.DeliveryDone)
	want := []string{protocol.DeliveryAccepted, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone}
	if states := receiptStates(h.receipts(t, id), v.ID); !slices.Equal(states, want) {
		t.Fatalf("terminal reported %v, want %v", states, want)
	}
}

func TestCancelWhilePlaying(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	const length = 4 * time.Second
	media := h.upload(t, tone(length))
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")

	v := h.send(t, AlertRequest{Title: "撤离通知", Level: 1, Areas: []string{villageA}, Media: []string{media.SHA256}})
	h.waitDelivery(t, v.ID, id, protocol.DeliveryPlaying)
	if !tt.Status().RelayOn {
		t.Fatal("terminal reports playing but its relay is off")
	}
	start := time.Now()
	var cv AlertView
	h.officer(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/cancel", map[string]string{"reason": "误发"}, &cv)
	if cv.Status != store.AlertCancelled {
		t.Fatalf("alert status %s after cancel", cv.Status)
	}
	d := h.waitDelivery(t, v.ID, id, protocol.DeliveryCancelled)
	if took := time.Since(start); took >= length {
		t.Fatalf("cancel took %s, the whole tone's length", took)
	}
	waitFor(t, "relay off after cancel", func() bool { return !tt.Status().RelayOn })
	if d.UpdatedAt.IsZero() {
		t.Fatalf("cancelled delivery %+v has no time", d)
	}
	status, raw := h.officer(t).call(t, "POST", "/api/v1/alerts/"+v.ID+"/cancel", nil, nil)
	if status != http.StatusConflict {
		t.Fatalf("second cancel: %d %s, want 409", status, raw)
	}
}

func TestCancelForOfflineTerminal(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(200*time.Millisecond))
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	tt.stop()
	h.waitOffline(t, id)

	v := h.send(t, AlertRequest{Title: "误发的预警", Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}})
	var cv AlertView
	h.officer(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+v.ID+"/cancel", nil, &cv)
	if cv.Counts[protocol.DeliveryCancelled] != 1 || len(cv.Counts) != 1 {
		t.Fatalf("counts right after cancel %v, want 1 cancelled", cv.Counts)
	}

	back := runTerminal(t, tt.cfg)
	h.waitOnline(t, back, id)
	// A later alert on the same link: commands arrive in order, so once it
	// is done the cancelled one would have been played before it.
	marker := h.send(t, AlertRequest{Title: "测试", Level: 4, Areas: []string{villageA}, Media: []string{media.SHA256}})
	h.waitDelivery(t, marker.ID, id, protocol.DeliveryDone)

	if d, _ := deliveryOf(h.view(t, v.ID), id); d.State != protocol.DeliveryCancelled {
		t.Fatalf("cancelled delivery is now %+v", d)
	}
	rs := h.receipts(t, id)
	if states := receiptStates(rs, v.ID); len(states) != 0 {
		t.Fatalf("terminal acted on the cancelled alert: %v", states)
	}
	if states := receiptStates(rs, marker.ID); len(states) == 0 {
		t.Fatal("no receipts for the marker alert")
	}
}

// deliveryEvent is the data of a delivery event.
func deliveryEvent(t *testing.T, e events.Event) store.Delivery {
	t.Helper()
	var d store.Delivery
	raw, _ := e.Data.(json.RawMessage)
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("delivery event data %s: %v", raw, err)
	}
	return d
}

func TestEventsStreamOneAlert(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	media := h.upload(t, tone(200*time.Millisecond))
	tt, id := h.enrolledTerminal(t, villageA, "大巷村1号")
	tt.stop()
	h.waitOffline(t, id)

	// Two alerts for the offline terminal; the stream follows only the first.
	v := h.send(t, AlertRequest{Title: "一号", Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}})
	other := h.send(t, AlertRequest{Title: "二号", Level: 2, Areas: []string{villageA}, Media: []string{media.SHA256}})
	stream := h.eventStream(t, "alert="+v.ID)
	all := h.eventStream(t, "")

	runTerminal(t, tt.cfg)
	var states []string
	deadline := time.After(waitLimit)
	for len(states) == 0 || states[len(states)-1] != protocol.DeliveryDone {
		select {
		case e, ok := <-stream:
			if !ok {
				t.Fatalf("stream ended after %v", states)
			}
			if e.Kind != events.KindDelivery || e.AlertID != v.ID {
				t.Fatalf("stream for %s carried %s event of alert %q", v.ID, e.Kind, e.AlertID)
			}
			d := deliveryEvent(t, e)
			if d.AlertID != v.ID || d.TerminalID != id {
				t.Fatalf("delivery event %+v", d)
			}
			states = append(states, d.State)
		case <-deadline:
			t.Fatalf("no done event; saw %v", states)
		}
	}
	want := []string{protocol.DeliverySent, protocol.DeliveryAccepted, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone}
	if !slices.Equal(states, want) {
		t.Fatalf("events %v, want %v", states, want)
	}
	// The unfiltered stream sees the other alert and the terminal too.
	seen := map[string]bool{}
	for !seen[other.ID] || !seen[events.KindTerminal] {
		select {
		case e := <-all:
			if e.AlertID != "" {
				seen[e.AlertID] = true
			}
			seen[e.Kind] = true
		case <-time.After(waitLimit):
			t.Fatalf("unfiltered stream saw %v", seen)
		}
	}
}
