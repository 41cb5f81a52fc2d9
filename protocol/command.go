package protocol

import (
	"iter"
	"time"
)

// Command kinds. Each makes a terminal act, so each is signed.
const (
	KindAlert  = "alert"
	KindCancel = "cancel"
	KindConfig = "config"
	KindKeys   = "keys"
)

// MaxCommandLifetime bounds Expires-IssuedAt. A terminal remembers command
// ids until they expire, so this bounds its replay memory too.
const MaxCommandLifetime = 8 * 24 * time.Hour

// Command is the signed payload. Its exact bytes travel in a SignedCommand.
type Command struct {
	ID        string    `json:"id"`   // 32 lowercase hex digits, unique
	Kind      string    `json:"kind"` // KindAlert, KindCancel, KindConfig
	IssuedAt  time.Time `json:"issued_at"`
	NotBefore time.Time `json:"not_before"`
	Expires   time.Time `json:"expires"`
	Targets   Targets   `json:"targets"`
	Alert     *Alert    `json:"alert,omitempty"`
	Cancel    *Cancel   `json:"cancel,omitempty"`
	Config    *Config   `json:"config,omitempty"`
	Keys      *Keys     `json:"keys,omitempty"`
	Schedule  *Schedule `json:"schedule,omitempty"`
	Live      *Live     `json:"live,omitempty"`
}

// Targets addresses a command. A terminal acts only when its id is listed
// or its area code lies inside one of the listed areas.
type Targets struct {
	Areas     []string `json:"areas,omitempty"`     // 12-digit area codes
	Terminals []string `json:"terminals,omitempty"` // terminal EBRIDs
}

// Alert classes.
const (
	ClassEmergency = "emergency"
	ClassDaily     = "daily"
	// ClassTest is a technician's test tone to one terminal: level 0,
	// played at a daily notice's priority, never reported upward.
	ClassTest = "test"
)

// Message kinds (MsgType in the EBM standard).
const (
	MsgActual        = 1
	MsgCancel        = 2
	MsgPlatformDrill = 3
	MsgFrontEndDrill = 4
	MsgTerminalDrill = 5
)

// Alert asks a terminal to play media.
type Alert struct {
	EBMID     string    `json:"ebm_id"` // 35 digits
	Class     string    `json:"class"`
	MsgType   int       `json:"msg_type"`   // 1 actual, 3-5 drills
	Level     int       `json:"level"`      // 1 特别重大 .. 4 一般; 0 only for daily
	EventType string    `json:"event_type"` // 5 characters, e.g. "11000"
	Title     string    `json:"title"`
	PlayAt    time.Time `json:"play_at"` // controller time; zero = at once
	Repeat    int       `json:"repeat"`  // times to play the media list, >= 1
	Volume    int       `json:"volume"`  // 0..100
	Media     []Media   `json:"media"`
	Priority  int       `json:"priority,omitempty"` // place on the ladder (AlertPriority); 0: by class and level
}

// Drill reports whether the alert is a drill (message kinds 3 to 5).
func (a *Alert) Drill() bool { return a.MsgType >= MsgPlatformDrill && a.MsgType <= MsgTerminalDrill }

// Media describes one audio file by content. Because the hashes are inside
// the signed command, bytes fetched from anywhere are as trusted as the
// command once they match.
type Media struct {
	SHA256     string   `json:"sha256"` // whole file, 64 lowercase hex digits
	Size       int64    `json:"size"`
	Format     string   `json:"format"` // "mp3" or "wav"
	DurationMS int64    `json:"duration_ms"`
	ChunkSize  int      `json:"chunk_size"`
	FirstChunk int      `json:"first_chunk,omitempty"` // the first piece's size; 0: ChunkSize
	Chunks     []string `json:"chunks"`                // sha256 of each piece (ChunkAt), in order
}

// Media are hashed and sent in pieces (chunks). The first piece is small,
// because a terminal may sound once it is verified (docs/protocol.md §6);
// each piece after it is as large as all before it together, up to
// ChunkSize, so a terminal playing as the file comes has as much audio
// verified ahead of it as it has played, and a long file still needs few
// hashes. A description without FirstChunk has pieces of ChunkSize only.
const (
	DefaultChunkSize  = 64 << 10
	DefaultFirstChunk = 16 << 10
)

// ChunkAt returns the index and length of the piece of m's file that
// starts at off; ok is false when off is not where a piece starts.
// m must have passed Validate, or at least have positive chunk sizes.
func (m *Media) ChunkAt(off int64) (i int, n int64, ok bool) {
	chunk, first := int64(m.ChunkSize), int64(m.first())
	if off < 0 || off >= m.Size {
		return 0, 0, false
	}
	switch {
	case off >= chunk: // past the ramp: pieces of ChunkSize
		if off%chunk != 0 {
			return 0, 0, false
		}
		i = m.rampLen() + int(off/chunk) - 1
	case off == 0:
		i = 0
	default: // on the ramp: a piece starts at first << k
		if off%first != 0 || (off/first)&(off/first-1) != 0 {
			return 0, 0, false
		}
		for q := off / first; q > 0; q >>= 1 {
			i++
		}
	}
	n = chunk
	if off < chunk {
		n = max(first, off)
	}
	return i, min(n, m.Size-off), true
}

// Pieces yields the offset and length of each piece of m's file, in
// order. It stops early at an offset where no piece starts, which a
// description that passed Validate never has.
func (m *Media) Pieces() iter.Seq2[int64, int64] {
	return func(yield func(off, n int64) bool) {
		for off := int64(0); off < m.Size; {
			_, n, ok := m.ChunkAt(off)
			if !ok || !yield(off, n) {
				return
			}
			off += n
		}
	}
}

// ChunkCount returns how many pieces m's file has.
func (m *Media) ChunkCount() int {
	chunk := int64(m.ChunkSize)
	if m.Size <= chunk {
		n := 1
		for off := int64(m.first()); off < m.Size; off <<= 1 {
			n++
		}
		return n
	}
	return m.rampLen() + int((m.Size-chunk+chunk-1)/chunk)
}

// FirstChunkFits reports whether pieces can grow from a first of first
// bytes to chunk bytes, each as large as all before it: first is 0 (no
// ramp: every piece is chunk bytes), or chunk divided by a power of two.
func FirstChunkFits(chunk, first int) bool {
	if first == 0 {
		return true
	}
	if first < 0 || first > chunk || chunk%first != 0 {
		return false
	}
	q := chunk / first
	return q&(q-1) == 0
}

// first is the first piece's size.
func (m *Media) first() int {
	if m.FirstChunk <= 0 {
		return m.ChunkSize
	}
	return m.FirstChunk
}

// rampLen is how many pieces lie before offset ChunkSize: one of
// FirstChunk, then one for each doubling up to ChunkSize.
func (m *Media) rampLen() int {
	n := 1
	for q := m.ChunkSize / m.first(); q > 1; q >>= 1 {
		n++
	}
	return n
}

// Cancel stops an alert wherever it is queued or playing.
type Cancel struct {
	EBMID  string `json:"ebm_id"`
	Reason string `json:"reason,omitempty"`
}

// Config changes terminal settings. Nil fields are left as they are.
type Config struct {
	Volume           *int `json:"volume,omitempty"`
	HeartbeatSeconds *int `json:"heartbeat_seconds,omitempty"`
}

// MaxIssuingKeys bounds a key set.
const MaxIssuingKeys = 8

// Keys replaces the set of issuing keys a terminal trusts. It is signed by
// a key the terminal already trusts, so a rotation hands trust from the
// old key to the new one: first a set of old and new, later (signed by
// the new key) a set without the old.
type Keys struct {
	Keys []PublicKey `json:"keys"`
}
