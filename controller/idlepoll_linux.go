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
	epfd     int
	mu       sync.Mutex
	some     sync.Cond          // on mu: a socket is watched
	sessions map[int32]*session // by the number each socket's news carries
	next     int32
	events   []syscall.EpollEvent
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
		poll = &idlePoll{epfd: fd, sessions: map[int32]*session{}, events: make([]syscall.EpollEvent, 256)}
		poll.some.L = &poll.mu
		go poll.wait()
	})
	return poll
}

// add watches sock for data and hang-ups on behalf of s. It returns the
// number the poller knows it by, -1 when it cannot watch it. The number is
// the poller's own, not the socket's descriptor, whose number changes
// (socket.detach) and is reused by other connections.
func (p *idlePoll) add(sock *socket, s *session) int32 {
	p.mu.Lock()
	p.next++
	id := p.next & 0x7fffffff
	p.sessions[id] = s
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP | epollET, Fd: id}
	if err := sock.control(syscall.EPOLL_CTL_ADD, p.epfd, &ev); err != nil {
		p.mu.Lock()
		delete(p.sessions, id)
		p.mu.Unlock()
		return -1
	}
	p.some.Signal()
	return id
}

// remove stops watching the socket known by id. It is called before the
// socket is closed; if its descriptor has changed since add, epoll lets go
// of it when it is closed, and until then its news is dropped here.
func (p *idlePoll) remove(id int32, sock *socket) {
	sock.control(syscall.EPOLL_CTL_DEL, p.epfd, nil)
	p.mu.Lock()
	delete(p.sessions, id)
	p.mu.Unlock()
}

// wait hands each socket with news to its session, a batch every
// pollEvery, and waits for a socket to watch while there is none.
func (p *idlePoll) wait() {
	ready := make([]*session, 0, len(p.events))
	for {
		p.mu.Lock()
		for len(p.sessions) == 0 {
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
			if s := p.sessions[ev.Fd]; s != nil {
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
