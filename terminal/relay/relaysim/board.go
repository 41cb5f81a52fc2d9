// Package relaysim simulates the serial relay boards that package relay drives,
// so that tests can switch "relays" over an in-memory pipe or a real pty pair
// (see StartLine) and then check what the board received.
package relaysim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// Channels is how many relay channels a simulated board has (1..Channels).
const Channels = 8

// Event is one frame the board received.
type Event struct {
	At      time.Time
	Channel int    // 1-based; for "read", the first coil's channel
	Op      string // "on", "off", "query" (LCUS) or "read" (Modbus read coils)
	Raw     []byte // the frame as received
}

// Board is a relay board simulator that answers LCUS and Modbus RTU frames as
// a real board does, with 1..Channels channels:
//
//   - LCUS: A0 <ch> <00 off|01 on|02 query> <sum>; on/off frames get no
//     reply, a query gets the state frame A0 <ch> <00|01> <sum>.
//   - Modbus RTU at its slave address: function 05 (write single coil) is
//     echoed, function 01 (read coils) is answered with the coil bits; a bad
//     CRC or another address gets no reply; an unknown function, coil or value
//     gets an exception reply.
//
// Bytes that do not form a valid frame are skipped. A Board is safe for
// concurrent use; Serve it on one line at a time.
type Board struct {
	protocol string
	slave    byte

	mu      sync.Mutex
	on      [Channels + 1]bool
	log     []Event
	changed chan struct{} // closed and replaced when log grows
	mute    bool
	stuck   bool
	noise   []byte
}

// New returns a board speaking protocol "lcus" or "modbus" (at address
// slave; ignored for LCUS) with all relays off. It panics on another protocol.
func New(protocol string, slave byte) *Board {
	if protocol != "lcus" && protocol != "modbus" {
		panic(fmt.Sprintf("relaysim: unknown protocol %q (want lcus or modbus)", protocol))
	}
	return &Board{protocol: protocol, slave: slave, changed: make(chan struct{})}
}

// On reports whether the relay of channel is on.
func (b *Board) On(channel int) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return channel >= 1 && channel <= Channels && b.on[channel]
}

// SetMute makes the board stop answering (it still hears and switches).
func (b *Board) SetMute(mute bool) { b.mu.Lock(); b.mute = mute; b.mu.Unlock() }

// SetStuck makes the board ignore switch commands and keep its state, while
// it still acknowledges and answers queries: it then answers with the wrong
// state, like a welded relay.
func (b *Board) SetStuck(stuck bool) { b.mu.Lock(); b.stuck = stuck; b.mu.Unlock() }

// SetNoise makes the board send noise before every reply (nil: none), like a
// line that picks up junk.
func (b *Board) SetNoise(noise []byte) { b.mu.Lock(); b.noise = slices.Clone(noise); b.mu.Unlock() }

// Log returns every frame the board received, in order.
func (b *Board) Log() []Event {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.log)
}

// WaitFor waits until cond holds for the log, or ctx ends.
func (b *Board) WaitFor(ctx context.Context, cond func([]Event) bool) error {
	for {
		b.mu.Lock()
		ok, changed := cond(slices.Clone(b.log)), b.changed
		b.mu.Unlock()
		if ok {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return fmt.Errorf("relaysim: waiting for board log: %w", ctx.Err())
		}
	}
}

// Serve reads frames from rw and answers them until a read or write fails or
// ctx ends (it then returns nil). A read that returns io.EOF or
// io.ErrClosedPipe, or a write that returns io.ErrClosedPipe, means the line
// was closed and ends Serve with nil; a port whose reads time out
// with (0, io.EOF) must be wrapped, as ServeSerial does.
// Serve does not close rw; if rw has SetReadDeadline, Serve uses it to stop
// its reader when ctx ends, otherwise that reader stops when rw is closed.
func (b *Board) Serve(ctx context.Context, rw io.ReadWriter) error {
	chunks := make(chan []byte)
	readErr := make(chan error, 1)
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			buf := make([]byte, 256)
			n, err := rw.Read(buf)
			if n > 0 {
				select {
				case chunks <- buf[:n]:
				case <-stop:
					return
				}
			}
			if err != nil {
				readErr <- err
				return
			}
		}
	}()
	if d, ok := rw.(interface{ SetReadDeadline(time.Time) error }); ok {
		defer context.AfterFunc(ctx, func() { _ = d.SetReadDeadline(time.Now()) })()
	}
	var pending []byte
	for {
		select {
		case <-ctx.Done():
			return nil
		case err := <-readErr:
			if ctx.Err() != nil || errors.Is(err, io.EOF) || errors.Is(err, io.ErrClosedPipe) {
				return nil // the line was closed, at either end
			}
			return fmt.Errorf("relaysim: read: %w", err)
		case c := <-chunks:
			var reply []byte
			pending, reply = b.handle(append(pending, c...), time.Now())
			if len(reply) > 0 {
				if _, err := rw.Write(reply); err != nil {
					if ctx.Err() != nil || errors.Is(err, io.ErrClosedPipe) {
						return nil
					}
					return fmt.Errorf("relaysim: write: %w", err)
				}
			}
		}
	}
}

// handle consumes the complete frames at the start of p and returns the rest
// and the bytes to send back.
func (b *Board) handle(p []byte, now time.Time) (rest, reply []byte) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for len(p) > 0 {
		var n int
		var ev *Event
		var out []byte
		if b.protocol == "lcus" {
			n, ev, out = b.lcus(p)
		} else {
			n, ev, out = b.modbus(p)
		}
		if n == 0 {
			break
		}
		if ev != nil {
			ev.At, ev.Raw = now, slices.Clone(p[:n])
			b.log = append(b.log, *ev)
			close(b.changed)
			b.changed = make(chan struct{})
		}
		if out != nil && !b.mute {
			reply = append(append(reply, b.noise...), out...)
		}
		p = p[n:]
	}
	return slices.Clone(p), reply
}
