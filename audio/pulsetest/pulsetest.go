// Package pulsetest runs a private PulseAudio server for tests: a real audio
// server with a null sink named "cap" whose monitor can be recorded, so tests
// can play through the real audio stack on machines without a sound card.
//
// Nothing is set globally: pass Server.Env() to child processes, or set
// PULSE_SERVER with t.Setenv to Server.Address() for in-process players.
// Everything started is stopped by t.Cleanup.
//
// When pulseaudio or parecord is not installed the test is skipped, except
// when the CI environment variable is set, where it fails.
//
// Play through oto in a child process (RunInChild), not in the test process:
// oto allows one output per process, and the PulseAudio client it uses sets
// its stream error without synchronisation when the server goes away, which
// the race detector reports when Cleanup stops the server under a live
// client. A child that has exited before the server stops avoids both.
package pulsetest

import (
	"bufio"
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// SinkName is the null sink every Server has; record SinkName + ".monitor".
const SinkName = "cap"

// Server is a running private PulseAudio server.
type Server struct {
	// Dir is the server's private runtime and home directory.
	Dir string
	// Socket is the path of its native-protocol Unix socket.
	Socket string

	cmd *exec.Cmd
	log *syncBuffer
}

// Start starts pulseaudio with a 48 kHz stereo null sink named "cap" in a
// fresh private directory and waits until it accepts connections.
func Start(t testing.TB) *Server {
	t.Helper()
	Require(t, "pulseaudio", "parecord")
	// A short path: Unix socket paths are limited to about 100 bytes.
	dir, err := os.MkdirTemp("", "pulse")
	if err != nil {
		t.Fatalf("pulsetest: %v", err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if err := os.Chmod(dir, 0o700); err != nil {
		t.Fatalf("pulsetest: %v", err)
	}
	s := &Server{Dir: dir, Socket: filepath.Join(dir, "native"), log: &syncBuffer{}}
	s.cmd = exec.Command("pulseaudio", "-n", "--daemonize=no", "--exit-idle-time=-1",
		"--disallow-exit", "--use-pid-file=no", "--log-target=stderr",
		"-L", "module-native-protocol-unix auth-anonymous=1 socket="+s.Socket,
		"-L", "module-null-sink sink_name="+SinkName+" rate=48000 channels=2")
	s.cmd.Env = append(os.Environ(), "HOME="+dir, "XDG_RUNTIME_DIR="+dir, "XDG_CONFIG_HOME="+dir)
	s.cmd.Stdout, s.cmd.Stderr = s.log, s.log
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("pulsetest: start pulseaudio: %v", err)
	}
	exited := make(chan struct{})
	go func() { s.cmd.Wait(); close(exited) }()
	t.Cleanup(func() { interrupt(s.cmd, exited) })

	deadline := time.Now().Add(10 * time.Second)
	for {
		if c, err := net.Dial("unix", s.Socket); err == nil {
			c.Close()
			return s
		}
		select {
		case <-exited:
			t.Fatalf("pulsetest: pulseaudio exited at start:\n%s", s.log.String())
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("pulsetest: pulseaudio not ready after 10 s:\n%s", s.log.String())
		}
	}
}

// Address returns the server's address in PULSE_SERVER syntax.
func (s *Server) Address() string { return "unix:" + s.Socket }

// Pid returns the process id of the pulseaudio server, so that a test can
// freeze it (SIGSTOP) to simulate a hung audio server.
func (s *Server) Pid() int { return s.cmd.Process.Pid }

// Env returns the environment a client process needs to use this server.
func (s *Server) Env() []string { return []string{"PULSE_SERVER=" + s.Address()} }

// Log returns what pulseaudio has logged so far.
func (s *Server) Log() string { return s.log.String() }

// Record starts parecord on the monitor of the "cap" sink, writing 48 kHz
// mono 16-bit WAV to path, and returns once audio is flowing into the file.
// stop ends the recording, leaving a finished WAV file; it is safe to call
// more than once and is also called by t.Cleanup.
func (s *Server) Record(t testing.TB, path string) (stop func()) {
	t.Helper()
	return s.StartRecording(t, path).Stop
}

// Recording is a capture of the "cap" sink in progress (see Record).
type Recording struct {
	path   string
	cmd    *exec.Cmd
	exited chan struct{}
	once   sync.Once
	done   chan struct{} // closed by Stop: ends the growth watcher

	mu   sync.Mutex
	seen []growth
}

// growth is the size of the recording file at a moment.
type growth struct {
	at   time.Time
	size int64
}

// RecordRate is the sample rate of recordings (mono, 16-bit).
const RecordRate = 48000

// StartRecording is Record returning a Recording, which can also tell when
// each instant of the recording was captured.
func (s *Server) StartRecording(t testing.TB, path string) *Recording {
	t.Helper()
	r := &Recording{path: path, exited: make(chan struct{}), done: make(chan struct{})}
	r.cmd = exec.Command("parecord", "-d", SinkName+".monitor", "--rate=48000", "--channels=1",
		"--format=s16le", "--file-format=wav", "--latency-msec=10", path)
	r.cmd.Env = append(os.Environ(), append(s.Env(), "HOME="+s.Dir, "XDG_RUNTIME_DIR="+s.Dir)...)
	out := &syncBuffer{}
	r.cmd.Stdout, r.cmd.Stderr = out, out
	if err := r.cmd.Start(); err != nil {
		t.Fatalf("pulsetest: start parecord: %v", err)
	}
	go func() { r.cmd.Wait(); close(r.exited) }()
	t.Cleanup(r.Stop)
	go r.watch()

	// The null sink's monitor delivers silence continuously: wait for some.
	deadline := time.Now().Add(10 * time.Second)
	for {
		if fi, err := os.Stat(path); err == nil && fi.Size() > 44+4800 {
			return r
		}
		select {
		case <-r.exited:
			t.Fatalf("pulsetest: parecord exited: %s", out.String())
		case <-time.After(10 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			r.Stop()
			t.Fatalf("pulsetest: parecord wrote no audio after 10 s: %s", out.String())
		}
	}
}

// Path returns the file the recording is written to.
func (r *Recording) Path() string { return r.path }

// Stop ends the recording and waits for parecord to finish the file.
func (r *Recording) Stop() {
	r.once.Do(func() {
		close(r.done)
		interrupt(r.cmd, r.exited)
	})
}

// watch notes the file's size every 2 ms until Stop.
func (r *Recording) watch() {
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-r.done:
			return
		case <-tick.C:
		}
		if fi, err := os.Stat(r.path); err == nil {
			r.mu.Lock()
			r.seen = append(r.seen, growth{time.Now(), fi.Size()})
			r.mu.Unlock()
		}
	}
}

// Time returns when the audio at offset d of the recording was captured,
// by the wall clock. It is estimated from how fast the file grew (audio
// can only be written after it was captured), to within about 10 ms, and
// is meant for comparing with times taken in the test (time.Now).
func (r *Recording) Time(d time.Duration) time.Time {
	head := make([]byte, 4096)
	f, err := os.Open(r.path)
	if err != nil {
		return time.Time{}
	}
	n, _ := f.Read(head)
	f.Close()
	dataOff := bytes.Index(head[:n], []byte("data"))
	if dataOff < 0 {
		return time.Time{}
	}
	dataOff += 8
	r.mu.Lock()
	defer r.mu.Unlock()
	var start time.Time
	for _, g := range r.seen {
		if g.size <= int64(dataOff) {
			continue
		}
		samples := (g.size - int64(dataOff)) / 2
		s := g.at.Add(-time.Duration(samples) * time.Second / RecordRate)
		if start.IsZero() || s.Before(start) {
			start = s
		}
	}
	if start.IsZero() {
		return start
	}
	return start.Add(d)
}

// childEnv marks a test binary started by RunInChild.
const childEnv = "PULSETEST_CHILD"

// markPrefix starts the lines Mark prints.
const markPrefix = "pulsetest-mark "

// InChild reports whether this test binary was started by RunInChild. The
// test RunInChild names should do its playing when InChild is true, and
// the parent's part otherwise.
func InChild() bool { return os.Getenv(childEnv) == "1" }

// RunInChild runs the test named test of the current test binary in a child
// process whose PULSE_SERVER is this server, with extra environment
// variables env ("KEY=value"). It fails t if the child fails, and returns
// the times the child noted with Mark, by name.
func (s *Server) RunInChild(t testing.TB, test string, env ...string) map[string]time.Time {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^"+test+"$", "-test.v", "-test.count=1")
	cmd.Env = append(append(os.Environ(), childEnv+"=1"), append(s.Env(), env...)...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("pulsetest: child %s: %v\n%s", test, err, out)
	}
	if !strings.Contains(string(out), "--- PASS: "+test) {
		t.Fatalf("pulsetest: child did not run %s (skipped?):\n%s", test, out)
	}
	marks := map[string]time.Time{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		name, nanos, ok := strings.Cut(strings.TrimPrefix(sc.Text(), markPrefix), " ")
		if n, err := strconv.ParseInt(nanos, 10, 64); ok && err == nil && strings.HasPrefix(sc.Text(), markPrefix) {
			marks[name] = time.Unix(0, n)
		}
	}
	t.Logf("child %s:\n%s", test, out)
	return marks
}

// Mark notes the current time under name for the parent (see RunInChild).
// The wall clock is shared by both processes, so a mark can be compared
// with Recording.Time.
func Mark(name string) {
	fmt.Printf("%s%s %d\n", markPrefix, name, time.Now().UnixNano())
}

// Require skips the test when one of the commands is missing, or fails it
// when the CI environment variable is set.
func Require(t testing.TB, commands ...string) {
	t.Helper()
	for _, c := range commands {
		if _, err := exec.LookPath(c); err != nil {
			msg := fmt.Sprintf("%s not installed (apt-get install -y --no-install-recommends pulseaudio pulseaudio-utils)", c)
			if os.Getenv("CI") != "" {
				t.Fatal(msg)
			}
			t.Skip(msg)
		}
	}
}

// interrupt asks a process to end with SIGINT (parecord then finishes its file),
// and kills it if it has not exited within 3 s.
func interrupt(cmd *exec.Cmd, exited <-chan struct{}) {
	cmd.Process.Signal(syscall.SIGINT)
	select {
	case <-exited:
	case <-time.After(3 * time.Second):
		cmd.Process.Kill()
		<-exited
	}
}

// syncBuffer is a bytes.Buffer safe for concurrent writes and reads.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
