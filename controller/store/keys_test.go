package store

import (
	"context"
	"slices"
	"testing"
)

// SetTerminalKeys records each terminal's trusted keys in order, and
// writes nothing for a terminal that names the same keys again.
func TestSetTerminalKeys(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	a := activeTerminal(t, s, villageA, "大巷村1号")
	b := activeTerminal(t, s, villageA, "大巷村2号")
	changed, errs := s.SetTerminalKeys(ctx, []TerminalKeys{
		{a.ID, []string{"k1"}},
		{b.ID, []string{"k1", "k2"}},
		{a.ID, []string{"k1"}},                      // the same again
		{"64502241020030000000099", []string{"k1"}}, // unknown
		{b.ID, []string{"k2"}},                      // the later wins
	})
	if want := []bool{true, true, false, false, true}; !slices.Equal(changed, want) || slices.ContainsFunc(errs, func(e error) bool { return e != nil }) {
		t.Fatalf("changed %v, errors %v; want %v and none", changed, errs, want)
	}
	for _, c := range []struct {
		kid  string
		want []string
	}{{"k1", []string{b.ID}}, {"k2", []string{a.ID}}} {
		lacking, err := s.TerminalsLackingKey(ctx, c.kid)
		if err != nil || !slices.Equal(lacking, c.want) {
			t.Errorf("terminals lacking %s: %v (%v), want %v", c.kid, lacking, err, c.want)
		}
	}
}
