package terminal

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"dalaba/protocol"
)

// TestInflightJournal: accepted alerts are listed across a reopen, final
// states remove them, other commands are not followed, and a damaged newer
// slot leaves the older one in force.
func TestInflightJournal(t *testing.T) {
	dir := t.TempDir()
	j, err := loadInflight(dir)
	if err != nil {
		t.Fatal(err)
	}
	steps := []struct{ cmd, ebm, state string }{
		{"c1", "e1", protocol.DeliveryAccepted},
		{"c2", "e2", protocol.DeliveryAccepted},
		{"c1", "e1", protocol.DeliveryPlaying},
		{"c3", "", protocol.DeliveryAccepted}, // a config command: not followed
		{"c1", "e1", protocol.DeliveryDone},
		{"c4", "e4", protocol.DeliveryAccepted},
	}
	for _, s := range steps {
		if err := j.note(s.cmd, s.ebm, s.state); err != nil {
			t.Fatal(err)
		}
	}
	j.close()
	want := []inflightEntry{{"c2", "e2"}, {"c4", "e4"}}
	j, err = loadInflight(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := j.left(); !slices.Equal(got, want) {
		t.Fatalf("after reopen %v, want %v", got, want)
	}
	// Damage the slot written last: the one before it holds.
	if err := j.note("c2", "e2", protocol.DeliveryFailed); err != nil {
		t.Fatal(err)
	}
	last := int64(j.gen%2) * inflightSlot
	j.close()
	f, err := os.OpenFile(filepath.Join(dir, inflightFile), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("torn"), last+inflightHeader)
	f.Close()
	j, err = loadInflight(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j.close()
	if got := j.left(); !slices.Equal(got, want) {
		t.Fatalf("with the last slot torn %v, want the previous list %v", got, want)
	}
	// A file cut short is replaced by an empty journal.
	if err := os.Truncate(filepath.Join(dir, inflightFile), 10); err != nil {
		t.Fatal(err)
	}
	j2, err := loadInflight(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer j2.close()
	if got := j2.left(); len(got) != 0 {
		t.Fatalf("a truncated journal read as %v, want empty", got)
	}
}
