package spool

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// diskFullEnv names the spool file a child test process fills up.
const diskFullEnv = "DALABA_SPOOL_DISKFULL_PATH"

// fullRecord is the payload the disk-full test appends; 1000 bytes so the
// file-size limit can fall in the middle of a frame.
func fullRecord(i int) []byte { return bytes.Repeat([]byte{byte('a' + i)}, 1000) }

// TestAppendDiskFull runs the writes in a child process whose RLIMIT_FSIZE
// stops the file growing, so write(2) fails with EFBIG part-way through a
// frame, as it would with ENOSPC. The limit applies to the whole process, so
// the child does nothing else.
func TestAppendDiskFull(t *testing.T) {
	if path := os.Getenv(diskFullEnv); path != "" {
		diskFullChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "spool")
	s := openT(t, path)
	appendN(t, s, 1, 3)
	s.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestAppendDiskFull$", "-test.v")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child process failed: %v\n%s", err, out)
	}
	var appended int
	if i := bytes.Index(out, []byte("child appended=")); i < 0 {
		t.Fatalf("child did not report its appends:\n%s", out)
	} else {
		fmt.Sscanf(string(out[i:]), "child appended=%d", &appended)
	}
	if appended != 2 {
		t.Fatalf("child appended %d records before the limit, want 2:\n%s", appended, out)
	}

	s = openT(t, path)
	got := s.Pending(0)
	if len(got) != 3+appended {
		t.Fatalf("after disk full %d records pending, want %d", len(got), 3+appended)
	}
	for i, r := range got[3:] {
		if !bytes.Equal(r.Data, fullRecord(i)) {
			t.Fatalf("record %d data corrupted after disk full", r.Seq)
		}
	}
	for i, r := range got[:3] {
		if r.Seq != uint64(i+1) || !bytes.Equal(r.Data, payload(r.Seq)) {
			t.Fatalf("earlier record %d damaged by disk full: {%d %q}", i+1, r.Seq, r.Data)
		}
	}
	seq, err := s.Append([]byte("after the disk was freed"))
	if err != nil || seq <= got[len(got)-1].Seq {
		t.Fatalf("Append after disk full = %d, %v; want a seq after %d", seq, err, got[len(got)-1].Seq)
	}
}

// diskFullChild is the child's half: it caps the file size at two and a half
// frames past the current end and appends until a write fails.
func diskFullChild(t *testing.T, path string) {
	s := openT(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	frame := int64(frameHeaderSize + len(fullRecord(0)))
	signal.Ignore(syscall.SIGXFSZ)
	limit := uint64(fi.Size() + 2*frame + frame/2)
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	var good int64
	appended := 0
	for ; appended < 5; appended++ {
		good, _ = statSize(path)
		_, err := s.Append(fullRecord(appended))
		if err != nil {
			if !errors.Is(err, syscall.EFBIG) || !strings.Contains(err.Error(), path) {
				t.Fatalf("Append error = %v, want EFBIG naming %s", err, path)
			}
			break
		}
	}
	fmt.Printf("child appended=%d\n", appended)
	if size, _ := statSize(path); size != good {
		t.Fatalf("after the failed write the file is %d bytes, want it cut back to %d", size, good)
	}
	if _, err := s.Append(fullRecord(9)); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("second Append on a full disk = %v, want EFBIG", err)
	}
	if n := len(s.Pending(0)); n != 5 {
		t.Fatalf("%d records pending after failed appends, want 5", n)
	}
}

func statSize(path string) (int64, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return 0, err
	}
	return fi.Size(), nil
}

// TestHold: a record held in memory (its Append failed) is pending in Seq
// order between written ones, stays pending when others are acknowledged,
// and is gone after a reopen (it was never on disk).
func TestHold(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool")
	s := openT(t, path)
	appendN(t, s, 1, 1)
	held := s.Hold([]byte("held"))
	appendN(t, s, 3, 1)
	var seqs []uint64
	for _, r := range s.Pending(0) {
		seqs = append(seqs, r.Seq)
	}
	if len(seqs) != 3 || seqs[1] != held || seqs[0] >= held || seqs[2] <= held {
		t.Fatalf("pending seqs %v with %d held, want it between the written ones", seqs, held)
	}
	s.Close()
	s = openT(t, path)
	if n := len(s.Pending(0)); n != 2 {
		t.Fatalf("after reopen %d pending, want the 2 written (the held one was never on disk)", n)
	}
	held = s.Hold([]byte("held again"))
	first := s.Pending(0)[0].Seq
	if err := s.Ack(first); err != nil {
		t.Fatal(err)
	}
	if p := s.Pending(0); len(p) != 2 || p[len(p)-1].Seq != held {
		t.Fatalf("after ack %v, want the written one and the held one", p)
	}
	s.Close()
	// Restarted, the receiver acknowledges the held record this spool lost:
	// its Seq is not given out again.
	s = openT(t, path)
	defer s.Close()
	if err := s.Ack(held); !errors.Is(err, ErrAckBeyond) {
		t.Fatalf("Ack of the lost held seq %d: %v, want ErrAckBeyond", held, err)
	}
	s.SkipTo(held)
	if n := len(s.Pending(0)); n != 0 {
		t.Fatalf("after SkipTo %d pending, want none", n)
	}
	appendN(t, s, held+1, 1)
}
