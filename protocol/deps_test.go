package protocol

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the wire protocol free of the controller, the terminal,
// storage and transport: both sides import it, it imports neither.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep != "dalaba/protocol" {
			t.Errorf("protocol imports %s; it may import only the standard library", dep)
		}
	}
}
