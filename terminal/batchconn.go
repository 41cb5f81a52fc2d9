package terminal

import (
	"crypto/tls"
	"net"
	"sync"

	"github.com/gorilla/websocket"
)

// batchConn is the connection under the WebSocket library. While the
// session's writer has more frames queued, it holds what the library
// writes and sends it with the last of them: the frames a terminal sends
// together (a receipt and a switch report as it starts playing, with the
// heartbeat of its new state) go in one system call and one TCP segment,
// and wake the controller's reader once, instead of one each.
type batchConn struct {
	net.Conn
	mu      sync.Mutex
	holding bool
	held    []byte
}

// maxBatch bounds what a batch holds: past it, the writer sends what it
// has and starts another.
const maxBatch = 16 << 10

func (c *batchConn) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.holding {
		c.held = append(c.held, p...)
		return len(p), nil
	}
	return c.Conn.Write(p)
}

// hold has writes held until send.
func (c *batchConn) hold() {
	c.mu.Lock()
	c.holding = true
	c.mu.Unlock()
}

// heldLen is how many bytes are held.
func (c *batchConn) heldLen() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.held)
}

// send writes what is held, in one write, and ends the hold.
func (c *batchConn) send() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.holding = false
	if len(c.held) == 0 {
		return nil
	}
	_, err := c.Conn.Write(c.held)
	if cap(c.held) > maxBatch { // a batch of many frames: its buffer is not kept
		c.held = nil
	} else {
		c.held = c.held[:0]
	}
	return err
}

// batchConnOf returns the batchConn under ws (beneath TLS, if any), or nil.
func batchConnOf(ws *websocket.Conn) *batchConn {
	conn := ws.NetConn()
	if tc, ok := conn.(*tls.Conn); ok {
		conn = tc.NetConn()
	}
	bc, _ := conn.(*batchConn)
	return bc
}
