package controller

import (
	"errors"
	"os"
	"sync"
	"syscall"
	"unsafe"
)

// idlePoll wakes idle sessions. A session whose reader has returned every
// byte read from its socket parks: its reader goroutine ends, and this
// process-wide epoll instance (edge-triggered, as Go's own poller is) says
// when the terminal sends again; then a reader is started for it. An idle
// terminal then costs no goroutine stack (docs/benchmarks.md, "Idle
// fleet"). One goroutine waits for every socket's events.
type idlePoll struct {
	epfd int
	ep   *os.File        // epfd, kept open; Go's own poller watches it
	rc   syscall.RawConn // for waiting on epfd without holding a thread
	mu   sync.Mutex
	fds  map[int32]*session

	// wait's call of epoll_wait through rc, made once (a closure made for
	// each call escapes to the heap), its buffer and results.
	waitNow func(fd uintptr) bool
	events  []syscall.EpollEvent
	n       int
	err     error
}

var (
	pollOnce sync.Once
	poll     *idlePoll
)

const epollET = 1 << 31 // syscall.EPOLLET, which is negative there

// idlePoller returns the process's poller, starting it on first use; nil
// when the system refused one (sessions then keep their readers).
func idlePoller() *idlePoll {
	pollOnce.Do(func() {
		fd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
		if err != nil {
			return
		}
		if err := syscall.SetNonblock(fd, true); err != nil {
			syscall.Close(fd)
			return
		}
		ep := os.NewFile(uintptr(fd), "idlepoll") // non-blocking: Go's poller watches it
		rc, err := ep.SyscallConn()
		if err != nil {
			ep.Close()
			return
		}
		poll = &idlePoll{epfd: fd, ep: ep, rc: rc, fds: map[int32]*session{}}
		go poll.wait()
	})
	return poll
}

// add watches fd, s's socket, for data and hang-ups. It reports whether
// the socket is watched.
func (p *idlePoll) add(fd int, s *session) bool {
	p.mu.Lock()
	p.fds[int32(fd)] = s
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: int32(fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.fds, int32(fd))
		p.mu.Unlock()
		return false
	}
	return true
}

// remove stops watching fd; it is called before the socket is closed, so
// that its number, reused by the next connection, finds no stale session.
func (p *idlePoll) remove(fd int, s *session) {
	syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_DEL, fd, nil)
	p.mu.Lock()
	if p.fds[int32(fd)] == s {
		delete(p.fds, int32(fd))
	}
	p.mu.Unlock()
}

// wait hands each socket with news to its session. It asks epoll without
// waiting, and when nothing is ready it waits in Go's own poller for the
// epoll instance to become readable: a thread blocked in epoll_wait held
// its P in a system call, which kept the runtime's monitor waking every
// 20 µs to take it back, a third of an idle fleet's CPU (docs/benchmarks.md,
// "Idle fleet").
func (p *idlePoll) wait() {
	p.events = make([]syscall.EpollEvent, 256)
	p.waitNow = p.ready
	ready := make([]*session, 0, len(p.events))
	for {
		if rerr := p.rc.Read(p.waitNow); rerr != nil {
			panic("idle poller: wait: " + rerr.Error()) // only once closed, which it never is
		}
		if p.err != nil {
			panic("idle poller: epoll_wait: " + p.err.Error()) // only for a bad descriptor: a bug
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range p.events[:p.n] {
			if s := p.fds[ev.Fd]; s != nil {
				ready = append(ready, s)
			}
		}
		p.mu.Unlock()
		for i, s := range ready {
			s.readable()
			ready[i] = nil
		}
	}
}

// ready asks epoll for news without waiting, for RawConn.Read: false when
// there is none, to wait until epfd is readable.
func (p *idlePoll) ready(fd uintptr) bool {
	for {
		p.n, p.err = epollWaitNow(fd, p.events)
		if !errors.Is(p.err, syscall.EINTR) {
			return p.n > 0 || p.err != nil
		}
	}
}

// socketFD returns the descriptor of a TCP connection, -1 for any other.
func socketFD(fc *frameConn) int {
	fd := -1
	if fc.raw != nil {
		fc.raw.Control(func(f uintptr) { fd = int(f) })
	}
	return fd
}

// The system calls of the heartbeat's path never wait: the idle poller
// asks epoll with no timeout, and a socket is read and written without
// blocking (Go's poller waits when it must). They are made as raw system
// calls, which do not tell Go's scheduler. A call made through
// syscall.Syscall does, and when the process was idle it also wakes the
// runtime's monitor thread (sysmon), which then checks every 20 µs until
// the process is idle again. With 500 heartbeats a second that was 2,300
// wake-ups a second and about 40 % of an idle fleet's CPU
// (docs/benchmarks.md, "Idle CPU: the runtime's monitor"; golang.org/issue/18236).

// epollWaitNow is epoll_wait with a zero timeout (epoll_pwait with no
// signal mask, which every Linux architecture has).
func epollWaitNow(epfd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// nowaitRead and nowaitWrite are read(2) and write(2) on a non-blocking
// descriptor.
func nowaitRead(fd uintptr, p []byte) (int, error)  { return nowaitIO(syscall.SYS_READ, fd, p) }
func nowaitWrite(fd uintptr, p []byte) (int, error) { return nowaitIO(syscall.SYS_WRITE, fd, p) }

func nowaitIO(trap, fd uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// writable reports whether the socket has room for a write now: poll(2)
// with no timeout, raw as the writes are.
func (c *frameConn) writable() bool {
	if c.raw == nil {
		return false
	}
	c.room = false
	c.raw.Control(c.pollOut)
	return c.room
}

// pollRoom sets room, for RawConn.Control.
func (c *frameConn) pollRoom(fd uintptr) {
	const pollOut = 0x4 // POLLOUT
	pfd := struct {
		fd              int32
		events, revents int16
	}{fd: int32(fd), events: pollOut}
	var now syscall.Timespec // zero: do not wait
	n, _, errno := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&now)), 0, 0, 0)
	c.room = errno == 0 && n == 1 && pfd.revents&pollOut != 0
}
