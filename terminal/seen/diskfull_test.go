package seen

import (
	"errors"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
)

// diskFullEnv names the guard file a child test process fills up.
const diskFullEnv = "DALABA_SEEN_DISKFULL_PATH"

// TestAdmitDiskFull runs Admit in a child process whose RLIMIT_FSIZE stops
// the file growing mid-frame, so write(2) fails with EFBIG as it would with
// ENOSPC. The id must not count as admitted, and the file must stay valid.
func TestAdmitDiskFull(t *testing.T) {
	if path := os.Getenv(diskFullEnv); path != "" {
		diskFullChild(t, path)
		return
	}
	path := filepath.Join(t.TempDir(), "seen")
	g := openT(t, path)
	admit(t, g, "before-1", t0)
	admit(t, g, "before-2", t0)
	g.Close()

	cmd := exec.Command(os.Args[0], "-test.run=^TestAdmitDiskFull$")
	cmd.Env = append(os.Environ(), diskFullEnv+"="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child process failed: %v\n%s", err, out)
	}

	g = openT(t, path)
	if !g.Seen("before-1") || !g.Seen("before-2") || g.Seen("refused-by-full-disk") {
		t.Fatal("after disk full the guard lost an id or kept one that failed")
	}
	admit(t, g, "refused-by-full-disk", t0)
}

func diskFullChild(t *testing.T, path string) {
	g := openT(t, path)
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	signal.Ignore(syscall.SIGXFSZ)
	limit := uint64(fi.Size() + 10) // less than one frame
	if err := syscall.Setrlimit(syscall.RLIMIT_FSIZE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
		t.Fatalf("setrlimit: %v", err)
	}
	const id = "refused-by-full-disk"
	if err := g.Admit(id, t0); !errors.Is(err, syscall.EFBIG) {
		t.Fatalf("Admit on a full disk = %v, want EFBIG", err)
	}
	if g.Seen(id) {
		t.Fatal("an id whose write failed counts as seen")
	}
	if after, _ := os.Stat(path); after.Size() != fi.Size() {
		t.Fatalf("after the failed write the file is %d bytes, want it cut back to %d", after.Size(), fi.Size())
	}
}
