package main

import (
	"strings"
	"testing"
)

func TestRuleFlags(t *testing.T) {
	cases := []struct {
		name string
		f    ruleFlags
		want string // the rule in words, or "error: " and part of the message
	}{
		{"daily", ruleFlags{daily: "07:00,12:00", from: "2026-12-01"}, "daily at 07:00, 12:00 from 2026-12-01"},
		{"weekdays", ruleFlags{weekdays: "mon,wed,fri", at: "07:00", from: "2026-12-01", until: "2027-06-30"},
			"mon, wed, fri at 07:00 from 2026-12-01 until 2027-06-30"},
		{"monthly", ruleFlags{monthly: "1,15", at: "08:00", from: "2026-12-01", except: "2027-01-01"},
			"monthly on day 1, 15 at 08:00 from 2026-12-01 except 2027-01-01"},
		{"every 2 weeks", ruleFlags{everyWeeks: 2, weekdays: "mon", at: "07:00", from: "2026-12-21"}, "every 2 weeks on mon at 07:00 from 2026-12-21"},
		{"once", ruleFlags{once: "2026-12-01 07:00"}, "once on 2026-12-01 at 07:00"},
		{"no kind", ruleFlags{at: "07:00"}, "error: one of --daily"},
		{"two kinds", ruleFlags{daily: "07:00", monthly: "1"}, "error: one of --daily"},
		{"no time", ruleFlags{weekdays: "mon"}, "error: --at"},
		{"bad time", ruleFlags{weekdays: "mon", at: "7"}, "error: --at"},
		{"bad weekday", ruleFlags{weekdays: "funday", at: "07:00"}, "error: --weekdays"},
		{"bad day", ruleFlags{monthly: "first", at: "07:00"}, "error: --monthly"},
		{"bad once", ruleFlags{once: "tomorrow"}, "error: --once"},
		{"once and from", ruleFlags{once: "2026-12-01 07:00", from: "2026-12-01"}, "error: --once"},
		{"daily and at", ruleFlags{daily: "07:00", at: "08:00"}, "error: --daily"},
		{"bad until", ruleFlags{daily: "07:00", until: "soon"}, "error: --until"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r, err := tc.f.rule()
			if msg, ok := strings.CutPrefix(tc.want, "error: "); ok {
				if err == nil || !strings.Contains(err.Error(), msg) {
					t.Fatalf("rule() = %v, %v; want an error about %s", r, err, msg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if err := r.Validate(); err != nil {
				t.Fatalf("rule %s does not validate: %v", r, err)
			}
			if r.String() != tc.want {
				t.Errorf("rule %q, want %q", r.String(), tc.want)
			}
		})
	}
}
