package terminal

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
)

// handshake answers the challenge and reads the Welcome or Denied.
func (t *Terminal) handshake(ws *websocket.Conn) (protocol.Welcome, error) {
	var w protocol.Welcome
	ws.SetReadDeadline(time.Now().Add(handshakeWait))
	f, err := readFrame(ws)
	if err != nil {
		return w, fmt.Errorf("read challenge: %w", err)
	}
	var ch protocol.Challenge
	if f.Type != protocol.TypeChallenge {
		return w, fmt.Errorf("expected a challenge, got %q", f.Type)
	}
	if err := protocol.DecodeBody(f, &ch); err != nil {
		return w, err
	}
	if ch.Version != protocol.Version {
		return w, fmt.Errorf("%w: controller speaks version %d, terminal %d", protocol.ErrVersion, ch.Version, protocol.Version)
	}
	pub := t.key.Public().(ed25519.PublicKey)
	hello := protocol.Hello{
		Version:   protocol.Version,
		PublicKey: pub,
		Proof:     ed25519.Sign(t.key, protocol.HelloProof(ch.Nonce, pub)),
		Firmware:  Firmware,
		Hostname:  t.hostname(),
	}
	t.mu.Lock()
	if t.trust != nil {
		hello.TerminalID, hello.KeyIDs = t.trust.TerminalID, t.trust.keyIDs()
	} else {
		hello.EnrollCode = t.cfg.enrollCode()
	}
	t.mu.Unlock()
	b, err := protocol.Encode(protocol.TypeHello, hello)
	if err != nil {
		return w, err
	}
	ws.SetWriteDeadline(time.Now().Add(writeWait))
	if err := ws.WriteMessage(websocket.TextMessage, b); err != nil {
		return w, fmt.Errorf("send hello: %w", err)
	}
	ws.SetReadDeadline(time.Now().Add(handshakeWait))
	if f, err = readFrame(ws); err != nil {
		return w, fmt.Errorf("read welcome: %w", err)
	}
	switch f.Type {
	case protocol.TypeWelcome:
		return w, protocol.DecodeBody(f, &w)
	case protocol.TypeDenied:
		var d protocol.Denied
		if err := protocol.DecodeBody(f, &d); err != nil {
			return w, err
		}
		return w, &deniedError{d}
	}
	return w, fmt.Errorf("expected a welcome, got %q", f.Type)
}

func readFrame(ws *websocket.Conn) (protocol.Frame, error) {
	mt, msg, err := ws.ReadMessage()
	if err != nil {
		return protocol.Frame{}, err
	}
	if mt != websocket.TextMessage {
		return protocol.Frame{}, errors.New("binary message during the handshake")
	}
	return protocol.Decode(msg)
}

func (t *Terminal) hostname() string {
	if t.cfg.Name != "" {
		return t.cfg.Name
	}
	h, _ := os.Hostname()
	return h
}

// acceptWelcome enrolls on the first Welcome, pinning the fingerprinted key.
// After enrollment a Welcome changes nothing the terminal trusts.
func (t *Terminal) acceptWelcome(w protocol.Welcome) error {
	t.mu.Lock()
	tr := t.trust
	t.mu.Unlock()
	if tr != nil {
		if w.TerminalID != tr.TerminalID || w.AreaCode != tr.AreaCode {
			t.log.Warn("controller's welcome names another identity; keeping the enrolled one",
				"welcome_terminal_id", w.TerminalID, "welcome_area", w.AreaCode,
				"terminal_id", tr.TerminalID, "area", tr.AreaCode)
		}
		return nil
	}
	tr, err := enroll(w, t.cfg.fingerprint())
	if err != nil {
		if errors.Is(err, errKeyMismatch) {
			t.faults.raise(protocol.FaultConfig, errKeyMismatch.Error())
		}
		return fmt.Errorf("enroll: %w", err)
	}
	if err := saveTrust(t.cfg.DataDir, tr); err != nil {
		return fmt.Errorf("enroll: %w", err)
	}
	t.mu.Lock()
	t.trust, t.keyring = tr, tr.keyring()
	t.mu.Unlock()
	t.faults.clear(protocol.FaultConfig, "enrolled")
	t.log.Info("enrolled", "terminal_id", tr.TerminalID, "area", tr.AreaCode, "name", tr.Name, "kid", tr.Keys[0].KeyID)
	return nil
}
