package controller

import (
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// idlePoll wakes idle sessions. A session whose reader has returned every
// byte read from its socket parks: its reader goroutine ends, its socket
// leaves Go's poller (socket.detach), and this process-wide epoll instance
// (edge-triggered, as Go's own poller is) says when the terminal sends
// again. An idle terminal then costs no goroutine stack
// (docs/benchmarks.md, "Idle fleet").
//
// One goroutine takes the news of every socket, in batches: it asks epoll
// without waiting, hands each socket with news to its session, and then
// sleeps pollEvery before it asks again. Waking for each socket's news (in
// Go's poller, as before) woke a thread for each heartbeat; taken every
// pollEvery, an idle fleet's heartbeats wake it 50 times a second however
// many terminals send them (docs/benchmarks.md, "Idle CPU: news in
// batches"). What a terminal sends to a parked session so waits up to
// pollEvery; the pong says how long its ping waited (session.pong).
type idlePoll struct {
	epfd   int
	mu     sync.Mutex
	some   sync.Cond // on mu: a socket is watched
	fds    map[int32]*session
	events []syscall.EpollEvent
}

// pollEvery is how long the idle poller sleeps after a batch that did not
// fill its buffer.
const pollEvery = 20 * time.Millisecond

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
		poll = &idlePoll{epfd: fd, fds: map[int32]*session{}, events: make([]syscall.EpollEvent, 256)}
		poll.some.L = &poll.mu
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
	p.some.Signal()
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

// wait hands each socket with news to its session, a batch every
// pollEvery, and waits for a socket to watch while there is none.
func (p *idlePoll) wait() {
	ready := make([]*session, 0, len(p.events))
	for {
		p.mu.Lock()
		for len(p.fds) == 0 {
			p.some.Wait()
		}
		p.mu.Unlock()
		n, err := epollWaitNow(uintptr(p.epfd), p.events)
		if err == syscall.EINTR {
			continue
		}
		if err != nil {
			panic("idle poller: epoll_wait: " + err.Error()) // only for a bad descriptor: a bug
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range p.events[:n] {
			if s := p.fds[ev.Fd]; s != nil {
				ready = append(ready, s)
			}
		}
		p.mu.Unlock()
		for i, s := range ready {
			s.readable()
			ready[i] = nil
		}
		if n < len(p.events) {
			time.Sleep(pollEvery)
		}
	}
}

// socketFD returns the session's descriptor of a TCP connection's socket,
// -1 for any other.
func socketFD(fc *frameConn) int {
	if fc.sock == nil {
		return -1
	}
	return fc.sock.descriptor()
}

// epollWaitNow is epoll_wait with a zero timeout (epoll_pwait with no
// signal mask, which every Linux architecture has), raw as the socket's
// calls are (socket.now).
func epollWaitNow(epfd uintptr, events []syscall.EpollEvent) (int, error) {
	n, _, errno := syscall.RawSyscall6(syscall.SYS_EPOLL_PWAIT, epfd, uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}
