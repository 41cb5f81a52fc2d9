//go:build !linux

package controller

import "syscall"

// idlePoll is Linux's (idlepoll_linux.go); elsewhere every session keeps
// its reader goroutine.
type idlePoll struct{}

func idlePoller() *idlePoll { return nil }

func (p *idlePoll) add(fd int, s *session) bool { return false }

func (p *idlePoll) remove(fd int, s *session) {}

func socketFD(fc *frameConn) int { return -1 }

func nowaitRead(fd uintptr, p []byte) (int, error) { return syscall.Read(int(fd), p) }

func nowaitWrite(fd uintptr, p []byte) (int, error) { return syscall.Write(int(fd), p) }

// writable is false: without the idle poller nothing asks.
func (c *frameConn) writable() bool { return false }

func (c *frameConn) pollRoom(fd uintptr) {}
