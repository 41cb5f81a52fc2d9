package protocol

import "time"

// Report kinds.
const (
	ReportReceipt   = "receipt"
	ReportFault     = "fault"
	ReportRejection = "rejection"
)

// Report is what a terminal spools and sends upward. Seq is assigned by the
// terminal's spool, increases by one per report and never repeats; the
// controller acknowledges by Seq and MUST store a report at most once.
type Report struct {
	Seq        uint64      `json:"seq"`
	At         time.Time   `json:"at"` // terminal clock, corrected by its offset estimate
	Kind       string      `json:"kind"`
	Receipt    *Receipt    `json:"receipt,omitempty"`
	Fault      *Fault      `json:"fault,omitempty"`
	Rejection  *Rejection  `json:"rejection,omitempty"`
	Occurrence *Occurrence `json:"occurrence,omitempty"`
	Switch     *Switch     `json:"switch,omitempty"`
}

// DecodeReport decodes a report's body as DecodeBody does. A receipt or a
// switch report exactly as json.Marshal writes one, with plain strings
// (printable ASCII without quotes or backslashes), is read by hand,
// without reflection (FuzzDecodeReport holds it to json.Unmarshal's
// result): in a fan-out every terminal sends three within a second or two,
// and decoding them by reflection was a sixth of the controller's work
// (docs/benchmarks.md, "Reports read by hand"). Any other body goes to
// json.Unmarshal.
func DecodeReport(f Frame) (Report, error) {
	if r, ok := readReport(f.Body); ok {
		return r, nil
	}
	var r Report
	err := DecodeBody(f, &r)
	return r, err
}

// readReport reads b by hand; ok is false when b is not of the form it
// reads.
func readReport(b []byte) (rep Report, ok bool) {
	r := fieldReader{b: b}
	rep.Seq = r.uint(`{"seq":`)
	rep.At = r.time(`,"at":`)
	rep.Kind = r.str(`,"kind":`)
	if r.next(`,"receipt":`) {
		rc := &Receipt{CommandID: r.str(`,"receipt":{"command_id":`)}
		rc.EBMID = r.optStr(`,"ebm_id":`)
		rc.State = r.str(`,"state":`)
		rc.Reason = r.optStr(`,"reason":`)
		rc.Detail = r.optStr(`,"detail":`)
		r.lit(`}`)
		rep.Receipt = rc
	}
	if r.next(`,"switch":`) {
		sw := &Switch{Action: r.str(`,"switch":{"action":`)}
		sw.From = r.optStr(`,"from":`)
		sw.To = r.optStr(`,"to":`)
		sw.At = r.time(`,"at":`)
		r.lit(`}`)
		rep.Switch = sw
	}
	r.lit(`}`)
	return rep, !r.bad && len(r.b) == 0
}

// Delivery states, as the controller tracks them per terminal. The terminal
// reports the ones from Accepted on.
const (
	DeliveryQueued    = "queued"    // created, not yet sent
	DeliveryOffline   = "offline"   // target not connected; sent when it returns
	DeliverySent      = "sent"      // written to the terminal's connection
	DeliveryAccepted  = "accepted"  // signature, validity and replay checks passed
	DeliveryRejected  = "rejected"  // refused; Reason says why
	DeliveryFetching  = "fetching"  // downloading media
	DeliveryPlaying   = "playing"   // relay on, audio out
	DeliveryDone      = "done"      // played to the end, relay off
	DeliveryFailed    = "failed"    // could not play; Reason says why
	DeliveryCancelled = "cancelled" // stopped by a cancel command
	DeliveryExpired   = "expired"   // validity passed before it could play
)

// DeliveryFinal reports whether no further state can follow s.
func DeliveryFinal(s string) bool {
	switch s {
	case DeliveryRejected, DeliveryDone, DeliveryFailed, DeliveryCancelled, DeliveryExpired:
		return true
	}
	return false
}

// deliveryRank orders states so a late, out-of-order report cannot move a
// delivery backwards.
var deliveryRank = map[string]int{
	DeliveryQueued: 0, DeliveryOffline: 1, DeliverySent: 2, DeliveryAccepted: 3,
	DeliveryFetching: 4, DeliveryPlaying: 5,
	DeliveryRejected: 9, DeliveryDone: 9, DeliveryFailed: 9, DeliveryCancelled: 9, DeliveryExpired: 9,
}

// DeliveryAdvances reports whether a delivery in state from may move to to.
func DeliveryAdvances(from, to string) bool {
	f, okf := deliveryRank[from]
	t, okt := deliveryRank[to]
	if !okf || !okt || DeliveryFinal(from) {
		return false
	}
	return t > f || (from == DeliveryOffline && to == DeliveryQueued)
}

// ValidDelivery reports whether s is a known delivery state.
func ValidDelivery(s string) bool { _, ok := deliveryRank[s]; return ok }

// BroadcastState maps a delivery state to the standard broadcast state code
// reported upward: 0 unprocessed, 1 waiting, 2 playing, 3 success, 4 failed,
// 5 cancelled.
func BroadcastState(s string) int {
	switch s {
	case DeliveryQueued:
		return 0
	case DeliveryOffline, DeliverySent, DeliveryAccepted, DeliveryFetching:
		return 1
	case DeliveryPlaying:
		return 2
	case DeliveryDone:
		return 3
	case DeliveryCancelled:
		return 5
	}
	return 4
}

// Receipt reports a step of one command's life on the terminal.
type Receipt struct {
	CommandID string `json:"command_id"`
	EBMID     string `json:"ebm_id,omitempty"`
	State     string `json:"state"`            // a Delivery* state
	Reason    string `json:"reason,omitempty"` // machine code for rejected/failed
	Detail    string `json:"detail,omitempty"` // human text
}

// Fault codes.
const (
	FaultRelay  = "relay"
	FaultAudio  = "audio"
	FaultMedia  = "media"
	FaultDisk   = "disk"
	FaultConfig = "config"
)

// Fault reports a fault raised (Active) or cleared.
type Fault struct {
	Code    string `json:"code"`
	Active  bool   `json:"active"`
	Message string `json:"message"`
}

// Rejection reports a command the terminal refused before trusting it
// (bad signature, unknown key, replay...). CommandID is set only when the
// command verified, since an unverified payload names nothing reliably.
type Rejection struct {
	CommandID  string `json:"command_id,omitempty"`
	KeyID      string `json:"kid,omitempty"`
	Reason     string `json:"reason"` // a Reject* value
	Detail     string `json:"detail"`
	Controller string `json:"controller"` // URL of the connection it came on
	PayloadSHA string `json:"payload_sha256"`
}
