package relay_test

import (
	"bytes"
	"context"
	"errors"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"dalaba/terminal/relay"
	"dalaba/terminal/relay/relaysim"
)

const (
	// timeout is what a healthy board is given; it answers in milliseconds,
	// the rest is room for -race on a loaded 2-core machine.
	timeout = 3 * time.Second
	// faultTimeout is what a faulty board is given: tests wait it out.
	faultTimeout = 500 * time.Millisecond
	// slack is how late past its timeout a call may return and still count
	// as "not a hang" when the machine is busy.
	slack = 2 * time.Second
)

// rig is a driver wired to a simulated board.
type rig struct {
	board *relaysim.Board
	relay relay.Relay
	line  *relaysim.Line // nil over a pipe
}

// transports lists how a driver reaches the simulator.
var transports = []struct {
	name string
	port func(t *testing.T, b *relaysim.Board) (relay.Port, *relaysim.Line)
}{
	{"pipe", pipeTo},
	{"pty", ptyTo},
}

var protocols = []string{"lcus", "modbus"}

// pipeTo serves b on one end of a net.Pipe and returns the other end.
func pipeTo(t *testing.T, b *relaysim.Board) (relay.Port, *relaysim.Line) {
	dev, brd := net.Pipe()
	serve(t, func(ctx context.Context) error { return b.Serve(ctx, brd) })
	t.Cleanup(func() { brd.Close() })
	return dev, nil
}

// ptyTo serves b on a socat pty pair with tarm/serial on both ends.
func ptyTo(t *testing.T, b *relaysim.Board) (relay.Port, *relaysim.Line) {
	line := relaysim.StartLine(t)
	serve(t, func(ctx context.Context) error { return relaysim.ServeSerial(ctx, line.Board, b) })
	p, err := relay.OpenSerial(line.Device, 9600, 100*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	return p, line
}

// serve runs fn until the test ends and reports an unexpected error.
func serve(t *testing.T, fn func(ctx context.Context) error) {
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fn(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil && !t.Failed() && !strings.Contains(t.Name(), "cut") {
			t.Errorf("board: %v", err)
		}
	})
}

func newRig(t *testing.T, protocol string, port func(*testing.T, *relaysim.Board) (relay.Port, *relaysim.Line), timeout time.Duration) *rig {
	t.Helper()
	b := relaysim.New(protocol, 1)
	p, line := port(t, b)
	var r relay.Relay
	if protocol == "lcus" {
		r = relay.NewLCUS(p, 1, timeout)
	} else {
		r = relay.NewModbus(p, 1, 1, timeout)
	}
	t.Cleanup(func() { r.Close() })
	return &rig{board: b, relay: r, line: line}
}

func ops(log []relaysim.Event) string {
	var s []string
	for _, e := range log {
		s = append(s, e.Op)
	}
	return strings.Join(s, ",")
}

func TestSwitchVerified(t *testing.T) {
	tests := []struct {
		protocol string
		wantOps  string
		onFrame  []byte
		offFrame []byte
	}{
		{"lcus", "on,query,off,query", []byte{0xA0, 0x01, 0x01, 0xA2}, []byte{0xA0, 0x01, 0x00, 0xA1}},
		{"modbus", "on,read,off,read",
			[]byte{0x01, 0x05, 0x00, 0x00, 0xFF, 0x00, 0x8C, 0x3A}, []byte{0x01, 0x05, 0x00, 0x00, 0x00, 0x00, 0xCD, 0xCA}},
	}
	for _, tt := range tests {
		for _, tr := range transports {
			t.Run(tt.protocol+"/"+tr.name, func(t *testing.T) {
				rg := newRig(t, tt.protocol, tr.port, timeout)
				if err := rg.relay.Set(true); err != nil {
					t.Fatalf("Set(true): %v", err)
				}
				if !rg.board.On(1) {
					t.Fatal("board channel 1 is off after Set(true)")
				}
				if on, err := rg.relay.State(); err != nil || !on {
					t.Fatalf("State() = %v, %v; want true", on, err)
				}
				if err := rg.relay.Set(false); err != nil {
					t.Fatalf("Set(false): %v", err)
				}
				if rg.board.On(1) {
					t.Fatal("board channel 1 is on after Set(false)")
				}
				log := rg.board.Log()
				// on, query (Set), query (State), off, query (Set); drop State's.
				if len(log) == 5 {
					log = append(log[:2:2], log[3:]...)
				}
				if got := ops(log); got != tt.wantOps {
					t.Fatalf("board log = %s, want %s", got, tt.wantOps)
				}
				if !bytes.Equal(log[0].Raw, tt.onFrame) || !bytes.Equal(log[2].Raw, tt.offFrame) {
					t.Errorf("frames = % X / % X, want % X / % X", log[0].Raw, log[2].Raw, tt.onFrame, tt.offFrame)
				}
				for i, e := range log {
					if e.Channel != 1 || (i > 0 && e.At.Before(log[i-1].At)) {
						t.Errorf("event %d = %+v: wrong channel or out of order", i, e)
					}
				}
			})
		}
	}
}

func TestFaults(t *testing.T) {
	tests := []struct {
		name    string
		timeout time.Duration
		fault   func(b *relaysim.Board)
		wantErr error  // nil: Set must succeed
		wantMsg string // part of the error text
	}{
		{"mute", faultTimeout, func(b *relaysim.Board) { b.SetMute(true) }, relay.ErrNoAnswer, "did not answer"},
		{"stuck", timeout, func(b *relaysim.Board) { b.SetStuck(true) }, relay.ErrReadBack, "relay: channel 1 reads OFF after ON"},
		{"junk before replies", timeout, func(b *relaysim.Board) {
			b.SetNoise([]byte{0xFF, 0xA0, 0x07, 0x55, 0x00, 0x01, 0x05, 0x00, 0x01, 0x01})
		}, nil, ""},
	}
	for _, tt := range tests {
		for _, protocol := range protocols {
			for _, tr := range transports {
				t.Run(tt.name+"/"+protocol+"/"+tr.name, func(t *testing.T) {
					rg := newRig(t, protocol, tr.port, tt.timeout)
					tt.fault(rg.board)
					start := time.Now()
					err := rg.relay.Set(true)
					took := time.Since(start)
					if took > tt.timeout+slack {
						t.Errorf("Set took %v, timeout is %v", took, tt.timeout)
					}
					if tt.wantErr == nil {
						if err != nil {
							t.Fatalf("Set(true): %v", err)
						}
						if on, err := rg.relay.State(); err != nil || !on {
							t.Fatalf("State() = %v, %v; want true", on, err)
						}
						return
					}
					if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
						t.Fatalf("Set(true) error = %v, want %v containing %q", err, tt.wantErr, tt.wantMsg)
					}
					if errors.Is(err, relay.ErrNoAnswer) && took < tt.timeout {
						t.Errorf("gave up after %v, before the %v timeout", took, tt.timeout)
					}
				})
			}
		}
	}
}

func TestLineCut(t *testing.T) {
	for _, protocol := range protocols {
		t.Run("cut/"+protocol, func(t *testing.T) {
			rg := newRig(t, protocol, ptyTo, timeout)
			if err := rg.relay.Set(true); err != nil {
				t.Fatalf("Set(true) before the cut: %v", err)
			}
			rg.line.Cut()
			for i, op := range []string{"Set", "State"} {
				start := time.Now()
				var err error
				if i == 0 {
					err = rg.relay.Set(false)
				} else {
					_, err = rg.relay.State()
				}
				if err == nil {
					t.Fatalf("%s after the cut succeeded", op)
				}
				if took := time.Since(start); took > timeout+slack {
					t.Errorf("%s took %v after the cut, timeout is %v", op, took, timeout)
				}
				t.Logf("%s after the cut: %v", op, err)
			}
		})
	}
}

func TestConcurrentUse(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			rg := newRig(t, protocol, pipeTo, timeout)
			var wg sync.WaitGroup
			for g := range 6 {
				wg.Go(func() {
					for i := range 4 {
						if err := rg.relay.Set((g+i)%2 == 0); err != nil {
							t.Errorf("Set: %v", err)
						}
					}
				})
			}
			wg.Wait()
			log := rg.board.Log()
			if len(log) != 2*6*4 {
				t.Fatalf("board saw %d frames, want %d", len(log), 2*6*4)
			}
			// Each switch must be followed by its own verification.
			for i := 0; i < len(log); i += 2 {
				if sw, v := log[i].Op, log[i+1].Op; (sw != "on" && sw != "off") || (v != "query" && v != "read") {
					t.Fatalf("frames %d,%d = %s,%s: exchanges interleaved", i, i+1, sw, v)
				}
			}
		})
	}
}

func TestClosedDriver(t *testing.T) {
	for _, protocol := range protocols {
		t.Run(protocol, func(t *testing.T) {
			rg := newRig(t, protocol, pipeTo, timeout)
			if err := rg.relay.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			start := time.Now()
			if err := rg.relay.Set(true); err == nil || !strings.Contains(err.Error(), "closed") {
				t.Fatalf("Set after Close = %v, want a closed error", err)
			}
			if took := time.Since(start); took > 50*time.Millisecond {
				t.Errorf("Set after Close took %v", took)
			}
		})
	}
}
