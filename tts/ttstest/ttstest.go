// Package ttstest helps tests that run the real speech engine.
package ttstest

import (
	"os"
	"os/exec"
	"testing"
)

// Require skips the test when espeak-ng is not installed, and fails it
// under CI (CI set), where scripts/test-deps.sh must have installed it.
func Require(t testing.TB) {
	t.Helper()
	if _, err := exec.LookPath("espeak-ng"); err != nil {
		msg := "espeak-ng is not installed; run scripts/test-deps.sh (apt-get install -y --no-install-recommends espeak-ng)"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
