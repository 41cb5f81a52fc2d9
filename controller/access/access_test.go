package access

import "testing"

func TestCan(t *testing.T) {
	cases := []struct {
		roles []string
		a     Action
		want  bool
	}{
		{[]string{Viewer}, View, true},
		{[]string{Viewer}, SendDaily, false},
		{[]string{Cadre}, SendDaily, true},
		{[]string{Cadre}, SendEmergency, false},
		{[]string{Officer}, SendEmergency, true},
		{[]string{Officer}, ApproveAlert, false},
		{[]string{Approver}, ApproveAlert, true},
		{[]string{Approver}, SendEmergency, false},
		{[]string{Technician}, ManageTerminals, true},
		{[]string{Technician}, UploadMedia, false},
		{[]string{Admin}, ManageUsers, true},
		{[]string{Admin}, SendEmergency, false}, // an admin is not an officer
		{[]string{Officer, Approver}, ApproveAlert, true},
		{nil, View, false},
	}
	for _, c := range cases {
		if got := Can(c.roles, c.a); got != c.want {
			t.Errorf("Can(%v, %s) = %v, want %v", c.roles, c.a, got, c.want)
		}
	}
}

func TestScope(t *testing.T) {
	village := Scope{"450224100201"}
	county := Scope{"450224000000"}
	cases := []struct {
		name            string
		s               Scope
		area            string
		covers, overlap bool
	}{
		{"own village", village, "450224100201", true, true},
		{"other village", village, "450224100202", false, false},
		{"own township", village, "450224100000", false, true},
		{"county from village", village, "450224000000", false, true},
		{"village from county", county, "450224104201", true, true},
		{"other county", county, "450225000000", false, false},
		{"nothing", Scope{}, "450224100201", false, false},
	}
	for _, c := range cases {
		if got := c.s.Covers(c.area); got != c.covers {
			t.Errorf("%s: Covers = %v", c.name, got)
		}
		if got := c.s.Overlaps(c.area); got != c.overlap {
			t.Errorf("%s: Overlaps = %v", c.name, got)
		}
	}
	if err := village.CheckTargets([]string{"450224100201", "450224104201"}); err == nil {
		t.Fatal("a target outside the scope passed")
	}
}

func TestPolicy(t *testing.T) {
	p := DefaultPolicy()
	if !p.NeedsApproval("emergency", 1) || p.NeedsApproval("daily", 0) {
		t.Fatal("default policy: every emergency, no daily")
	}
	if !p.MaySendDrill([]string{Officer}) || p.MaySendDrill([]string{Cadre}) {
		t.Fatal("default drill roles")
	}
	bad := Policy{DrillRoles: []string{"janitor"}}
	if bad.Validate() == nil {
		t.Fatal("unknown role accepted")
	}
}

func TestDrillPriorityValidated(t *testing.T) {
	for _, c := range []struct {
		prio int
		ok   bool
	}{{0, true}, {20, true}, {100, true}, {-1, false}, {101, false}} {
		p := DefaultPolicy()
		p.DrillPriority = c.prio
		if err := p.Validate(); (err == nil) != c.ok {
			t.Errorf("drill_priority %d: %v, want ok=%v", c.prio, err, c.ok)
		}
	}
}
