package protocol

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"
)

// SignedCommand is the body of a command frame: a detached Ed25519
// signature over the exact payload bytes, and the id of the key that made it.
type SignedCommand struct {
	KeyID   string `json:"kid"`
	Payload []byte `json:"payload"` // the JSON of a Command, base64 on the wire
	Sig     []byte `json:"sig"`
}

const commandContext = "dalaba/command/v1\n"

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

// Fingerprint is a longer digest of a public key (16 bytes of SHA-256, hex)
// carried in enrollment tokens so a terminal pins the right key.
func Fingerprint(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:16])
}

// Sign marshals c and signs the resulting bytes.
func Sign(c *Command, priv ed25519.PrivateKey) (SignedCommand, error) {
	payload, err := json.Marshal(c)
	if err != nil {
		return SignedCommand{}, fmt.Errorf("sign command %s: %w", c.ID, err)
	}
	return SignBytes(payload, priv), nil
}

// SignBytes signs payload as it is.
func SignBytes(payload []byte, priv ed25519.PrivateKey) SignedCommand {
	msg := append([]byte(commandContext), payload...)
	return SignedCommand{
		KeyID:   KeyID(priv.Public().(ed25519.PublicKey)),
		Payload: payload,
		Sig:     ed25519.Sign(priv, msg),
	}
}

// Reasons a terminal rejects a command. They travel in rejection reports.
const (
	RejectMalformed    = "malformed"
	RejectUnknownKey   = "unknown_key"
	RejectBadSignature = "bad_signature"
	RejectExpired      = "expired"
	RejectNotYetValid  = "not_yet_valid"
	RejectReplay       = "replay"
	RejectNotAddressed = "not_addressed"
	RejectInvalid      = "invalid" // signed, but its fields break a rule
)

// Sentinel errors. A *RejectError wraps one of them.
var (
	ErrUnknownKey   = errors.New("unknown key id")
	ErrBadSignature = errors.New("signature does not verify")
	ErrVersion      = errors.New("protocol version mismatch")
)

// RejectError says why a command was refused; Reason is one of Reject*.
type RejectError struct {
	Reason    string
	CommandID string // empty when the payload could not be trusted
	Err       error
}

func (e *RejectError) Error() string {
	if e.CommandID != "" {
		return fmt.Sprintf("reject command %s: %s: %v", e.CommandID, e.Reason, e.Err)
	}
	return fmt.Sprintf("reject command: %s: %v", e.Reason, e.Err)
}

func (e *RejectError) Unwrap() error { return e.Err }

func reject(reason, id string, format string, args ...any) *RejectError {
	return &RejectError{Reason: reason, CommandID: id, Err: fmt.Errorf(format, args...)}
}

// Keyring holds the issuing keys a terminal trusts, by key id.
type Keyring map[string]ed25519.PublicKey

// Add trusts pub.
func (k Keyring) Add(pub ed25519.PublicKey) { k[KeyID(pub)] = pub }

// Verify checks the signature over the payload bytes. It decodes nothing.
func (k Keyring) Verify(sc SignedCommand) error {
	pub, ok := k[sc.KeyID]
	if !ok {
		return &RejectError{Reason: RejectUnknownKey, Err: fmt.Errorf("%w %q", ErrUnknownKey, sc.KeyID)}
	}
	msg := append([]byte(commandContext), sc.Payload...)
	if len(sc.Sig) != ed25519.SignatureSize || !ed25519.Verify(pub, msg, sc.Sig) {
		return &RejectError{Reason: RejectBadSignature, Err: fmt.Errorf("%w under key %s", ErrBadSignature, sc.KeyID)}
	}
	return nil
}

// Recipient is who is checking a command: the terminal's id and area.
type Recipient struct {
	TerminalID string
	AreaCode   string
}

// Open verifies a signed command, then decodes and checks it for recipient r
// at time now (the terminal's best estimate of controller time). Only the
// signature check touches the payload before it is trusted. Replay is checked
// by the caller, who keeps the memory of seen ids.
// StartLeeway is how far before its not_before a command is already
// accepted: a terminal's estimate of the controller's clock may lag it by
// a few milliseconds (more just after a reconnection), and a command issued
// "from now" must not be refused for that. Expiry has no leeway.
const StartLeeway = 5 * time.Second

func (k Keyring) Open(sc SignedCommand, r Recipient, now time.Time) (*Command, error) {
	if err := k.Verify(sc); err != nil {
		return nil, err
	}
	var c Command
	if err := json.Unmarshal(sc.Payload, &c); err != nil {
		return nil, reject(RejectMalformed, "", "decode signed payload: %v", err)
	}
	if err := c.Validate(); err != nil {
		return nil, reject(RejectInvalid, c.ID, "%v", err)
	}
	if now.Before(c.NotBefore.Add(-StartLeeway)) {
		return nil, reject(RejectNotYetValid, c.ID, "valid from %s, now %s", c.NotBefore.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !now.Before(c.Expires) {
		return nil, reject(RejectExpired, c.ID, "expired at %s, now %s", c.Expires.UTC().Format(time.RFC3339), now.UTC().Format(time.RFC3339))
	}
	if !c.Targets.Includes(r.TerminalID, r.AreaCode) {
		return nil, reject(RejectNotAddressed, c.ID, "addressed to %v, not terminal %s in %s", c.Targets, r.TerminalID, r.AreaCode)
	}
	return &c, nil
}

// Includes reports whether a terminal with this id and area is addressed.
func (t Targets) Includes(terminalID, area string) bool {
	for _, id := range t.Terminals {
		if id == terminalID {
			return true
		}
	}
	for _, a := range t.Areas {
		if AreaContains(a, area) {
			return true
		}
	}
	return false
}
