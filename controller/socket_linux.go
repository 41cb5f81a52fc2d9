package controller

import (
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"syscall"
	"time"
	"unsafe"
)

// socket is a terminal connection's TCP socket as the session reads and
// writes it: through a descriptor of its own (a duplicate of the accepted
// connection's), with system calls that never wait. Go's poller watches
// the socket only while a goroutine must wait on it: then the socket is
// attached, as a net.Conn made from another duplicate, and the wait (with
// its deadline) is that net.Conn's; a parked session's socket is detached
// again, that net.Conn closed. So an idle terminal's socket is watched by
// the idle poller alone, which takes its news in batches, not by Go's
// poller, which woke a thread for each of them (docs/benchmarks.md,
// "Idle CPU: news in batches").
type socket struct {
	fdmu sync.RWMutex // held to read around each system call on fd, to write to close it
	fd   int          // -1 once closed

	mu       sync.Mutex
	gc       net.Conn        // Go's connection on the socket while attached, else nil
	grc      syscall.RawConn // gc's
	waits    int             // goroutines waiting through gc
	rdl, wdl time.Time       // deadlines, set on gc while attached
	closed   bool

	// For grc's Read and Write, made once (a closure made for each call
	// escapes to the heap). Reads wait one at a time, and so do writes.
	readReady, writeReady func(uintptr) bool
	rfirst, wfirst        bool

	// The kernel's receive time of the bytes read last by recv, when it
	// says (SO_TIMESTAMPNS); zero when not.
	received time.Time
	oob      [64]byte
}

// newSocket takes a descriptor of conn's socket for the session's own, or
// returns nil when conn has none (TLS, a test's pipe).
func newSocket(conn net.Conn) *socket {
	sc, ok := conn.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	fd := -1
	rc.Control(func(f uintptr) {
		if nfd, err := dupCloexec(int(f)); err == nil {
			fd = nfd
		}
	})
	if fd < 0 {
		return nil
	}
	// The kernel notes when each segment came, for the pong's time (recv).
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	s := &socket{fd: fd, gc: conn, grc: rc}
	s.readReady, s.writeReady = s.readWaited, s.writeWaited
	return s
}

func dupCloexec(fd int) (int, error) {
	nfd, _, errno := syscall.Syscall(syscall.SYS_FCNTL, uintptr(fd), syscall.F_DUPFD_CLOEXEC, 0)
	if errno != 0 {
		return -1, errno
	}
	return int(nfd), nil
}

// read reads into p, waiting (in Go's poller, until the read deadline)
// while the socket holds nothing.
func (s *socket) read(p []byte) (int, error) {
	for {
		n, err := s.now(syscall.SYS_READ, p)
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if err := s.wait(false); err != nil {
				return 0, err
			}
			continue
		case err != nil:
			return 0, s.opError("read", err)
		case n == 0 && len(p) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// write writes all of p, waiting (in Go's poller, until the write
// deadline) while the socket has no room.
func (s *socket) write(p []byte) (int, error) {
	done := 0
	for done < len(p) {
		n, err := s.now(syscall.SYS_WRITE, p[done:])
		switch {
		case err == syscall.EINTR:
			continue
		case err == syscall.EAGAIN:
			if err := s.wait(true); err != nil {
				return done, err
			}
			continue
		case err != nil:
			return done, s.opError("write", err)
		}
		done += n
	}
	return done, nil
}

// now makes read(2) or write(2) without waiting, as a raw system call:
// one made through syscall.Syscall tells Go's scheduler, and when the
// process was idle that wakes the runtime's monitor thread, which then
// checks every 20 µs until the process is idle again (docs/benchmarks.md,
// "Idle CPU: the runtime's monitor"; golang.org/issue/18236).
func (s *socket) now(trap uintptr, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	if s.fd < 0 {
		return 0, net.ErrClosed
	}
	n, _, errno := syscall.RawSyscall(trap, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// recv reads into p without waiting, noting the kernel's receive time of
// what it read in received: recvmsg(2), raw as now's calls are. It
// returns syscall.EAGAIN when the socket holds nothing.
func (s *socket) recv(p []byte) (int, error) {
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	if s.fd < 0 {
		return 0, net.ErrClosed
	}
	iov := syscall.Iovec{Base: &p[0]}
	iov.SetLen(len(p))
	msg := syscall.Msghdr{Iov: &iov, Iovlen: 1, Control: &s.oob[0]}
	msg.SetControllen(len(s.oob))
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_RECVMSG, uintptr(s.fd), uintptr(unsafe.Pointer(&msg)), 0)
		if errno == syscall.EINTR {
			continue
		}
		if errno != 0 {
			return 0, errno
		}
		s.received = receivedAt(s.oob[:msg.Controllen])
		return int(n), nil
	}
}

// receivedAt finds the SCM_TIMESTAMPNS message among a recvmsg's control
// messages; zero when there is none.
func receivedAt(oob []byte) time.Time {
	const hdr = int(unsafe.Sizeof(syscall.Cmsghdr{}))
	for len(oob) >= hdr {
		h := (*syscall.Cmsghdr)(unsafe.Pointer(&oob[0]))
		l := int(h.Len)
		if l < hdr || l > len(oob) {
			break
		}
		if h.Level == syscall.SOL_SOCKET && h.Type == syscall.SCM_TIMESTAMPNS && l-syscall.CmsgLen(0) >= int(unsafe.Sizeof(syscall.Timespec{})) {
			ts := (*syscall.Timespec)(unsafe.Pointer(&oob[syscall.CmsgLen(0)]))
			return time.Unix(int64(ts.Sec), int64(ts.Nsec))
		}
		if sp := syscall.CmsgSpace(l - syscall.CmsgLen(0)); sp < len(oob) {
			oob = oob[sp:]
		} else {
			break
		}
	}
	return time.Time{}
}

// writable reports whether the socket has room for a write now: poll(2)
// with no timeout, raw as the writes are.
func (s *socket) writable() bool {
	const pollOut = 0x4 // POLLOUT
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	if s.fd < 0 {
		return false
	}
	pfd := struct {
		fd              int32
		events, revents int16
	}{fd: int32(s.fd), events: pollOut}
	var zero syscall.Timespec // do not wait
	n, _, errno := syscall.RawSyscall6(syscall.SYS_PPOLL, uintptr(unsafe.Pointer(&pfd)), 1, uintptr(unsafe.Pointer(&zero)), 0, 0, 0)
	return errno == 0 && n == 1 && pfd.revents&pollOut != 0
}

// wait waits in Go's poller until the socket is readable (or writable),
// attaching it for that.
func (s *socket) wait(write bool) error {
	rc, err := s.attach()
	if err != nil {
		return err
	}
	if write {
		s.wfirst = true
		err = rc.Write(s.writeReady)
	} else {
		s.rfirst = true
		err = rc.Read(s.readReady)
	}
	s.mu.Lock()
	s.waits--
	s.mu.Unlock()
	return err
}

// readWaited and writeWaited are false when first called, so that the
// RawConn waits, and true after that.
func (s *socket) readWaited(uintptr) bool {
	first := s.rfirst
	s.rfirst = false
	return !first
}

func (s *socket) writeWaited(uintptr) bool {
	first := s.wfirst
	s.wfirst = false
	return !first
}

// attach gives Go's poller the socket, unless it has it, for a wait.
// Registering it reports what is ready already, so nothing that came
// before is missed.
func (s *socket) attach() (syscall.RawConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, net.ErrClosed
	}
	if s.gc == nil {
		s.fdmu.RLock()
		nfd, err := -1, error(net.ErrClosed)
		if s.fd >= 0 {
			nfd, err = dupCloexec(s.fd)
		}
		s.fdmu.RUnlock()
		if err != nil {
			return nil, err
		}
		f := os.NewFile(uintptr(nfd), "terminal")
		gc, err := net.FileConn(f) // a duplicate of its own, in Go's poller
		f.Close()
		if err != nil {
			return nil, err
		}
		rc, err := gc.(syscall.Conn).SyscallConn()
		if err != nil {
			gc.Close()
			return nil, err
		}
		gc.SetReadDeadline(s.rdl)
		gc.SetWriteDeadline(s.wdl)
		s.gc, s.grc = gc, rc
	}
	s.waits++
	return s.grc, nil
}

// detach takes the socket out of Go's poller unless a goroutine waits
// there. It is called when the session parks.
func (s *socket) detach() {
	s.mu.Lock()
	gc := s.gc
	if s.waits > 0 || gc == nil {
		s.mu.Unlock()
		return
	}
	s.gc, s.grc = nil, nil
	s.mu.Unlock()
	gc.Close() // its own descriptor; the socket stays open on fd
}

// attached reports whether Go's poller has the socket.
func (s *socket) attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gc != nil
}

func (s *socket) setReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdl = t
	if s.gc != nil {
		return s.gc.SetReadDeadline(t)
	}
	return nil
}

func (s *socket) setWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wdl = t
	if s.gc != nil {
		return s.gc.SetWriteDeadline(t)
	}
	return nil
}

// close closes the socket: Go's connection on it first, which ends any
// wait, then the session's descriptor, once no system call uses it.
func (s *socket) close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return net.ErrClosed
	}
	s.closed = true
	gc := s.gc
	s.gc, s.grc = nil, nil
	s.mu.Unlock()
	if gc != nil {
		gc.Close()
	}
	s.fdmu.Lock()
	fd := s.fd
	s.fd = -1
	s.fdmu.Unlock()
	return syscall.Close(fd)
}

// descriptor returns the session's descriptor of the socket, for the idle
// poller; -1 once closed.
func (s *socket) descriptor() int {
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	return s.fd
}

func (s *socket) opError(op string, errno error) error {
	if errors.Is(errno, net.ErrClosed) {
		return &net.OpError{Op: op, Net: "tcp", Err: errno}
	}
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}
