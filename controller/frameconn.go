package controller

import (
	"bufio"
	"net"
	"net/http"
	"sync"
	"syscall"
	"time"
)

// frameConn is a terminal's connection as the WebSocket library reads it.
// It watches the bytes read from the socket go by and finds where each
// WebSocket frame ends (RFC 6455 §5.2: only the headers are parsed), so
// that after each message the session can tell whether the library holds
// bytes it has read but not yet returned. When it holds none, the session
// needs no goroutine until the socket is readable again (idlepoll).
type frameConn struct {
	net.Conn         // as accepted; read and written as it is when it has no socket of its own
	sock     *socket // the socket, read and written by the session's own descriptor; nil for none
	pos      int64   // bytes read from the socket
	hdr      [14]byte
	nhdr     int       // bytes of the current frame's header seen so far
	skip     int64     // bytes of the current frame's payload not yet seen
	ends     []int64   // where each message read from the socket, not yet taken, ends
	broken   bool      // a header made no sense: never report drained
	more     bool      // the last read from the socket filled its buffer: the socket may hold more
	special  bool      // a frame the library answers itself is among the bytes read and not yet returned
	stash    *[]byte   // read by prime, not yet returned; from stashes
	rest     []byte    // what of stash is left
	received time.Time // the kernel's receive time of what prime read, when it says
}

// newFrameConn wraps conn, with its socket when it has one.
func newFrameConn(conn net.Conn) *frameConn {
	return &frameConn{Conn: conn, sock: newSocket(conn)}
}

var stashes = sync.Pool{New: func() any { b := make([]byte, 1024); return &b }}

func (c *frameConn) Read(p []byte) (int, error) {
	if c.stash != nil {
		n := copy(p, c.rest)
		if c.rest = c.rest[n:]; len(c.rest) == 0 {
			stashes.Put(c.stash)
			c.stash, c.rest = nil, nil
		}
		return n, nil
	}
	var n int
	var err error
	if c.sock != nil {
		n, err = c.sock.read(p)
	} else {
		n, err = c.Conn.Read(p)
	}
	c.more = n == len(p)
	c.see(p[:n])
	return n, err
}

// Write writes p to the socket with system calls that never wait, waiting
// in Go's poller, as net.Conn does, only while the socket has no room.
func (c *frameConn) Write(p []byte) (int, error) {
	if c.sock == nil {
		return c.Conn.Write(p)
	}
	return c.sock.write(p)
}

func (c *frameConn) SetReadDeadline(t time.Time) error {
	if c.sock == nil {
		return c.Conn.SetReadDeadline(t)
	}
	return c.sock.setReadDeadline(t)
}

func (c *frameConn) SetWriteDeadline(t time.Time) error {
	if c.sock == nil {
		return c.Conn.SetWriteDeadline(t)
	}
	return c.sock.setWriteDeadline(t)
}

func (c *frameConn) SetDeadline(t time.Time) error {
	if c.sock == nil {
		return c.Conn.SetDeadline(t)
	}
	c.sock.setReadDeadline(t)
	return c.sock.setWriteDeadline(t)
}

func (c *frameConn) Close() error {
	if c.sock == nil {
		return c.Conn.Close()
	}
	return c.sock.close()
}

// writable reports whether the socket has room for a write now.
func (c *frameConn) writable() bool { return c.sock != nil && c.sock.writable() }

// prime reads what the socket holds without waiting, for Read to return
// next, and notes when the kernel received it. It reports false when the
// socket holds nothing (the idle poller's news was of bytes a reader has
// taken already), true when it held data, or an end or error that the
// next Read will meet again.
func (c *frameConn) prime() bool {
	buf := stashes.Get().(*[]byte)
	n, err := c.sock.recv(*buf)
	if err != nil || n <= 0 {
		stashes.Put(buf)
		return err != syscall.EAGAIN
	}
	c.received = c.sock.received
	c.more = n == len(*buf)
	c.stash, c.rest = buf, (*buf)[:n]
	c.see(c.rest)
	return true
}

// see parses b, the next bytes read from the socket.
func (c *frameConn) see(b []byte) {
	for len(b) > 0 && !c.broken {
		if c.skip > 0 {
			k := int64(len(b))
			if k > c.skip {
				k = c.skip
			}
			c.skip -= k
			c.pos += k
			b = b[k:]
			if c.skip == 0 {
				c.frameEnd()
			}
			continue
		}
		c.hdr[c.nhdr] = b[0]
		c.nhdr++
		c.pos++
		b = b[1:]
		if c.nhdr < 2 {
			continue
		}
		size := 2
		switch c.hdr[1] & 0x7f {
		case 126:
			size += 2
		case 127:
			size += 8
		}
		if c.hdr[1]&0x80 != 0 {
			size += 4 // masking key
		}
		if c.nhdr < size {
			continue
		}
		var length int64
		switch l := c.hdr[1] & 0x7f; l {
		case 126:
			length = int64(c.hdr[2])<<8 | int64(c.hdr[3])
		case 127:
			for _, x := range c.hdr[2:10] {
				length = length<<8 | int64(x)
			}
			if length < 0 {
				c.broken = true
				return
			}
		default:
			length = int64(l)
		}
		c.skip = length
		if length == 0 {
			c.frameEnd()
		}
	}
}

// frameEnd notes the end of the frame whose header is in hdr: a data frame
// with FIN set ends a message (a control frame ends none).
func (c *frameConn) frameEnd() {
	if c.hdr[0]&0x80 != 0 && c.hdr[0]&0x08 == 0 {
		c.ends = append(c.ends, c.pos)
	}
	// Control frames (a ping, a close) and frames the library takes for a
	// protocol error (reserved bits or opcodes, no mask) it answers with a
	// write of its own.
	if op := c.hdr[0] & 0x0f; op > 2 || c.hdr[0]&0x70 != 0 || c.hdr[1]&0x80 == 0 {
		c.special = true
	}
	c.nhdr = 0
}

// took is called after each message the library returns, in order. It
// reports whether the library has now returned every byte read from the
// socket, so that nothing waits in its buffer, and the socket held no
// more than was read (the read did not fill its buffer). Only then may
// the session park: the idle poller is edge-triggered, and has no news of
// bytes that came before the session parked and were never read.
func (c *frameConn) took() bool {
	if len(c.ends) == 0 || c.broken {
		return false
	}
	end := c.ends[0]
	if len(c.ends) == 1 {
		c.ends = c.ends[:0]
	} else {
		c.ends = append(c.ends[:0], c.ends[1:]...)
	}
	if end != c.pos {
		return false
	}
	c.special = false // every byte read is returned, special frames too
	return !c.more
}

// whole returns how many messages the library can return from the bytes
// read and not yet returned, when those are whole data messages and
// nothing else, and the socket holds no more (see took); 0 when they end
// inside a message or hold a special frame (one the library answers
// itself, with a write that may wait), or more may wait in the socket.
// Called once everything before them was taken (took).
func (c *frameConn) whole() int {
	if c.broken || c.special || c.more || len(c.ends) == 0 || c.ends[len(c.ends)-1] != c.pos {
		return 0
	}
	return len(c.ends)
}

// frameWriter hands the WebSocket upgrader a frameConn when it hijacks
// the HTTP connection.
type frameWriter struct {
	http.ResponseWriter
	fc *frameConn
}

func (w *frameWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	conn, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.fc = newFrameConn(conn)
	return w.fc, brw, nil
}
