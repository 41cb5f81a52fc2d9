package controller

import (
	"crypto/ed25519"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/controller/access"
	"dalaba/protocol"
)

// The schedule routes' lines in roles_test.go's matrix: who may call each.
func init() {
	managers := []string{access.Officer, access.Cadre}
	for pattern, roles := range map[string][]string{
		"GET /api/v1/programs":                  everyone,
		"POST /api/v1/programs":                 managers,
		"GET /api/v1/programs/{id}":             everyone,
		"PATCH /api/v1/programs/{id}":           managers,
		"DELETE /api/v1/programs/{id}":          managers,
		"GET /api/v1/programs/{id}/occurrences": everyone,
	} {
		if _, ok := routeRoles[pattern]; !ok {
			routeRoles[pattern] = roles
		}
	}
}

// rawTerminal speaks the terminal protocol by hand over a real WebSocket,
// so the controller's side of schedules is tested without a terminal
// daemon: it reads and verifies commands, and sends reports as a spool
// would, with growing sequence numbers.
type rawTerminal struct {
	h    *testController
	id   string
	area string
	key  ed25519.PrivateKey
	ws   *websocket.Conn
	ring protocol.Keyring
	seq  uint64
}

// newRawTerminal enrolls a terminal in area through the API, without
// connecting it.
func (h *testController) newRawTerminal(t *testing.T, area, name string) (*rawTerminal, string) {
	t.Helper()
	var res EnrollResult
	h.mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: area, Name: name}, &res)
	code, _, _ := strings.Cut(res.EnrollToken, ".")
	return &rawTerminal{h: h, id: res.Terminal.ID, area: area, key: newKey(t)}, code
}

// connect says hello (with the enrollment code on the first connection)
// and reads the welcome.
func (rt *rawTerminal) connect(t *testing.T, code string) {
	t.Helper()
	if rt.ws != nil {
		rt.ws.Close()
	}
	ws, f := rawHello(t, rt.h.ws, rt.key, code)
	var w protocol.Welcome
	if f.Type != protocol.TypeWelcome || protocol.DecodeBody(f, &w) != nil || w.TerminalID != rt.id {
		t.Fatalf("hello of %s answered %s %s", rt.id, f.Type, f.Body)
	}
	rt.ws, rt.ring, rt.seq = ws, protocol.Keyring{}, w.AckedSeq
	for _, k := range w.Keys {
		rt.ring.Add(k.PublicKey)
	}
}

func (rt *rawTerminal) read(t *testing.T) protocol.Frame {
	t.Helper()
	rt.ws.SetReadDeadline(time.Now().Add(waitLimit))
	_, msg, err := rt.ws.ReadMessage()
	if err != nil {
		t.Fatalf("terminal %s: read: %v", rt.id, err)
	}
	f, err := protocol.Decode(msg)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func (rt *rawTerminal) write(t *testing.T, typ protocol.Type, body any) {
	t.Helper()
	msg, err := protocol.Encode(typ, body)
	if err != nil {
		t.Fatal(err)
	}
	if err := rt.ws.WriteMessage(websocket.TextMessage, msg); err != nil {
		t.Fatalf("terminal %s: write: %v", rt.id, err)
	}
}

// schedule reads the next frame, which must be a schedule command that
// verifies with the issuing keys and is addressed to this terminal now.
func (rt *rawTerminal) schedule(t *testing.T) *protocol.Command {
	t.Helper()
	f := rt.read(t)
	var sc protocol.SignedCommand
	if f.Type != protocol.TypeCommand || protocol.DecodeBody(f, &sc) != nil {
		t.Fatalf("terminal %s got %s %s, want a schedule command", rt.id, f.Type, f.Body)
	}
	cmd, err := rt.ring.Open(sc, protocol.Recipient{TerminalID: rt.id, AreaCode: rt.area}, rt.h.clock.now())
	if err != nil {
		t.Fatalf("schedule command does not open: %v", err)
	}
	if cmd.Kind != protocol.KindSchedule || cmd.Schedule == nil {
		t.Fatalf("command %s is a %s, want a schedule", cmd.ID, cmd.Kind)
	}
	return cmd
}

// nothingQueued pings and checks the pong is the next frame: the
// controller queued nothing for this terminal before it.
func (rt *rawTerminal) nothingQueued(t *testing.T) {
	t.Helper()
	rt.write(t, protocol.TypePing, protocol.Ping{TerminalTime: time.Now()})
	if f := rt.read(t); f.Type != protocol.TypePong {
		t.Fatalf("terminal %s got %s %.200s before the pong, want nothing", rt.id, f.Type, f.Body)
	}
}

// report sends a report with the next sequence number and waits for its ack.
func (rt *rawTerminal) report(t *testing.T, r protocol.Report) {
	t.Helper()
	rt.seq++
	r.Seq, r.At = rt.seq, rt.h.clock.now()
	rt.write(t, protocol.TypeReport, r)
	f := rt.read(t)
	var a protocol.Ack
	if f.Type != protocol.TypeAck || protocol.DecodeBody(f, &a) != nil || a.Seq != rt.seq {
		t.Fatalf("report %d answered %s %s, want its ack", rt.seq, f.Type, f.Body)
	}
}

// done confirms a command, as a terminal does once it saved a schedule.
func (rt *rawTerminal) done(t *testing.T, cmd *protocol.Command) {
	t.Helper()
	rt.report(t, protocol.Report{Kind: protocol.ReportReceipt, Receipt: &protocol.Receipt{CommandID: cmd.ID, State: protocol.DeliveryDone}})
}

// occurred reports an occurrence's outcome.
func (rt *rawTerminal) occurred(t *testing.T, o protocol.Occurrence) {
	t.Helper()
	rt.report(t, protocol.Report{Kind: protocol.ReportOccurrence, Occurrence: &o})
}
