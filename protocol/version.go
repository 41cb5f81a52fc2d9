// Package protocol defines the messages exchanged between a Dalaba controller
// and its terminals, how they are framed on a WebSocket, and how commands are
// signed and verified. It imports only the standard library: the controller
// and the terminal both import it, and it imports neither.
//
// The full specification, with what a receiver MUST do for each message, is
// docs/protocol.md.
package protocol

// Version is the protocol version a peer speaks. It is sent in the
// challenge and the hello; a peer refuses a version it does not know.
//
// History:
//
//	1 (2026-11-26): first version. Challenge/hello/welcome with terminal key
//	  proof and enrollment codes; heartbeat; signed commands (alert, cancel,
//	  config) with Ed25519 and key ids; spooled reports (receipt, fault,
//	  rejection) acknowledged by sequence; media fetch by sha256 with
//	  per-chunk hashes; ping/pong clock samples; key rotation by a signed
//	  keys command, with the trusted key ids in the hello; signed schedules
//	  with a media table, and occurrence and task-switch reports; alert
//	  class test (a technician's test tone); signed live-speech sessions
//	  with HMAC'd audio frames in the media-chunk layout; media pieces
//	  from a small first_chunk up to chunk_size. (All of it before any
//	  terminal shipped, so still version 1.)
//
// Fields are never reused: a removed field is marked Deprecated and keeps its
// name and meaning.
const Version = 1
