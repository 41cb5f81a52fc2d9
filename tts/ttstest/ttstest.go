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
	need(t, "espeak-ng")
}

// RequireEncoder is Require for the tests that also encode the speech as
// MP3 with lame (tts.Config.Encode).
func RequireEncoder(t testing.TB) {
	t.Helper()
	need(t, "espeak-ng")
	need(t, "lame")
}

func need(t testing.TB, program string) {
	t.Helper()
	if _, err := exec.LookPath(program); err != nil {
		msg := program + " is not installed; run scripts/test-deps.sh (apt-get install -y --no-install-recommends " + program + ")"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
}
