package protocol

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
)

// Type names a message. Every WebSocket text message is one Frame.
type Type string

// Message types. The arrow says who sends it (C controller, T terminal).
const (
	TypeChallenge Type = "challenge" // C→T, first message on a connection
	TypeHello     Type = "hello"     // T→C, answer to the challenge
	TypeWelcome   Type = "welcome"   // C→T, the terminal is enrolled and may act
	TypeDenied    Type = "denied"    // C→T, then the controller closes
	TypeCommand   Type = "command"   // C→T, a SignedCommand
	TypeHeartbeat Type = "heartbeat" // T→C, periodic status
	TypeReport    Type = "report"    // T→C, a spooled Report
	TypeAck       Type = "ack"       // C→T, reports up to Seq are stored
	TypeMediaGet  Type = "media_get" // T→C, send me this media from an offset
	TypeMediaErr  Type = "media_err" // C→T, that media cannot be sent
	TypePing      Type = "ping"      // T→C, clock sample request
	TypePong      Type = "pong"      // C→T, clock sample answer
)

// MaxFrameBytes bounds one text frame. A receiver MUST close a connection
// that sends a larger one.
const MaxFrameBytes = 1 << 20

// Frame is the envelope of every text message.
type Frame struct {
	Type Type            `json:"type"`
	Body json.RawMessage `json:"body,omitempty"`
}

// Encode marshals body into a frame of type t. It writes the envelope
// itself, as json.Marshal of a Frame would byte for byte, so that the body
// is not scanned again (a controller answers every heartbeat of its fleet
// with a pong).
func Encode(t Type, body any) ([]byte, error) {
	b, err := json.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	name, err := json.Marshal(string(t))
	if err != nil {
		return nil, fmt.Errorf("encode %s: %w", t, err)
	}
	out := make([]byte, 0, len(`{"type":,"body":}`)+len(name)+len(b))
	out = append(out, `{"type":`...)
	out = append(out, name...)
	out = append(out, `,"body":`...)
	out = append(out, b...)
	return append(out, '}'), nil
}

// EncodePong is Encode(TypePong, p), byte for byte, written without
// reflection: a controller answers every heartbeat with one
// (docs/benchmarks.md, "Idle fleet").
func EncodePong(p Pong) ([]byte, error) {
	b := make([]byte, 0, 128)
	b = append(b, `{"type":"pong","body":{"terminal_time":"`...)
	b, err := p.TerminalTime.AppendText(b) // as its MarshalJSON, unquoted: RFC 3339, checked
	if err == nil {
		b = append(b, `","server_time":"`...)
		b, err = p.ServerTime.AppendText(b)
	}
	if err != nil {
		return Encode(TypePong, p) // and its error
	}
	return append(b, `"}}`...), nil
}

// Decode splits a text message into its type and raw body. A frame as
// Encode writes it is split by hand and its body checked once, without
// decoding the envelope by reflection (half the work of reading a
// heartbeat); any other is decoded as JSON.
func Decode(msg []byte) (Frame, error) {
	if len(msg) > MaxFrameBytes {
		return Frame{}, fmt.Errorf("frame of %d bytes is larger than %d", len(msg), MaxFrameBytes)
	}
	if f, ok := split(msg); ok {
		return f, nil
	}
	return decodeJSON(msg)
}

// split splits a frame of exactly the form {"type":"name","body":<JSON>}
// with a name of lower-case letters and underscores, which decodes so.
func split(msg []byte) (Frame, bool) {
	const head, mid = `{"type":"`, `","body":`
	if !bytes.HasPrefix(msg, []byte(head)) || msg[len(msg)-1] != '}' {
		return Frame{}, false
	}
	rest := msg[len(head) : len(msg)-1]
	n := 0
	for n < len(rest) && (rest[n] >= 'a' && rest[n] <= 'z' || rest[n] == '_') {
		n++
	}
	if n == 0 || !bytes.HasPrefix(rest[n:], []byte(mid)) {
		return Frame{}, false
	}
	body := rest[n+len(mid):]
	if len(body) == 0 || isSpace(body[0]) || isSpace(body[len(body)-1]) || !json.Valid(body) {
		return Frame{}, false
	}
	return Frame{Type: Type(rest[:n]), Body: bytes.Clone(body)}, true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

func decodeJSON(msg []byte) (Frame, error) {
	var f Frame
	if err := json.Unmarshal(msg, &f); err != nil {
		return f, fmt.Errorf("malformed frame: %w", err)
	}
	if f.Type == "" {
		return f, errors.New("malformed frame: no type")
	}
	return f, nil
}

// DecodeBody unmarshals a frame body into v, naming the type on error.
func DecodeBody(f Frame, v any) error {
	if err := json.Unmarshal(f.Body, v); err != nil {
		return fmt.Errorf("malformed %s body: %w", f.Type, err)
	}
	return nil
}

// MediaChunkHeader is the size of the header of a binary media message:
// 32 bytes of the file's sha256, then the chunk's byte offset as a
// big-endian uint64. The chunk's bytes follow.
const MediaChunkHeader = 40

// EncodeMediaChunk builds one binary media message.
func EncodeMediaChunk(sum [32]byte, offset uint64, data []byte) []byte {
	b := make([]byte, MediaChunkHeader+len(data))
	copy(b, sum[:])
	binary.BigEndian.PutUint64(b[32:], offset)
	copy(b[MediaChunkHeader:], data)
	return b
}

// DecodeMediaChunk splits a binary media message. The data aliases msg.
func DecodeMediaChunk(msg []byte) (sum [32]byte, offset uint64, data []byte, err error) {
	if len(msg) < MediaChunkHeader {
		return sum, 0, nil, fmt.Errorf("media chunk of %d bytes is shorter than its header", len(msg))
	}
	copy(sum[:], msg)
	return sum, binary.BigEndian.Uint64(msg[32:]), msg[MediaChunkHeader:], nil
}
