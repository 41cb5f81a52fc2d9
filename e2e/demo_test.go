package e2e

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestDemoOnce runs what a newcomer runs: the demo with one test alert. It
// must exit 0 only because every terminal reported done.
func TestDemoOnce(t *testing.T) {
	bin := binaries(t)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, filepath.Join(bin, "dalaba"), "demo", "--once", "--listen", "127.0.0.1:0", "--data", t.TempDir())
	cmd.Env = append(cmd.Environ(), "PULSE_SERVER=", "XDG_RUNTIME_DIR=")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dalaba demo --once: %v\n%s", err, out)
	}
	text := string(out)
	if n := strings.Count(text, " done "); n < 3 {
		t.Fatalf("want three terminals done in the final table, found %d:\n%s", n, text)
	}
	if !strings.Contains(text, "Every terminal switched its relay on") {
		t.Fatalf("no success line:\n%s", text)
	}
}
