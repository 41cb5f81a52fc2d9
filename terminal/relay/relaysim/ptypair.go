package relaysim

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"dalaba/terminal/relay"
)

// TB is the part of testing.TB that StartLine uses. It is declared here so
// that programs importing relaysim for its Board (a demo terminal) do not link
// the testing package; *testing.T and *testing.B satisfy it.
type TB interface {
	Helper()
	TempDir() string
	Cleanup(func())
	Skip(args ...any)
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// Line is a real serial line made of a pty pair joined by socat: the terminal
// opens Device, the simulated board serves Board.
type Line struct {
	Device string // the terminal's end (DIR/ttyRelay)
	Board  string // the board's end (DIR/ttyBoard)

	cmd  *exec.Cmd
	once sync.Once
}

// StartLine starts `socat -d -d pty,raw,echo=0,link=DIR/ttyRelay
// pty,raw,echo=0,link=DIR/ttyBoard` in t.TempDir(), waits until both links
// exist and kills socat when the test ends. Without socat the test is skipped,
// or fails when the environment variable CI is set.
func StartLine(t TB) *Line {
	t.Helper()
	socat, err := exec.LookPath("socat")
	if err != nil {
		if os.Getenv("CI") == "" {
			t.Skip("socat is required: apt-get install socat")
		}
		t.Fatal("socat is required: apt-get install socat")
	}
	dir := t.TempDir()
	l := &Line{Device: filepath.Join(dir, "ttyRelay"), Board: filepath.Join(dir, "ttyBoard")}
	logPath := filepath.Join(dir, "socat.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatalf("relaysim: socat log: %v", err)
	}
	defer logFile.Close()
	l.cmd = exec.Command(socat, "-d", "-d",
		"pty,raw,echo=0,link="+l.Device, "pty,raw,echo=0,link="+l.Board)
	l.cmd.Stdout, l.cmd.Stderr = logFile, logFile
	if err := l.cmd.Start(); err != nil {
		t.Fatalf("relaysim: start socat: %v", err)
	}
	t.Cleanup(l.Cut)
	// socat sets the ptys raw after it makes the links; opening them before
	// that would let socat overwrite our termios (VMIN=1: reads that never
	// time out). It logs the transfer loop's start once it is done.
	deadline := time.Now().Add(5 * time.Second)
	for !exists(l.Device) || !exists(l.Board) || !logged(logPath, "starting data transfer loop") {
		if time.Now().After(deadline) {
			l.Cut()
			out, _ := os.ReadFile(logPath)
			t.Fatalf("relaysim: socat made no pty pair within 5s:\n%s", out)
		}
		time.Sleep(5 * time.Millisecond)
	}
	return l
}

func logged(path, line string) bool {
	out, err := os.ReadFile(path)
	return err == nil && strings.Contains(string(out), line)
}

// PTYPair is StartLine for callers that only need the two paths.
func PTYPair(t TB) (devicePath, boardPath string) {
	t.Helper()
	l := StartLine(t)
	return l.Device, l.Board
}

// Cut kills socat, as if the cable were pulled: the ptys hang up. It is safe
// to call more than once.
func (l *Line) Cut() {
	l.once.Do(func() {
		_ = l.cmd.Process.Kill()
		_ = l.cmd.Wait()
	})
}

func exists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// ServeSerial opens the board's end of a serial line at path with
// tarm/serial (9600 8N1) and serves b on it until ctx ends (nil) or the line
// fails (for example when its socat is killed).
func ServeSerial(ctx context.Context, path string, b *Board) error {
	p, err := relay.OpenSerial(path, 9600, 100*time.Millisecond)
	if err != nil {
		return fmt.Errorf("relaysim: %w", err)
	}
	defer p.Close()
	return b.Serve(ctx, &patientReader{ctx: ctx, port: p})
}

// patientReader turns a serial port's read timeouts, (0, io.EOF), into
// waiting until data comes or ctx ends.
type patientReader struct {
	ctx  context.Context
	port relay.Port
}

func (r *patientReader) Read(b []byte) (int, error) {
	for {
		n, err := r.port.Read(b)
		if n > 0 || !errors.Is(err, io.EOF) {
			return n, err
		}
		if r.ctx.Err() != nil {
			return 0, r.ctx.Err()
		}
	}
}

func (r *patientReader) Write(b []byte) (int, error) { return r.port.Write(b) }
