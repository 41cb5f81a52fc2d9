package protocol

import "strconv"

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
		t := r.time(`,"terminal_time":`)
		hb.TerminalTime = &t
	}
	r.lit(`}`)
	return hb, !r.bad && len(r.b) == 0
}
