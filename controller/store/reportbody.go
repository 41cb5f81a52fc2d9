package store

import (
	"encoding/json"
	"strconv"
	"time"

	"dalaba/protocol"
)

// reportBody is the stored body of a report: json.Marshal(r). A receipt
// (most reports) whose strings need no escaping is written by hand, byte
// for byte as json.Marshal writes it (TestReportBodyAsMarshal), without
// reflection: json.Marshal cost about 5,500 instructions of a receipt's
// (docs/benchmarks.md, "Receipts written per second").
func reportBody(r protocol.Report) ([]byte, error) {
	if b, ok := appendReceiptBody(make([]byte, 0, 192), r); ok {
		return b, nil
	}
	return json.Marshal(r)
}

// appendReceiptBody appends json.Marshal(r) to b if r is a receipt and
// nothing else, its time has a four-digit year and its strings are plain
// (plainJSON); ok is false, and b as given, otherwise.
func appendReceiptBody(b []byte, r protocol.Report) (_ []byte, ok bool) {
	c := r.Receipt
	if c == nil || r.Fault != nil || r.Rejection != nil || r.Occurrence != nil || r.Switch != nil ||
		r.At.Year() < 0 || r.At.Year() > 9999 ||
		!plainJSON(r.Kind) || !plainJSON(c.CommandID) || !plainJSON(c.EBMID) || !plainJSON(c.State) ||
		!plainJSON(c.Reason) || !plainJSON(c.Detail) {
		return b, false
	}
	b = append(b, `{"seq":`...)
	b = strconv.AppendUint(b, r.Seq, 10)
	b = append(b, `,"at":"`...)
	b = r.At.AppendFormat(b, time.RFC3339Nano)
	b = appendField(append(b, '"'), `,"kind":`, r.Kind)
	b = appendField(b, `,"receipt":{"command_id":`, c.CommandID)
	if c.EBMID != "" {
		b = appendField(b, `,"ebm_id":`, c.EBMID)
	}
	b = appendField(b, `,"state":`, c.State)
	if c.Reason != "" {
		b = appendField(b, `,"reason":`, c.Reason)
	}
	if c.Detail != "" {
		b = appendField(b, `,"detail":`, c.Detail)
	}
	return append(b, "}}"...), true
}

// appendField appends name (with its punctuation) and the plain string s
// quoted.
func appendField(b []byte, name, s string) []byte {
	b = append(b, name...)
	b = append(b, '"')
	b = append(b, s...)
	return append(b, '"')
}

// plainJSON says whether json.Marshal writes s as it is between quotes:
// printable ASCII without the quote, the backslash, and the <, > and &
// that it escapes for HTML.
func plainJSON(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c > 0x7e || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			return false
		}
	}
	return true
}
