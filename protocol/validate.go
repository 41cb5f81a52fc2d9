package protocol

import (
	"crypto/ed25519"
	"errors"
	"fmt"
	"time"
)

func validID(id string) bool {
	return len(id) == 32 && isLowerHex(id)
}

// Validate checks the rules every command obeys, whoever signed it.
// Errors name the field and the value.
func (c *Command) Validate() error {
	if !validID(c.ID) {
		return fmt.Errorf("id %q must be 32 lowercase hex digits", c.ID)
	}
	if c.IssuedAt.IsZero() || c.NotBefore.IsZero() || c.Expires.IsZero() {
		return errors.New("issued_at, not_before and expires are required")
	}
	if !c.Expires.After(c.NotBefore) {
		return fmt.Errorf("expires %s is not after not_before %s", c.Expires.Format(time.RFC3339), c.NotBefore.Format(time.RFC3339))
	}
	if c.Expires.Sub(c.IssuedAt) > MaxCommandLifetime {
		return fmt.Errorf("lifetime %s exceeds the maximum %s", c.Expires.Sub(c.IssuedAt), MaxCommandLifetime)
	}
	if err := c.Targets.Validate(); err != nil {
		return err
	}
	bodies := 0
	for _, present := range []bool{c.Alert != nil, c.Cancel != nil, c.Config != nil, c.Keys != nil, c.Schedule != nil, c.Live != nil} {
		if present {
			bodies++
		}
	}
	if bodies != 1 {
		return fmt.Errorf("command of kind %q must carry exactly one body, has %d", c.Kind, bodies)
	}
	switch {
	case c.Kind == KindAlert && c.Alert != nil:
		return c.Alert.Validate()
	case c.Kind == KindCancel && c.Cancel != nil:
		return ValidEBMID(c.Cancel.EBMID)
	case c.Kind == KindConfig && c.Config != nil:
		return c.Config.Validate()
	case c.Kind == KindKeys && c.Keys != nil:
		return c.Keys.Validate()
	case c.Kind == KindSchedule && c.Schedule != nil:
		return c.Schedule.Validate()
	case c.Kind == KindLive && c.Live != nil:
		return c.Live.Validate()
	}
	return fmt.Errorf("kind %q does not match its body", c.Kind)
}

// Validate checks a target list: at least one target, every code well formed.
func (t Targets) Validate() error {
	if len(t.Areas)+len(t.Terminals) == 0 {
		return errors.New("targets: no area and no terminal")
	}
	for _, a := range t.Areas {
		if err := ValidAreaCode(a); err != nil {
			return fmt.Errorf("targets: %w", err)
		}
	}
	for _, id := range t.Terminals {
		if err := ValidEBRID(id); err != nil {
			return fmt.Errorf("targets: %w", err)
		}
	}
	return nil
}

// Validate checks an alert's fields.
func (a *Alert) Validate() error {
	if err := ValidEBMID(a.EBMID); err != nil {
		return fmt.Errorf("alert: %w", err)
	}
	switch a.Class {
	case ClassEmergency, ClassDaily:
	case ClassTest:
		if a.Level != 0 || a.MsgType != MsgActual {
			return fmt.Errorf("alert %s: a test tone has level 0 and msg_type 1, not %d and %d", a.EBMID, a.Level, a.MsgType)
		}
	default:
		return fmt.Errorf("alert %s: class %q must be %q, %q or %q", a.EBMID, a.Class, ClassEmergency, ClassDaily, ClassTest)
	}
	if a.MsgType != MsgActual && !a.Drill() {
		return fmt.Errorf("alert %s: msg_type %d must be 1 (actual) or 3..5 (drill)", a.EBMID, a.MsgType)
	}
	minLevel := 1
	if a.Class == ClassDaily || a.Class == ClassTest {
		minLevel = 0
	}
	if a.Level < minLevel || a.Level > 4 {
		return fmt.Errorf("alert %s: level %d must be %d..4", a.EBMID, a.Level, minLevel)
	}
	if len(a.EventType) != 5 {
		return fmt.Errorf("alert %s: event_type %q must be 5 characters", a.EBMID, a.EventType)
	}
	if a.Repeat < 1 || a.Repeat > 100 {
		return fmt.Errorf("alert %s: repeat %d must be 1..100", a.EBMID, a.Repeat)
	}
	if a.Priority < 0 || a.Priority > PriorityMax {
		return fmt.Errorf("alert %s: priority %d must be 0..%d", a.EBMID, a.Priority, PriorityMax)
	}
	if a.Volume < 0 || a.Volume > 100 {
		return fmt.Errorf("alert %s: volume %d must be 0..100", a.EBMID, a.Volume)
	}
	if len(a.Media) == 0 {
		return fmt.Errorf("alert %s: no media", a.EBMID)
	}
	for i := range a.Media {
		if err := a.Media[i].Validate(); err != nil {
			return fmt.Errorf("alert %s: media %d: %w", a.EBMID, i, err)
		}
	}
	return nil
}

// MaxMediaSize bounds one media file (about an hour of 128 kbit/s MP3).
const MaxMediaSize = 64 << 20

// Validate checks a media description and its chunk list.
func (m *Media) Validate() error {
	if !validSHA256(m.SHA256) {
		return fmt.Errorf("sha256 %q must be 64 lowercase hex digits", m.SHA256)
	}
	if m.Size <= 0 || m.Size > MaxMediaSize {
		return fmt.Errorf("size %d must be 1..%d bytes", m.Size, MaxMediaSize)
	}
	if m.Format != "mp3" && m.Format != "wav" {
		return fmt.Errorf("format %q must be mp3 or wav", m.Format)
	}
	if m.DurationMS <= 0 {
		return fmt.Errorf("duration_ms %d must be positive", m.DurationMS)
	}
	if m.ChunkSize < 4<<10 || m.ChunkSize > 1<<20 {
		return fmt.Errorf("chunk_size %d must be 4 KiB..1 MiB", m.ChunkSize)
	}
	if f := m.FirstChunk; f != 0 && (f < 4<<10 || !FirstChunkFits(m.ChunkSize, f)) {
		return fmt.Errorf("first_chunk %d must be 4 KiB or more and chunk_size %d divided by a power of two", f, m.ChunkSize)
	}
	if want := m.ChunkCount(); len(m.Chunks) != want {
		return fmt.Errorf("%d chunk hashes for %d bytes in chunks of %d from a first of %d, want %d", len(m.Chunks), m.Size, m.ChunkSize, m.first(), want)
	}
	for i, h := range m.Chunks {
		if !validSHA256(h) {
			return fmt.Errorf("chunk %d hash %q must be 64 lowercase hex digits", i, h)
		}
	}
	return nil
}

func validSHA256(s string) bool { return len(s) == 64 && isLowerHex(s) }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// ValidSHA256 reports whether s is 64 lowercase hex digits.
func ValidSHA256(s string) bool { return validSHA256(s) }

// Validate checks a config change.
func (c *Config) Validate() error {
	if c.Volume == nil && c.HeartbeatSeconds == nil {
		return errors.New("config: nothing to change")
	}
	if c.Volume != nil && (*c.Volume < 0 || *c.Volume > 100) {
		return fmt.Errorf("config: volume %d must be 0..100", *c.Volume)
	}
	if c.HeartbeatSeconds != nil && (*c.HeartbeatSeconds < 5 || *c.HeartbeatSeconds > 3600) {
		return fmt.Errorf("config: heartbeat_seconds %d must be 5..3600", *c.HeartbeatSeconds)
	}
	return nil
}

// Validate checks a key set: 1..MaxIssuingKeys Ed25519 keys, each named by
// its own key id.
func (k *Keys) Validate() error {
	if len(k.Keys) == 0 || len(k.Keys) > MaxIssuingKeys {
		return fmt.Errorf("keys: %d keys, want 1..%d", len(k.Keys), MaxIssuingKeys)
	}
	for i, pk := range k.Keys {
		if len(pk.PublicKey) != ed25519.PublicKeySize {
			return fmt.Errorf("keys: key %d has %d bytes", i, len(pk.PublicKey))
		}
		if pk.KeyID != KeyID(pk.PublicKey) {
			return fmt.Errorf("keys: key %d is named %q but its id is %s", i, pk.KeyID, KeyID(pk.PublicKey))
		}
	}
	return nil
}
