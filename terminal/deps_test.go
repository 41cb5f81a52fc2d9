package terminal

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the device binary small: no SQLite, no HTML templates, no
// controller code.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "dalaba/cmd/dalaba-terminal").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list gave %d packages; the check would be empty", len(deps))
	}
	for _, dep := range deps {
		switch {
		case strings.HasPrefix(dep, "modernc.org/sqlite"), dep == "html/template", strings.HasPrefix(dep, "dalaba/controller"):
			t.Errorf("dalaba-terminal links %s", dep)
		}
	}
}
