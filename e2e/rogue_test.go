package e2e

import (
	"crypto/ed25519"
	"crypto/rand"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

// rogue is a server at a hijacked address: it speaks the protocol to a
// terminal but does not hold the controller's issuing key. It sends its
// commands after the welcome and keeps the reports it gets, acknowledging
// none, so the terminal still holds them for its real controller.
type rogue struct {
	srv      *httptest.Server
	commands []protocol.SignedCommand

	mu      sync.Mutex
	reports []protocol.Report
}

func startRogue(t testing.TB, commands []protocol.SignedCommand) *rogue {
	r := &rogue{commands: commands}
	up := websocket.Upgrader{}
	r.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		conn, err := up.Upgrade(w, req, nil)
		if err != nil {
			return
		}
		defer conn.Close()
		r.serve(t, conn)
	}))
	t.Cleanup(r.srv.Close)
	return r
}

func (r *rogue) url() string { return "ws" + r.srv.URL[len("http"):] + "/v1/terminal" }

func (r *rogue) serve(t testing.TB, conn *websocket.Conn) {
	nonce := make([]byte, 32)
	rand.Read(nonce)
	send := func(typ protocol.Type, body any) error {
		msg, err := protocol.Encode(typ, body)
		if err != nil {
			return err
		}
		return conn.WriteMessage(websocket.TextMessage, msg)
	}
	if send(protocol.TypeChallenge, protocol.Challenge{Version: protocol.Version, Nonce: nonce, ServerTime: time.Now()}) != nil {
		return
	}
	_, msg, err := conn.ReadMessage()
	if err != nil {
		return
	}
	f, err := protocol.Decode(msg)
	if err != nil {
		return
	}
	var h protocol.Hello
	if protocol.DecodeBody(f, &h) != nil {
		return
	}
	// Offer its own key too: an enrolled terminal must not pin it.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	send(protocol.TypeWelcome, protocol.Welcome{TerminalID: h.TerminalID, AreaCode: "450224100201", ServerTime: time.Now(),
		HeartbeatSeconds: 30, Keys: []protocol.PublicKey{{KeyID: protocol.KeyID(pub), PublicKey: pub}}})
	for _, c := range r.commands {
		if send(protocol.TypeCommand, c) != nil {
			return
		}
	}
	for {
		_, msg, err := conn.ReadMessage()
		if err != nil {
			return
		}
		f, err := protocol.Decode(msg)
		if err != nil || f.Type != protocol.TypeReport {
			continue
		}
		var rep protocol.Report
		if protocol.DecodeBody(f, &rep) == nil {
			r.mu.Lock()
			r.reports = append(r.reports, rep)
			r.mu.Unlock()
		}
	}
}

// rejections returns the reasons of the rejection reports received so far.
func (r *rogue) rejections() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, rep := range r.reports {
		if rep.Rejection != nil {
			out = append(out, rep.Rejection.Reason)
		}
	}
	return out
}
