package terminal

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"dalaba/protocol"
	"dalaba/terminal/relay"
	"dalaba/terminal/relay/relaysim"
)

// serialReadTimeout bounds one read of the serial line, so Close is quick.
const serialReadTimeout = 100 * time.Millisecond

// amplifier owns the relay that powers the loudspeaker amplifier. Every
// switch is verified by the driver; a failure raises the relay fault and the
// next success clears it.
type amplifier struct {
	t    *Terminal
	cfg  RelayConfig
	log  *slog.Logger
	open func(ctx context.Context) (relay.Relay, error) // replaced in tests

	mu     sync.Mutex
	ctx    context.Context // lives until stop, for the simulated board
	cancel context.CancelFunc
	r      relay.Relay // nil until opened, or after the line died
	on     bool        // last verified state
	inUse  bool        // between switchOn and switchOff
}

func newAmplifier(t *Terminal, cfg RelayConfig) *amplifier {
	a := &amplifier{t: t, cfg: cfg, log: t.log.With("subsystem", "relay")}
	a.open = a.openRelay
	return a
}

func (a *amplifier) none() bool { return a.cfg.Protocol == "none" }

// start opens the relay and switches it OFF, in case a crash left the
// amplifier powered.
func (a *amplifier) start(ctx context.Context) {
	if a.none() {
		return
	}
	a.mu.Lock()
	// The board must outlive Run's context: the last OFF comes after it ends.
	a.ctx, a.cancel = context.WithCancel(context.WithoutCancel(ctx))
	a.mu.Unlock()
	if err := a.set(false); err != nil {
		a.log.Error("relay not ready", "err", err)
	}
}

// stop closes the relay. The player has switched it OFF by then.
func (a *amplifier) stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.r != nil {
		a.r.Close()
		a.r = nil
	}
	if a.cancel != nil {
		a.cancel()
	}
}

func (a *amplifier) switchOn() error {
	a.mu.Lock()
	a.inUse = true
	a.mu.Unlock()
	return a.set(true)
}

func (a *amplifier) switchOff() error {
	err := a.set(false)
	a.mu.Lock()
	a.inUse = false
	a.mu.Unlock()
	return err
}

func (a *amplifier) isOn() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.on
}

// set switches the relay, opening it first if needed.
func (a *amplifier) set(on bool) error {
	if a.none() {
		return nil
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	r, err := a.relay()
	if err == nil {
		err = r.Set(on)
	}
	if err != nil {
		a.failed(err)
		return err
	}
	a.on = on
	a.log.Info("relay switched", "on", on)
	a.t.stateChanged()
	a.t.faults.clear(protocol.FaultRelay, fmt.Sprintf("relay switched %s and verified", onOff(on)))
	return nil
}

// probe asks an idle relay for its state, so a board that died between
// alerts is reported before the next alert needs it.
func (a *amplifier) probe() {
	if a.none() {
		return
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.inUse {
		return
	}
	r, err := a.relay()
	if err != nil {
		a.failed(err)
		return
	}
	on, err := r.State()
	if err != nil {
		a.failed(err)
		return
	}
	if on {
		a.log.Warn("relay reads ON while idle; switching it OFF")
		if err := r.Set(false); err != nil {
			a.failed(err)
			return
		}
	}
	a.on = false
	a.t.faults.clear(protocol.FaultRelay, "relay answers")
}

// relay returns the open driver, opening it if needed. Callers hold a.mu.
func (a *amplifier) relay() (relay.Relay, error) {
	if a.r != nil {
		return a.r, nil
	}
	ctx := a.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	r, err := a.open(ctx)
	if err != nil {
		return nil, err
	}
	a.r = r
	return r, nil
}

// failed raises the relay fault with the driver's error. A line that failed
// (not merely a board that did not answer) is closed, to be reopened.
func (a *amplifier) failed(err error) {
	a.t.faults.raise(protocol.FaultRelay, err.Error())
	if a.r != nil && !errors.Is(err, relay.ErrNoAnswer) && !errors.Is(err, relay.ErrReadBack) {
		a.r.Close()
		a.r = nil
	}
}

// openRelay opens the configured board.
func (a *amplifier) openRelay(ctx context.Context) (relay.Relay, error) {
	c := a.cfg
	timeout := ms(c.TimeoutMS)
	switch c.Protocol {
	case "lcus", "modbus":
		p, err := relay.OpenSerial(c.Port, c.Baud, serialReadTimeout)
		if err != nil {
			return nil, err
		}
		if c.Protocol == "lcus" {
			return relay.NewLCUS(p, c.Channel, timeout), nil
		}
		return relay.NewModbus(p, byte(c.Slave), c.Channel, timeout), nil
	case "sim":
		return newSimRelay(ctx, c.Channel, timeout), nil
	}
	return nil, fmt.Errorf("relay.protocol %q has no driver", c.Protocol)
}

// simRelay is the real LCUS driver talking over an in-memory pipe to a
// simulated board, for demos without hardware.
type simRelay struct {
	relay.Relay
	board  *relaysim.Board
	end    net.Conn
	cancel context.CancelFunc
}

func newSimRelay(ctx context.Context, channel int, timeout time.Duration) *simRelay {
	ours, theirs := net.Pipe()
	ctx, cancel := context.WithCancel(ctx)
	b := relaysim.New("lcus", 0)
	go b.Serve(ctx, theirs)
	return &simRelay{Relay: relay.NewLCUS(ours, channel, timeout), board: b, end: theirs, cancel: cancel}
}

func (s *simRelay) Close() error {
	err := s.Relay.Close()
	s.cancel()
	s.end.Close()
	return err
}

func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}
