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

	// readSome and writeAll, for rc's Read and Write as well as without
	// it (try), made once (a closure made for each call escapes to the
	// heap), and their arguments and results. Reads run one at a time,
	// and so do writes.
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
	s.rbuf = p
	defer func() { s.rbuf, s.rerr = nil, nil }()
	if ready, err := s.try(s.readNow); err != nil {
		return 0, err
	} else if !ready {
		if err := s.wait(false); err != nil {
			return 0, err
		}
	}
	switch n, err := s.rn, s.rerr; {
	case err != nil:
		return 0, s.opError("read", err)
	case n == 0 && len(p) > 0:
		return 0, io.EOF
	default:
		return n, nil
	}
}

// write writes all of p, waiting (in Go's poller, until the write
// deadline) while the socket has no room.
func (s *socket) write(p []byte) (int, error) {
	s.wbuf, s.wn = p, 0
	defer func() { s.wbuf, s.werr = nil, nil }()
	if done, err := s.try(s.writeNow); err != nil {
		return 0, err
	} else if !done {
		if err := s.wait(true); err != nil {
			return s.wn, err
		}
	}
	if s.werr != nil {
		return s.wn, s.opError("write", s.werr)
	}
	return s.wn, nil
}

// try makes a read or write (readSome, writeAll) on the socket's
// descriptor without Go's poller, reporting false when it must wait.
func (s *socket) try(op func(uintptr) bool) (bool, error) {
	s.fdmu.RLock()
	defer s.fdmu.RUnlock()
	if s.fd < 0 {
		return false, net.ErrClosed
	}
	return op(uintptr(s.fd)), nil
}

// wait makes the read or write through Go's poller, attaching the socket
// for it: the RawConn calls readSome or writeAll, and waits until the
// socket is readable (or writable) whenever they say so.
func (s *socket) wait(write bool) error {
	rc, err := s.attach()
	if err != nil {
		return err
	}
	if write {
		err = rc.Write(s.writeNow)
	} else {
		err = rc.Read(s.readNow)
	}
	s.mu.Lock()
	s.waits--
	s.mu.Unlock()
	if errors.Is(err, os.ErrClosed) { // os.File's error for a socket closed meanwhile
		err = net.ErrClosed
	}
	return err
}

// readSome reads into rbuf: false to wait until the socket is readable.
func (s *socket) readSome(fd uintptr) bool {
	n, errno := sysIO(syscall.SYS_READ, fd, s.rbuf)
	if errno == syscall.EAGAIN {
		return false
	}
	s.rn, s.rerr = n, nil
	if errno != 0 {
		s.rn, s.rerr = 0, errno
	}
	return true
}

// writeAll writes wbuf from wn on: false to wait until the socket has
// room.
func (s *socket) writeAll(fd uintptr) bool {
	for s.wn < len(s.wbuf) {
		n, errno := sysIO(syscall.SYS_WRITE, fd, s.wbuf[s.wn:])
		switch errno {
		case syscall.EAGAIN:
			return false
		case 0:
			s.wn += n
		default:
			s.werr = errno
			return true
		}
	}
	return true
}

// sysIO makes read(2) or write(2) on a non-blocking descriptor, as a raw
// system call: one made through syscall.Syscall tells Go's scheduler, and
// when the process was idle that wakes the runtime's monitor thread, which
// then checks every 20 µs until the process is idle again
// (docs/benchmarks.md, "Idle CPU: the runtime's monitor";
// golang.org/issue/18236).
func sysIO(trap, fd uintptr, p []byte) (int, syscall.Errno) {
	if len(p) == 0 {
		return 0, 0
	}
	for {
		n, _, errno := syscall.RawSyscall(trap, fd, uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
		if errno != syscall.EINTR {
			return int(n), errno
		}
	}
}

// recv reads into p without waiting, noting the kernel's receive time of
// what it read in received: recvmsg(2), raw as sysIO's calls are. It
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
	return s.setDeadline(&s.rdl, t, (*os.File).SetReadDeadline)
}

func (s *socket) setWriteDeadline(t time.Time) error {
	return s.setDeadline(&s.wdl, t, (*os.File).SetWriteDeadline)
}

// setDeadline keeps t in dl for the next attach, and sets it on the
// os.File while attached.
func (s *socket) setDeadline(dl *time.Time, t time.Time, set func(*os.File, time.Time) error) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	*dl = t
	if s.f != nil {
		return set(s.f, t)
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
