package protocol

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
)

// KindLive announces a live speech session (喊话): the terminal plays the
// audio frames of this session, authenticated by the stream key the signed
// command carries, as they arrive.
const KindLive = "live"

// Live speech audio: 16-bit little-endian mono PCM at 16 kHz, sent in
// frames of LiveFrameMS (LiveFrameBytes).
const (
	LiveFormat       = "s16le/16000/1"
	LiveRate         = 16000
	LiveFrameMS      = 20
	LiveFrameBytes   = LiveRate * 2 * LiveFrameMS / 1000 // 640
	LiveMaxPCM       = 5 * LiveFrameBytes                // one frame carries at most 100 ms
	LiveMACSize      = sha256.Size
	LiveMaxSeconds   = 3600
	LiveEndSeq       = math.MaxUint64 // the sequence number of the end frame
	liveFrameContext = "dalaba/live/v1\n"
)

// Live is the body of a live command. The stream key authenticates every
// audio frame of the session (LiveVerifier); because the key travels only
// inside the signed command, a frame injected by anyone without it is
// dropped. EBMID, Class, Level and Title describe the session as an alert,
// so that it is reported, listed and cancelled like one.
type Live struct {
	SessionID  string `json:"session_id"` // 64 lowercase hex digits: the 32 bytes in front of each frame
	StreamKey  string `json:"stream_key"` // 64 lowercase hex digits: the HMAC-SHA256 key of the frames
	Format     string `json:"format"`     // LiveFormat
	MaxSeconds int    `json:"max_seconds"`
	EBMID      string `json:"ebm_id"`
	Class      string `json:"class"`
	Level      int    `json:"level"` // 1..4 for an emergency, 0..4 for daily
	Title      string `json:"title"`
	Volume     int    `json:"volume"`             // 0..100; 0: by class and the terminal's setting
	Priority   int    `json:"priority,omitempty"` // 0: PriorityLive for daily, by level for an emergency
}

// Validate checks a live body's fields.
func (l *Live) Validate() error {
	if !validSHA256(l.SessionID) {
		return fmt.Errorf("live: session_id %q must be 64 lowercase hex digits", l.SessionID)
	}
	if !validSHA256(l.StreamKey) {
		return errors.New("live: stream_key must be 64 lowercase hex digits")
	}
	if l.Format != LiveFormat {
		return fmt.Errorf("live: format %q must be %q", l.Format, LiveFormat)
	}
	if l.MaxSeconds < 1 || l.MaxSeconds > LiveMaxSeconds {
		return fmt.Errorf("live: max_seconds %d must be 1..%d", l.MaxSeconds, LiveMaxSeconds)
	}
	if err := ValidEBMID(l.EBMID); err != nil {
		return fmt.Errorf("live: %w", err)
	}
	minLevel := 1
	switch l.Class {
	case ClassEmergency:
	case ClassDaily:
		minLevel = 0
	default:
		return fmt.Errorf("live: class %q must be %q or %q", l.Class, ClassEmergency, ClassDaily)
	}
	if l.Level < minLevel || l.Level > 4 {
		return fmt.Errorf("live: level %d must be %d..4", l.Level, minLevel)
	}
	if l.Volume < 0 || l.Volume > 100 {
		return fmt.Errorf("live: volume %d must be 0..100", l.Volume)
	}
	if l.Priority < 0 || l.Priority > PriorityMax {
		return fmt.Errorf("live: priority %d must be 0..%d", l.Priority, PriorityMax)
	}
	return nil
}

// Alert describes the session as the alert it is reported as. It has no
// media.
func (l *Live) Alert() *Alert {
	return &Alert{EBMID: l.EBMID, Class: l.Class, MsgType: MsgActual, Level: l.Level, EventType: "00000",
		Title: l.Title, Repeat: 1, Volume: l.Volume, Priority: LivePriority(l)}
}

// LivePriority is a live session's place on the ladder.
func LivePriority(l *Live) int {
	switch {
	case l.Priority != priorityUnspecified:
		return l.Priority
	case l.Class == ClassEmergency:
		return AlertPriority(&Alert{Class: ClassEmergency, Level: l.Level})
	}
	return PriorityLive
}

// RejectLiveFrame is the rejection reason a terminal reports, once per
// session, when live frames fail their authentication or sequence.
const RejectLiveFrame = "live_frame"

// Errors of a live frame. A receiver drops such a frame and counts it.
var (
	ErrLiveSession = errors.New("live frame of another session")
	ErrLiveMAC     = errors.New("live frame fails its authentication")
	ErrLiveReplay  = errors.New("live frame repeats or goes back in sequence")
	ErrLiveFrame   = errors.New("malformed live frame")
)

// A live frame is a binary message in the media chunk layout: the 32-byte
// session id where the media hash goes, the big-endian sequence number
// where the offset goes, then the PCM and its 32-byte MAC,
// HMAC-SHA256(stream key, "dalaba/live/v1\n" || session id || seq || PCM).
// Sequence numbers start at 1 and rise; gaps are lost frames. The end
// frame has sequence LiveEndSeq and no PCM.

// EncodeLiveFrame builds one live frame.
func EncodeLiveFrame(session [32]byte, key []byte, seq uint64, pcm []byte) []byte {
	msg := EncodeMediaChunk(session, seq, append(pcm[:len(pcm):len(pcm)], make([]byte, LiveMACSize)...))
	mac := liveMAC(key, msg[:MediaChunkHeader+len(pcm)])
	copy(msg[MediaChunkHeader+len(pcm):], mac)
	return msg
}

func liveMAC(key, headerAndPCM []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(liveFrameContext))
	m.Write(headerAndPCM)
	return m.Sum(nil)
}

// LiveVerifier checks the frames of one session, in order.
type LiveVerifier struct {
	session [32]byte
	key     []byte
	last    uint64
}

// NewLiveVerifier returns the verifier of a validated live body.
func NewLiveVerifier(l *Live) (*LiveVerifier, error) {
	v := &LiveVerifier{}
	id, err := hex.DecodeString(l.SessionID)
	if err != nil || len(id) != 32 {
		return nil, fmt.Errorf("live: bad session_id %q", l.SessionID)
	}
	copy(v.session[:], id)
	if v.key, err = hex.DecodeString(l.StreamKey); err != nil || len(v.key) != 32 {
		return nil, errors.New("live: bad stream_key")
	}
	return v, nil
}

// Session is the id in front of this session's frames.
func (v *LiveVerifier) Session() [32]byte { return v.session }

// Open authenticates a frame and returns its PCM (aliasing msg), or end
// for the end frame. A frame that fails leaves the verifier unchanged.
func (v *LiveVerifier) Open(msg []byte) (pcm []byte, end bool, err error) {
	if len(msg) < MediaChunkHeader+LiveMACSize {
		return nil, false, fmt.Errorf("%w: %d bytes", ErrLiveFrame, len(msg))
	}
	if [32]byte(msg[:32]) != v.session {
		return nil, false, ErrLiveSession
	}
	body := msg[:len(msg)-LiveMACSize]
	if !hmac.Equal(liveMAC(v.key, body), msg[len(body):]) {
		return nil, false, ErrLiveMAC
	}
	seq := binary.BigEndian.Uint64(msg[32:])
	pcm = body[MediaChunkHeader:]
	switch {
	case seq <= v.last:
		return nil, false, fmt.Errorf("%w: %d after %d", ErrLiveReplay, seq, v.last)
	case seq == LiveEndSeq && len(pcm) != 0:
		return nil, false, fmt.Errorf("%w: end frame with %d bytes of PCM", ErrLiveFrame, len(pcm))
	case len(pcm)%2 != 0 || len(pcm) > LiveMaxPCM:
		return nil, false, fmt.Errorf("%w: %d bytes of PCM (want whole 16-bit samples, at most %d)", ErrLiveFrame, len(pcm), LiveMaxPCM)
	}
	v.last = seq
	return pcm, seq == LiveEndSeq, nil
}
