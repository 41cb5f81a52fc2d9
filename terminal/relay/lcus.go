package relay

import (
	"fmt"
	"time"
)

// LCUS frame bytes.
const (
	LCUSHeader byte = 0xA0 // first byte of every LCUS frame
	LCUSOff    byte = 0x00 // command: switch off; in an answer: state off
	LCUSOn     byte = 0x01 // command: switch on; in an answer: state on
	LCUSQuery  byte = 0x02 // command: report the channel's state
)

// lcusSettle is the pause between a switch frame, which the board does not
// answer, and the query that verifies it, so that the board's MCU has parsed
// and latched the first frame before the second arrives.
const lcusSettle = 20 * time.Millisecond

// LCUSFrame builds the 4-byte LCUS frame A0 <channel> <cmd> <sum>, where sum is
// the low byte of the sum of the first three. The board's state answer has the
// same shape, with cmd replaced by LCUSOff or LCUSOn.
func LCUSFrame(channel int, cmd byte) []byte {
	ch := byte(channel)
	return []byte{LCUSHeader, ch, cmd, LCUSHeader + ch + cmd}
}

// LCUS drives one channel of an LCUS-type USB relay board. It is safe for
// concurrent use.
//
// The boards answer nothing to on/off frames. What they answer to a query
// differs between board revisions and is not documented by the vendors: this
// driver follows the project's reference (MISSION.md) and the simulator, and
// expects the query A0 <ch> 02 <sum> to be answered with a 4-byte state frame
// A0 <ch> <00 off|01 on> <sum>. Boards that answer a query with ASCII text
// (some answer the byte FF with "CH1:ON") or not at all cannot be verified
// and will fail with ErrNoAnswer; that is deliberate: an unverified amplifier
// is reported, not assumed.
type LCUS struct {
	link    *link
	channel int
	timeout time.Duration
}

var _ Relay = (*LCUS)(nil)

// NewLCUS drives an LCUS-type USB relay board (CH340, 9600 8N1) through p:
// frame A0 <ch> <00 off|01 on|02 query> <sum>. channel is 1-based (1..255).
// timeout bounds a whole Set or State call; <= 0 means DefaultTimeout.
//
// Set writes the on/off frame, then a query frame, and expects the board's
// 4-byte state frame A0 <ch> <state> <sum>; a missing, malformed or wrong
// answer is an error wrapping ErrNoAnswer or ErrReadBack. The driver owns p
// and closes it on Close.
func NewLCUS(p Port, channel int, timeout time.Duration) *LCUS {
	if timeout <= 0 {
		timeout = DefaultTimeout
	}
	return &LCUS{link: newLink(p), channel: channel, timeout: timeout}
}

// Set switches the channel and reads the state back.
func (r *LCUS) Set(on bool) error {
	if err := r.check(); err != nil {
		return err
	}
	if err := r.link.lock(); err != nil {
		return err
	}
	defer r.link.mu.Unlock()
	deadline := time.Now().Add(r.timeout)
	cmd := LCUSOff
	if on {
		cmd = LCUSOn
	}
	r.link.drain()
	if err := r.link.send(LCUSFrame(r.channel, cmd), deadline); err != nil {
		return fmt.Errorf("relay: channel %d: switch %s: %w", r.channel, onOff(on), err)
	}
	time.Sleep(lcusSettle)
	got, err := r.query(deadline)
	if err != nil {
		return fmt.Errorf("relay: channel %d: verify %s: %w", r.channel, onOff(on), err)
	}
	if got != on {
		return fmt.Errorf("relay: channel %d reads %s after %s: %w",
			r.channel, onOff(got), onOff(on), ErrReadBack)
	}
	return nil
}

// State queries the channel's state.
func (r *LCUS) State() (bool, error) {
	if err := r.check(); err != nil {
		return false, err
	}
	if err := r.link.lock(); err != nil {
		return false, err
	}
	defer r.link.mu.Unlock()
	on, err := r.query(time.Now().Add(r.timeout))
	if err != nil {
		return false, fmt.Errorf("relay: channel %d: query: %w", r.channel, err)
	}
	return on, nil
}

// Close closes the port.
func (r *LCUS) Close() error { return r.link.close() }

func (r *LCUS) check() error {
	if r.channel < 1 || r.channel > 255 {
		return fmt.Errorf("relay: LCUS channel %d out of range 1..255", r.channel)
	}
	return nil
}

// query sends a query frame and decodes the state answer. Callers hold the lock.
func (r *LCUS) query(deadline time.Time) (bool, error) {
	f, err := r.link.exchange(LCUSFrame(r.channel, LCUSQuery), lcusAnswer, deadline)
	if err != nil {
		return false, err
	}
	if int(f[1]) != r.channel {
		return false, fmt.Errorf("answer % X is for channel %d: %w: %w", f, f[1], ErrReadBack, ErrBadFrame)
	}
	switch f[2] {
	case LCUSOn:
		return true, nil
	case LCUSOff:
		return false, nil
	}
	return false, fmt.Errorf("answer % X has unknown state %#02x: %w: %w", f, f[2], ErrReadBack, ErrBadFrame)
}

// lcusAnswer recognises a 4-byte LCUS frame with a valid sum.
func lcusAnswer(b []byte) int {
	if b[0] != LCUSHeader {
		return -1
	}
	if len(b) < 4 {
		return 0
	}
	if b[0]+b[1]+b[2] != b[3] {
		return -1
	}
	return 4
}
