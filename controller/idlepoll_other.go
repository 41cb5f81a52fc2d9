//go:build !linux

package controller

import (
	"net"
	"time"
)

// idlePoll and socket are Linux's (idlepoll_linux.go, socket_linux.go);
// elsewhere every session keeps its reader goroutine and reads and writes
// its connection as it is.
type idlePoll struct{}

func idlePoller() *idlePoll { return nil }

func (p *idlePoll) add(sock *socket, s *session) int32 { return -1 }

func (p *idlePoll) remove(id int32, sock *socket) {}

type socket struct{ received time.Time }

func newSocket(net.Conn) *socket { return nil }

func (s *socket) read(p []byte) (int, error)       { panic("no socket") }
func (s *socket) write(p []byte) (int, error)      { panic("no socket") }
func (s *socket) recv(p []byte) (int, error)       { panic("no socket") }
func (s *socket) writable() bool                   { return false }
func (s *socket) detach()                          {}
func (s *socket) setReadDeadline(time.Time) error  { panic("no socket") }
func (s *socket) setWriteDeadline(time.Time) error { panic("no socket") }
func (s *socket) close() error                     { panic("no socket") }
