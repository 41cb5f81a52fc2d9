package protocol

import (
	"bytes"
	"strconv"
	"time"
)

// DecodeHeartbeat decodes a heartbeat's body as DecodeBody does. A body
// exactly as json.Marshal writes a Heartbeat, with plain strings (printable
// ASCII without quotes or backslashes), is read by hand, without reflection
// (FuzzDecodeHeartbeat holds it to json.Unmarshal's result): a controller
// reads one from every terminal every interval (docs/benchmarks.md, "Idle
// fleet"). Any other body goes to json.Unmarshal.
func DecodeHeartbeat(f Frame) (Heartbeat, error) {
	if hb, ok := readHeartbeat(f.Body); ok {
		return hb, nil
	}
	var hb Heartbeat
	err := DecodeBody(f, &hb)
	return hb, err
}

// readHeartbeat reads b by hand; ok is false when b is not of the form it
// reads.
func readHeartbeat(b []byte) (hb Heartbeat, ok bool) {
	r := fieldReader{b: b}
	hb.State = r.str(`{"state":`)
	hb.Volume = int(r.int(`,"volume":`, strconv.IntSize))
	hb.RelayOK = r.bool(`,"relay_ok":`)
	hb.RelayOn = r.bool(`,"relay_on":`)
	hb.AudioOK = r.bool(`,"audio_ok":`)
	if r.next(`,"playing":`) {
		hb.Playing = r.str(`,"playing":`)
	}
	hb.Firmware = r.str(`,"firmware":`)
	hb.UptimeSecs = r.int(`,"uptime_s":`, 64)
	hb.CacheBytes = r.int(`,"cache_bytes":`, 64)
	hb.Pending = int(r.int(`,"pending_reports":`, strconv.IntSize))
	if r.next(`,"terminal_time":`) {
		r.lit(`,"terminal_time":`)
		if q := r.quoted(); q != nil {
			var t time.Time
			if t.UnmarshalJSON(q) != nil {
				r.bad = true
			}
			hb.TerminalTime = &t
		}
	}
	r.lit(`}`)
	return hb, !r.bad && len(r.b) == 0
}

// fieldReader reads a JSON object of known fields in a known order; bad is
// set at the first byte that is not as expected, and then stays set.
type fieldReader struct {
	b   []byte
	bad bool
}

func (r *fieldReader) next(name string) bool { return !r.bad && bytes.HasPrefix(r.b, []byte(name)) }

func (r *fieldReader) lit(s string) {
	if !r.next(s) {
		r.bad = true
		return
	}
	r.b = r.b[len(s):]
}

// quoted reads a plain string, quotes included.
func (r *fieldReader) quoted() []byte {
	if r.bad || len(r.b) == 0 || r.b[0] != '"' {
		r.bad = true
		return nil
	}
	for i := 1; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			q := r.b[:i+1]
			r.b = r.b[i+1:]
			return q
		case c < 0x20 || c > 0x7e || c == '\\':
			r.bad = true
			return nil
		}
	}
	r.bad = true
	return nil
}

func (r *fieldReader) str(name string) string {
	r.lit(name)
	q := r.quoted()
	if q == nil {
		return ""
	}
	return string(q[1 : len(q)-1])
}

// int reads an integer as JSON writes one: an optional minus and digits
// without a leading zero, no fraction or exponent, within bits.
func (r *fieldReader) int(name string, bits int) int64 {
	r.lit(name)
	if r.bad {
		return 0
	}
	n := 0
	if n < len(r.b) && r.b[n] == '-' {
		n++
	}
	digits := n
	for n < len(r.b) && r.b[n] >= '0' && r.b[n] <= '9' {
		n++
	}
	if n == digits || r.b[digits] == '0' && n > digits+1 {
		r.bad = true
		return 0
	}
	v, err := strconv.ParseInt(string(r.b[:n]), 10, bits)
	if err != nil {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *fieldReader) bool(name string) bool {
	r.lit(name)
	switch {
	case r.next("true"):
		r.b = r.b[4:]
		return true
	case r.next("false"):
		r.b = r.b[5:]
	default:
		r.bad = true
	}
	return false
}
