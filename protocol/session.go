package protocol

import (
	"crypto/ed25519"
	"fmt"
	"time"
)

// Challenge opens every connection. The terminal proves possession of its
// key by signing Nonce (see HelloProof).
type Challenge struct {
	Version    int       `json:"version"`
	Nonce      []byte    `json:"nonce"` // 32 random bytes
	ServerTime time.Time `json:"server_time"`
}

// Hello answers a Challenge.
type Hello struct {
	Version    int               `json:"version"`
	PublicKey  ed25519.PublicKey `json:"public_key"`
	Proof      []byte            `json:"proof"`                 // Ed25519 over HelloProof(nonce, public key)
	TerminalID string            `json:"terminal_id,omitempty"` // known after enrollment
	EnrollCode string            `json:"enroll_code,omitempty"` // one-time code, first connection only
	Firmware   string            `json:"firmware"`
	Hostname   string            `json:"hostname,omitempty"`
	KeyIDs     []string          `json:"kids,omitempty"` // the issuing keys it trusts, once enrolled
}

// HelloProof is the message a terminal signs to answer a challenge.
func HelloProof(nonce []byte, pub ed25519.PublicKey) []byte {
	m := make([]byte, 0, len(helloContext)+len(nonce)+len(pub))
	m = append(m, helloContext...)
	m = append(m, nonce...)
	return append(m, pub...)
}

const helloContext = "dalaba/hello/v1\n"

// VerifyHello checks a hello against the challenge's nonce.
func VerifyHello(h Hello, nonce []byte) error {
	if h.Version != Version {
		return fmt.Errorf("%w: terminal speaks version %d, controller %d", ErrVersion, h.Version, Version)
	}
	if len(h.PublicKey) != ed25519.PublicKeySize {
		return fmt.Errorf("hello: public key of %d bytes", len(h.PublicKey))
	}
	if !ed25519.Verify(h.PublicKey, HelloProof(nonce, h.PublicKey), h.Proof) {
		return fmt.Errorf("hello: %w", ErrBadSignature)
	}
	return nil
}

// PublicKey is an issuing key the controller signs commands with.
type PublicKey struct {
	KeyID     string            `json:"kid"`
	PublicKey ed25519.PublicKey `json:"public_key"`
	NotAfter  time.Time         `json:"not_after,omitempty"`
}

// Welcome accepts an enrolled terminal. Nothing in it makes a terminal act:
// settings arrive as signed config commands.
type Welcome struct {
	TerminalID       string      `json:"terminal_id"` // the terminal's EBRID
	AreaCode         string      `json:"area_code"`   // its village, 12 digits
	Name             string      `json:"name"`
	ServerTime       time.Time   `json:"server_time"`
	HeartbeatSeconds int         `json:"heartbeat_seconds"`
	AckedSeq         uint64      `json:"acked_seq"` // highest report Seq the controller stored
	Keys             []PublicKey `json:"keys"`      // issuing keys; a terminal pins them only at enrollment, by fingerprint
}

// Denied refuses a terminal. The controller closes the connection after it.
type Denied struct {
	Reason string `json:"reason"` // one of the Deny* values
	Detail string `json:"detail"`
}

// Reasons a controller refuses a terminal.
const (
	DenyPending = "pending" // unknown key, put on the pending list for a technician
	DenyRevoked = "revoked"
	DenyBadCode = "bad_enroll_code"
	DenyVersion = "version"
	DenyProof   = "bad_proof"
	DenyBusy    = "duplicate_connection" // another connection holds this terminal
)

// Terminal states in a heartbeat.
const (
	StateIdle    = "idle"
	StatePlaying = "playing"
	StateFault   = "fault"
)

// Heartbeat is a terminal's periodic status.
type Heartbeat struct {
	State      string `json:"state"`
	Volume     int    `json:"volume"`
	RelayOK    bool   `json:"relay_ok"`
	RelayOn    bool   `json:"relay_on"`
	AudioOK    bool   `json:"audio_ok"`
	Playing    string `json:"playing,omitempty"` // EBM id of the item playing
	Firmware   string `json:"firmware"`
	UptimeSecs int64  `json:"uptime_s"`
	CacheBytes int64  `json:"cache_bytes"`
	Pending    int    `json:"pending_reports"`
	// TerminalTime, when set, makes the heartbeat a ping too: the
	// controller answers it with a pong (docs/protocol.md §7), so a
	// terminal need not send a ping frame beside every heartbeat.
	TerminalTime *time.Time `json:"terminal_time,omitempty"`
}

// Ack tells a terminal that every report with Seq <= Seq is stored.
type Ack struct {
	Seq uint64 `json:"seq"`
}

// MediaGet asks for a media file by content hash, from a byte offset that is
// a multiple of the file's chunk size. Stream says the terminal plays the
// file as it arrives: the controller may pace the chunks after the first
// by the audio they hold (docs/protocol.md §6).
type MediaGet struct {
	SHA256 string `json:"sha256"`
	Offset int64  `json:"offset"`
	Stream bool   `json:"stream,omitempty"`
}

// MediaErr says a media file cannot be sent.
type MediaErr struct {
	SHA256 string `json:"sha256"`
	Reason string `json:"reason"`
}

// Ping asks for a clock sample; TerminalTime is the terminal's send time.
type Ping struct {
	TerminalTime time.Time `json:"terminal_time"`
}

// Pong answers a Ping with the controller's clock.
type Pong struct {
	TerminalTime time.Time `json:"terminal_time"`
	ServerTime   time.Time `json:"server_time"`
}
