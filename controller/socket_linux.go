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
// writes it: through a descriptor of the session's own, with system calls
// that never wait. Go's poller watches the socket only while a goroutine
// must wait on it: then the socket is attached (the descriptor handed to
// an os.File, whose poller waits, with deadlines), and when the session
// parks it is detached again (the descriptor duplicated and the os.File
// closed, which takes it out of Go's poller). So an idle terminal's socket
// is watched by the idle poller alone, which takes its news in batches,
// not also by Go's poller, which woke a thread for each of them
// (docs/benchmarks.md, "Idle CPU: news in batches"). The socket has one
// descriptor at a time (two for a moment while it is detached): a process
// may hold about as many terminals as its open-file limit allows.
type socket struct {
	fdmu sync.RWMutex // held to read around each system call on fd, to write to change or close it
	fd   int          // -1 once closed; its number changes when the socket is detached

	mu       sync.Mutex
	f        *os.File        // holds fd while attached, else nil
	rc       syscall.RawConn // f's
	waits    int             // goroutines waiting through rc
	rdl, wdl time.Time       // deadlines, set on f while attached
	closed   bool

	// For rc's Read and Write, made once (a closure made for each call
	// escapes to the heap), and their arguments and results. Reads wait
	// one at a time, and so do writes.
	readNow, writeNow func(uintptr) bool
	rbuf, wbuf        []byte
	rn, wn            int
	rerr, werr        error

	// The kernel's receive time of the bytes read last by recv, when it
	// says (SO_TIMESTAMPNS); zero when not.
	received time.Time
	oob      [64]byte
}

// newSocket takes conn's socket for the session's own, closing conn, or
// returns nil when conn has none (TLS, a test's pipe), leaving it be.
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
	conn.Close() // its descriptor, out of Go's poller; the socket stays open on fd
	// The kernel notes when each segment came, for the pong's time (recv).
	syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_TIMESTAMPNS, 1)
	s := &socket{fd: fd}
	s.readNow, s.writeNow = s.readSome, s.writeAll
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
	n, err := s.now(syscall.SYS_READ, p)
	if err == syscall.EAGAIN {
		var rc syscall.RawConn
		if rc, err = s.attach(); err != nil {
			return 0, err
		}
		s.rbuf = p
		werr := rc.Read(s.readNow)
		n, err = s.rn, s.rerr
		s.rbuf, s.rerr = nil, nil
		s.done()
		if werr != nil {
			return 0, closedAs(werr)
		}
	}
	switch {
	case err != nil:
		return 0, s.opError("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	}
	return n, nil
}

// write writes all of p, waiting (in Go's poller, until the write
// deadline) while the socket has no room.
func (s *socket) write(p []byte) (int, error) {
	n, err := s.now(syscall.SYS_WRITE, p)
	for err == nil && n < len(p) {
		var more int
		more, err = s.now(syscall.SYS_WRITE, p[n:])
		n += more
	}
	if err == syscall.EAGAIN {
		var rc syscall.RawConn
		if rc, err = s.attach(); err != nil {
			return n, err
		}
		s.wbuf, s.wn = p, n
		err = rc.Write(s.writeNow)
		n, errno := s.wn, s.werr
		s.wbuf, s.werr = nil, nil
		s.done()
		if err != nil {
			return n, closedAs(err)
		}
		if errno != nil {
			return n, s.opError("write", errno)
		}
		return n, nil
	}
	if err != nil {
		return n, s.opError("write", err)
	}
	return n, nil
}

// readSome reads into rbuf, for the RawConn's Read: false to wait until
// the socket is readable. The RawConn's descriptor is fd while attached.
func (s *socket) readSome(fd uintptr) bool {
	for {
		n, _, errno := syscall.RawSyscall(syscall.SYS_READ, fd, uintptr(unsafe.Pointer(&s.rbuf[0])), uintptr(len(s.rbuf)))
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			s.rn, s.rerr = int(n), nil
		default:
			s.rn, s.rerr = 0, errno
		}
		return true
	}
}

// writeAll writes wbuf from wn on, for the RawConn's Write: false to wait
// until the socket has room.
func (s *socket) writeAll(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		n, _, errno := syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(unsafe.Pointer(&s.wbuf[s.wn])), uintptr(len(s.wbuf)-s.wn))
		switch errno {
		case syscall.EINTR:
			continue
		case syscall.EAGAIN:
			return false
		case 0:
			s.wn += int(n)
		default:
			s.werr = errno
			return true
		}
	}
	return true
}

// closedAs returns a wait's error, net.ErrClosed for a socket closed
// meanwhile (os.File's error for that is its own).
func closedAs(err error) error {
	if errors.Is(err, os.ErrClosed) {
		return net.ErrClosed
	}
	return err
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
	for {
		n, _, errno := syscall.RawSyscall(trap, uintptr(s.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		switch errno {
		case 0:
			return int(n), nil
		case syscall.EINTR:
			continue
		}
		return 0, errno
	}
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

// done ends a wait through the RawConn.
func (s *socket) done() {
	s.mu.Lock()
	s.waits--
	s.mu.Unlock()
}

// attach gives Go's poller the socket, unless it has it, for a wait.
// Registering it reports what is ready already, so nothing that came
// before is missed.
func (s *socket) attach() (syscall.RawConn, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed || s.descriptor() < 0 {
		return nil, net.ErrClosed
	}
	if s.f == nil {
		s.fdmu.RLock()
		f := os.NewFile(uintptr(s.fd), "terminal") // non-blocking: into Go's poller
		s.fdmu.RUnlock()
		rc, err := f.SyscallConn()
		if err == nil {
			err = f.SetReadDeadline(s.rdl) // fails unless Go's poller took it
		}
		if err != nil {
			s.fdmu.Lock()
			s.fd = s.release(f)
			s.fdmu.Unlock()
			return nil, err
		}
		f.SetWriteDeadline(s.wdl)
		s.f, s.rc = f, rc
	}
	s.waits++
	return s.rc, nil
}

// detach takes the socket out of Go's poller unless a goroutine waits
// there. It is called when the session parks.
func (s *socket) detach() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.waits > 0 || s.f == nil {
		return
	}
	s.fdmu.Lock()
	s.fd = s.release(s.f)
	s.fdmu.Unlock()
	s.f, s.rc = nil, nil
}

// release closes f, which holds the socket, keeping the socket open on a
// descriptor it returns (-1 when the system gave none: the socket is then
// closed). s.fdmu is held.
func (s *socket) release(f *os.File) int {
	nfd, err := dupCloexec(int(s.fd))
	f.Close() // out of Go's poller, then closed
	if err != nil {
		return -1
	}
	return nfd
}

// attached reports whether Go's poller has the socket.
func (s *socket) attached() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.f != nil
}

func (s *socket) setReadDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rdl = t
	if s.f != nil {
		return s.f.SetReadDeadline(t)
	}
	return nil
}

func (s *socket) setWriteDeadline(t time.Time) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.wdl = t
	if s.f != nil {
		return s.f.SetWriteDeadline(t)
	}
	return nil
}

// close closes the socket; a goroutine waiting on it gets net.ErrClosed.
func (s *socket) close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return net.ErrClosed
	}
	s.closed = true
	f := s.f
	s.f, s.rc = nil, nil
	s.fdmu.Lock()
	defer s.fdmu.Unlock()
	fd := s.fd
	s.fd = -1
	switch {
	case f != nil:
		return f.Close() // ends any wait
	case fd >= 0:
		return syscall.Close(fd)
	}
	return nil
}

// descriptor returns the socket's descriptor, -1 once it is closed.
func (s *socket) descriptor() int {
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	return s.fd
}

// control is epoll_ctl(2) of epfd on the socket's descriptor.
func (s *socket) control(op, epfd int, ev *syscall.EpollEvent) error {
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	if s.fd < 0 {
		return net.ErrClosed
	}
	return syscall.EpollCtl(epfd, op, s.fd, ev)
}

func (s *socket) opError(op string, errno error) error {
	if errors.Is(errno, net.ErrClosed) {
		return &net.OpError{Op: op, Net: "tcp", Err: errno}
	}
	return &net.OpError{Op: op, Net: "tcp", Err: os.NewSyscallError(op, errno)}
}
