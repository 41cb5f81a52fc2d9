// Package relay drives the serial relay board that switches a terminal's
// loudspeaker amplifier on and off.
//
// Two board families are supported: LCUS-type USB relays (CH340, 9600 8N1,
// see NewLCUS) and Modbus RTU relay modules (see NewModbus). Every driver
// verifies a switch by reading the state back from the board, so a dead line,
// a silent board or a relay that did not move is reported as an error instead
// of being assumed to have worked.
//
// A driver owns the reads of its Port: use one driver per Port.
package relay

import (
	"errors"
	"fmt"
	"io"
	"os"
	"syscall"
	"time"

	"github.com/tarm/serial"
)

// Relay switches one amplifier's power. Implementations verify by reading back.
type Relay interface {
	// Set switches the relay and verifies the new state by reading it back.
	Set(on bool) error
	// State asks the board for the relay's current state.
	State() (bool, error)
	// Close releases the underlying port.
	Close() error
}

// Port is what a driver talks through: a real serial line, or an in-memory
// pipe to the simulator.
//
// A Read that times out may return (0, io.EOF), as tarm/serial does; drivers
// treat that as "no data yet". If the Port has SetReadDeadline or
// SetWriteDeadline methods (net.Conn, net.Pipe) drivers use them.
type Port interface {
	io.ReadWriter
	io.Closer
}

// Sentinel errors, checked with errors.Is.
var (
	// ErrNoAnswer means the board sent no valid frame before the timeout.
	ErrNoAnswer = errors.New("relay board did not answer")
	// ErrReadBack means the board answered, but not with the expected state.
	ErrReadBack = errors.New("relay read-back mismatch")
	// ErrBadFrame means the board sent bytes that are not a valid answer:
	// junk that never formed a frame, a frame for another channel, a Modbus
	// exception. It always comes together with ErrNoAnswer or ErrReadBack.
	ErrBadFrame = errors.New("malformed relay frame")
)

// minReadTimeout is the smallest read timeout a termios VTIME can express.
const minReadTimeout = 100 * time.Millisecond

// OpenSerial opens a serial line with tarm/serial at baud, 8N1.
//
// readTimeout bounds each Read (termios VTIME, 0.1 s steps, at most 25.5 s);
// values below 100 ms, including 0, become 100 ms so that a Read, and
// therefore Close, never blocks forever. A Read that times out returns
// (0, io.EOF). A line whose other end vanished (a USB adapter pulled out, the
// socat of a pty pair killed) makes Read fail with an error wrapping
// syscall.EIO: a tty that hung up answers reads at once with end-of-file,
// which is told apart from a timeout by how fast it came back.
func OpenSerial(path string, baud int, readTimeout time.Duration) (Port, error) {
	vtime := readTimeout.Truncate(minReadTimeout)
	if vtime < minReadTimeout {
		vtime = minReadTimeout
	}
	if vtime > 255*minReadTimeout {
		vtime = 255 * minReadTimeout
	}
	p, err := serial.OpenPort(&serial.Config{Name: path, Baud: baud, ReadTimeout: vtime})
	if err != nil {
		return nil, fmt.Errorf("relay: open serial port %s at %d baud: %w", path, baud, err)
	}
	return &serialPort{path: path, port: p, vtime: vtime}, nil
}

// serialPort adds hang-up detection to a tarm port. Its errors are the
// *os.PathError values of the tty file, which name the path.
type serialPort struct {
	path  string
	port  *serial.Port
	vtime time.Duration
}

func (s *serialPort) Read(b []byte) (int, error) {
	start := time.Now()
	n, err := s.port.Read(b)
	if n == 0 && len(b) > 0 && errors.Is(err, io.EOF) && time.Since(start) < s.vtime/4 {
		return 0, &os.PathError{Op: "read", Path: s.path, Err: fmt.Errorf("line hung up: %w", syscall.EIO)}
	}
	return n, err
}

func (s *serialPort) Write(b []byte) (int, error) { return s.port.Write(b) }

func (s *serialPort) Close() error { return s.port.Close() }

// onOff names a relay state the way the error messages print it.
func onOff(on bool) string {
	if on {
		return "ON"
	}
	return "OFF"
}
