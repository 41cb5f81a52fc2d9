package relay

import (
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"time"
)

// DefaultTimeout is used by the drivers when they are given a timeout <= 0.
const DefaultTimeout = time.Second

// errClosed is returned by a driver used after Close.
var errClosed = errors.New("relay: driver is closed")

// link is the request/answer engine shared by the drivers. A goroutine owns
// the port's reads and hands the bytes over a channel, so that an exchange can
// wait for an answer with an exact deadline whatever the Port is, and stale
// bytes can be dropped before each request.
type link struct {
	port Port

	mu      sync.Mutex // serialises exchanges; held for a whole Set or State
	closed  bool
	pending []byte // bytes received after the last frame of an exchange

	chunks    chan []byte
	quit      chan struct{} // closed by close
	done      chan struct{} // closed when the reader stops; err is then set
	err       error
	closeOnce sync.Once
}

// frameFunc recognises an answer at the start of b: it returns n > 0 when
// b[:n] is a complete, checksum-valid frame, 0 when more bytes are needed, and
// -1 when b[0] cannot start a frame (the byte is skipped to resynchronise).
type frameFunc func(b []byte) int

func newLink(p Port) *link {
	l := &link{
		port:   p,
		chunks: make(chan []byte, 64),
		quit:   make(chan struct{}),
		done:   make(chan struct{}),
	}
	go l.readLoop()
	return l
}

// readLoop copies everything the port delivers into l.chunks until the port
// fails. (0, io.EOF) is a read timeout and means no data yet.
func (l *link) readLoop() {
	defer close(l.done)
	buf := make([]byte, 256)
	for {
		start := time.Now()
		n, err := l.port.Read(buf)
		if n > 0 {
			select {
			case l.chunks <- slices.Clone(buf[:n]):
			case <-l.quit:
				l.err = errClosed
				return
			}
		}
		switch {
		case err == nil:
		case errors.Is(err, io.EOF):
			// A port that answers EOF at once (a closed pipe) must not make
			// this loop spin; a timed-out serial read already waited.
			if n == 0 && time.Since(start) < time.Millisecond {
				select {
				case <-time.After(10 * time.Millisecond):
				case <-l.quit:
					l.err = errClosed
					return
				}
			}
		default:
			select {
			case <-l.quit:
				l.err = errClosed
			default:
				l.err = err
			}
			return
		}
	}
}

// fault returns the reader's error if it has stopped.
func (l *link) fault() error {
	select {
	case <-l.done:
		return l.err
	default:
		return nil
	}
}

// drain drops bytes left over from earlier exchanges. Callers hold l.mu.
func (l *link) drain() {
	l.pending = nil
	for {
		select {
		case <-l.chunks:
		default:
			return
		}
	}
}

// send writes one request frame. Callers hold l.mu.
func (l *link) send(req []byte, deadline time.Time) error {
	if err := l.fault(); err != nil {
		return fmt.Errorf("serial line failed (board unplugged or powered off?): %w", err)
	}
	if d, ok := l.port.(interface{ SetWriteDeadline(time.Time) error }); ok {
		_ = d.SetWriteDeadline(deadline)
	}
	if _, err := l.port.Write(req); err != nil {
		return fmt.Errorf("send % X: %w", req, err)
	}
	return nil
}

// await reads until frame recognises an answer or the deadline passes. It
// returns the frame and how many junk bytes were skipped before it. Callers
// hold l.mu.
func (l *link) await(frame frameFunc, deadline time.Time) ([]byte, int, error) {
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	buf, junk := l.pending, 0
	l.pending = nil
	for {
		for len(buf) > 0 {
			n := frame(buf)
			if n > 0 {
				l.pending = buf[n:]
				return buf[:n:n], junk, nil
			}
			if n == 0 {
				break
			}
			buf, junk = buf[1:], junk+1
		}
		select {
		case c := <-l.chunks:
			buf = append(buf, c...)
		case <-l.done:
			return nil, junk, fmt.Errorf("serial line failed (board unplugged or powered off?): %w", l.err)
		case <-timer.C:
			if junk+len(buf) > 0 {
				return nil, junk, fmt.Errorf("%w (%d junk bytes skipped): %w",
					ErrNoAnswer, junk+len(buf), ErrBadFrame)
			}
			return nil, junk, ErrNoAnswer
		}
	}
}

// exchange drops stale input, sends req and awaits the answer.
func (l *link) exchange(req []byte, frame frameFunc, deadline time.Time) ([]byte, error) {
	l.drain()
	if err := l.send(req, deadline); err != nil {
		return nil, err
	}
	f, _, err := l.await(frame, deadline)
	return f, err
}

// lock takes the exchange lock, failing once the link is closed.
func (l *link) lock() error {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return errClosed
	}
	return nil
}

// close stops the reader and closes the port. It waits for an exchange in
// progress to finish.
func (l *link) close() error {
	var err error
	l.closeOnce.Do(func() {
		l.mu.Lock()
		l.closed = true
		l.mu.Unlock()
		close(l.quit)
		err = l.port.Close()
	})
	return err
}
