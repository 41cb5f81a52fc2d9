package terminal

import (
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// countingConn counts the writes that reach the socket.
type countingConn struct {
	net.Conn
	writes atomic.Int32
}

func (c *countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// Frames queued behind the one being written go out with it, in one write
// to the socket, and the peer reads every one of them, in order; a frame
// alone is written at once.
func TestFramesQueuedTogetherAreWrittenTogether(t *testing.T) {
	t.Parallel()
	got := make(chan string, 16)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ws, err := (&websocket.Upgrader{}).Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer ws.Close()
		for {
			_, msg, err := ws.ReadMessage()
			if err != nil {
				return
			}
			got <- string(msg)
		}
	}))
	defer srv.Close()
	d, err := (&Terminal{}).dialer() // the terminal's own: its connections are batchConns
	if err != nil {
		t.Fatal(err)
	}
	ws, _, err := d.Dial("ws"+strings.TrimPrefix(srv.URL, "http"), nil)
	if err != nil {
		t.Fatal(err)
	}
	s := newSession(srv.URL, ws)
	if s.batch == nil {
		t.Fatal("the session found no batchConn under its WebSocket")
	}
	defer s.close()
	cc := &countingConn{Conn: s.batch.Conn} // nothing writes yet
	s.batch.Conn = cc
	frames := []string{`{"type":"a"}`, `{"type":"b"}`, `{"type":"c"}`}
	for _, f := range frames {
		s.out <- []byte(f)
	}
	before := cc.writes.Load()
	go s.writeLoop()
	for _, want := range frames {
		select {
		case g := <-got:
			if g != want {
				t.Fatalf("peer read %s, want %s", g, want)
			}
		case <-time.After(waitLong):
			t.Fatalf("peer did not get %s", want)
		}
	}
	if n := cc.writes.Load() - before; n != 1 {
		t.Errorf("three frames queued together took %d writes, want 1", n)
	}
	before = cc.writes.Load()
	s.send([]byte(`{"type":"d"}`))
	select {
	case g := <-got:
		if g != `{"type":"d"}` {
			t.Fatalf("peer read %s, want d", g)
		}
	case <-time.After(waitLong):
		t.Fatal("a frame alone was held")
	}
	if n := cc.writes.Load() - before; n != 1 {
		t.Errorf("a frame alone took %d writes, want 1", n)
	}
}
