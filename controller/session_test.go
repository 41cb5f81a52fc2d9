package controller

import "testing"

// A session that has ended must refuse every frame: a caller that is told
// "sent" records the delivery as sent to a terminal that is gone.
func TestSendOnEndedSessionFails(t *testing.T) {
	s := &session{ctrl: make(chan []byte, controlQueue), media: make(chan []byte, mediaQueue), done: make(chan struct{})}
	close(s.done)
	for i := 0; i < 200; i++ {
		if s.send([]byte(`{"type":"ack"}`)) {
			t.Fatalf("send %d on an ended session reported success", i+1)
		}
	}
	if n := len(s.ctrl); n != 0 {
		t.Fatalf("%d frames queued on an ended session", n)
	}
}
