package schedule

import (
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"testing"
	"time"
)

func mustLoad(t *testing.T, name string) *time.Location {
	t.Helper()
	loc, err := time.LoadLocation(name)
	if err != nil {
		t.Fatal(err)
	}
	return loc
}

func d(s string) Date {
	v, err := ParseDate(s)
	if err != nil {
		panic(err)
	}
	return v
}

func clocks(ss ...string) []Clock {
	out := make([]Clock, len(ss))
	for i, s := range ss {
		c, err := ParseClock(s)
		if err != nil {
			panic(err)
		}
		out[i] = c
	}
	return out
}

func dates(ss ...string) []Date {
	out := make([]Date, len(ss))
	for i, s := range ss {
		out[i] = d(s)
	}
	return out
}

// wall formats instants on loc's wall clock, for readable expectations.
func wall(ts []time.Time, loc *time.Location) []string {
	out := make([]string, len(ts))
	for i, t := range ts {
		out[i] = t.In(loc).Format("2006-01-02 15:04 Mon")
	}
	return out
}

func TestOccurrences(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	window := func(a, b string) (time.Time, time.Time) {
		return d(a).In(sh), d(b).In(sh)
	}
	cases := []struct {
		name     string
		rule     Rule
		from, to string // dates, midnight in Shanghai; to is exclusive
		want     []string
	}{
		{"monthly 31st skips short months", Rule{Kind: Monthly, MonthDays: []int{31}, Times: clocks("08:00"), From: d("2027-01-01")},
			"2027-01-01", "2028-01-01", []string{"2027-01-31 08:00 Sun", "2027-03-31 08:00 Wed", "2027-05-31 08:00 Mon",
				"2027-07-31 08:00 Sat", "2027-08-31 08:00 Tue", "2027-10-31 08:00 Sun", "2027-12-31 08:00 Fri"}},
		{"monthly 29 and 30 in a common February", Rule{Kind: Monthly, MonthDays: []int{30, 29}, Times: clocks("08:00"), From: d("2027-01-01")},
			"2027-01-15", "2027-03-31", []string{"2027-01-29 08:00 Fri", "2027-01-30 08:00 Sat", "2027-03-29 08:00 Mon", "2027-03-30 08:00 Tue"}},
		{"monthly 29 in the leap February 2028", Rule{Kind: Monthly, MonthDays: []int{29}, Times: clocks("08:00"), From: d("2028-01-01")},
			"2028-02-01", "2028-04-01", []string{"2028-02-29 08:00 Tue", "2028-03-29 08:00 Wed"}},
		{"daily across the leap day", Rule{Kind: Daily, Times: clocks("07:00"), From: d("2028-02-28"), Until: d("2028-03-01")},
			"2028-02-01", "2028-04-01", []string{"2028-02-28 07:00 Mon", "2028-02-29 07:00 Tue", "2028-03-01 07:00 Wed"}},
		{"once on the leap day", Rule{Kind: Once, Times: clocks("09:30", "07:00"), From: d("2028-02-29")},
			"2028-01-01", "2029-01-01", []string{"2028-02-29 07:00 Tue", "2028-02-29 09:30 Tue"}},
		{"every 2 weeks across the year's end", Rule{Kind: Weeks, EveryWeeks: 2, Times: clocks("07:00"), From: d("2026-12-21")},
			"2026-12-01", "2027-02-01", []string{"2026-12-21 07:00 Mon", "2027-01-04 07:00 Mon", "2027-01-18 07:00 Mon"}},
		{"every 2 weeks from a Wednesday on mon and fri", Rule{Kind: Weeks, EveryWeeks: 2, Weekdays: []Weekday{1, 5}, Times: clocks("07:00"), From: d("2026-12-23")},
			"2026-12-01", "2027-01-16", []string{"2026-12-25 07:00 Fri", "2027-01-04 07:00 Mon", "2027-01-08 07:00 Fri"}},
		{"every 3 weeks ends on until", Rule{Kind: Weeks, EveryWeeks: 3, Times: clocks("07:00"), From: d("2026-12-21"), Until: d("2027-01-11")},
			"2026-12-01", "2027-06-01", []string{"2026-12-21 07:00 Mon", "2027-01-11 07:00 Mon"}},
		{"exceptions are skipped, the range is inclusive", Rule{Kind: Daily, Times: clocks("07:00"), From: d("2026-12-22"), Until: d("2026-12-27"),
			Except: dates("2026-12-24", "2026-12-25")}, "2026-12-01", "2027-01-01",
			[]string{"2026-12-22 07:00 Tue", "2026-12-23 07:00 Wed", "2026-12-26 07:00 Sat", "2026-12-27 07:00 Sun"}},
		{"weekly mon wed fri at two times", Rule{Kind: Weekly, Weekdays: []Weekday{5, 1, 3}, Times: clocks("12:00", "07:00"), From: d("2026-12-01")},
			"2026-12-07", "2026-12-12", []string{"2026-12-07 07:00 Mon", "2026-12-07 12:00 Mon", "2026-12-09 07:00 Wed", "2026-12-09 12:00 Wed",
				"2026-12-11 07:00 Fri", "2026-12-11 12:00 Fri"}},
		{"nothing before from", Rule{Kind: Daily, Times: clocks("07:00"), From: d("2026-12-10")}, "2026-12-08", "2026-12-11",
			[]string{"2026-12-10 07:00 Thu"}},
		{"after until nothing", Rule{Kind: Daily, Times: clocks("07:00"), From: d("2026-12-01"), Until: d("2026-12-05")}, "2026-12-06", "2027-01-01", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.rule.Validate(); err != nil {
				t.Fatalf("rule does not validate: %v", err)
			}
			from, to := window(tc.from, tc.to)
			got := wall(Occurrences(tc.rule, from, to, sh), sh)
			if !slices.Equal(got, tc.want) {
				t.Errorf("got  %q\nwant %q", got, tc.want)
			}
		})
	}
}

// TestOccurrencesWindowEdges: from is inclusive, until exclusive, to the
// instant.
func TestOccurrencesWindowEdges(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	r := Rule{Kind: Daily, Times: clocks("07:00"), From: d("2026-12-01")}
	at7 := time.Date(2026, 12, 2, 7, 0, 0, 0, sh)
	if got := Occurrences(r, at7, at7.Add(time.Minute), sh); len(got) != 1 || !got[0].Equal(at7) {
		t.Errorf("window starting at 07:00: %v, want exactly 07:00", got)
	}
	if got := Occurrences(r, at7.Add(-time.Hour), at7, sh); len(got) != 0 {
		t.Errorf("window ending at 07:00: %v, want nothing", got)
	}
	if got := Occurrences(r, at7, at7, sh); got != nil {
		t.Errorf("empty window: %v", got)
	}
	if got := at7.UTC().Format(time.RFC3339); got != "2026-12-01T23:00:00Z" {
		t.Errorf("07:00 in Shanghai is %s, want the day before at 23:00 UTC", got)
	}
}

// TestOccurrencesDST proves the times are wall-clock times: in a zone with
// daylight saving, 07:00 stays 07:00 while its UTC instant moves, a time
// the spring jump skips plays after the jump, and a time the autumn fold
// repeats plays once, the first time.
func TestOccurrencesDST(t *testing.T) {
	berlin := mustLoad(t, "Europe/Berlin")
	utc := func(ts []time.Time) []string {
		out := make([]string, len(ts))
		for i, t := range ts {
			out[i] = t.UTC().Format("01-02 15:04Z")
		}
		return out
	}
	cases := []struct {
		name     string
		times    []Clock
		from, to string
		want     []string
	}{
		{"07:00 across the spring change", clocks("07:00"), "2027-03-27", "2027-03-30", []string{"03-27 06:00Z", "03-28 05:00Z", "03-29 05:00Z"}},
		{"02:30 does not exist on 28 March", clocks("02:30"), "2027-03-27", "2027-03-30", []string{"03-27 01:30Z", "03-28 01:30Z", "03-29 00:30Z"}},
		{"02:30 happens twice on 31 October", clocks("02:30"), "2027-10-30", "2027-11-02", []string{"10-30 00:30Z", "10-31 00:30Z", "11-01 01:30Z"}},
		{"03:30 and the skipped 02:30 meet once", clocks("02:30", "03:30"), "2027-03-28", "2027-03-29", []string{"03-28 01:30Z"}},
		{"07:00 across the autumn change", clocks("07:00"), "2027-10-30", "2027-11-01", []string{"10-30 05:00Z", "10-31 06:00Z"}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := Rule{Kind: Daily, Times: tc.times, From: d("2027-01-01")}
			got := Occurrences(r, d(tc.from).In(berlin), d(tc.to).In(berlin), berlin)
			if !slices.Equal(utc(got), tc.want) {
				t.Errorf("got %q, want %q", utc(got), tc.want)
			}
		})
	}
	if got := At(d("2027-03-28"), clocks("02:30")[0], berlin).Format("15:04 MST"); got != "03:30 CEST" {
		t.Errorf("skipped 02:30 plays at %s, want 03:30 CEST", got)
	}
}

func TestValidate(t *testing.T) {
	base := func(mod func(*Rule)) Rule {
		r := Rule{Kind: Daily, Times: clocks("07:00"), From: d("2026-12-01")}
		mod(&r)
		return r
	}
	cases := []struct {
		name  string
		rule  Rule
		field string
	}{
		{"unknown kind", base(func(r *Rule) { r.Kind = "hourly" }), "kind"},
		{"no times", base(func(r *Rule) { r.Times = nil }), "times"},
		{"a time twice", base(func(r *Rule) { r.Times = clocks("07:00", "07:00") }), "times"},
		{"time out of range", base(func(r *Rule) { r.Times = []Clock{24 * 60} }), "times"},
		{"no from", base(func(r *Rule) { r.From = Date{} }), "from"},
		{"until before from", base(func(r *Rule) { r.Until = d("2026-11-30") }), "until"},
		{"weekly without weekdays", base(func(r *Rule) { r.Kind = Weekly }), "weekdays"},
		{"weekdays on a daily rule", base(func(r *Rule) { r.Weekdays = []Weekday{1} }), "weekdays"},
		{"monthly without days", base(func(r *Rule) { r.Kind = Monthly }), "month_days"},
		{"monthly day 32", base(func(r *Rule) { r.Kind, r.MonthDays = Monthly, []int{32} }), "month_days"},
		{"monthly day 0", base(func(r *Rule) { r.Kind, r.MonthDays = Monthly, []int{0} }), "month_days"},
		{"weeks without a number", base(func(r *Rule) { r.Kind = Weeks }), "every_weeks"},
		{"every 53 weeks", base(func(r *Rule) { r.Kind, r.EveryWeeks = Weeks, 53 }), "every_weeks"},
		{"every_weeks on a daily rule", base(func(r *Rule) { r.EveryWeeks = 2 }), "every_weeks"},
		{"once with an end", base(func(r *Rule) { r.Kind, r.Until = Once, d("2026-12-05") }), "until"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.rule.Validate()
			var e *Error
			if !errors.As(err, &e) || e.Field != tc.field {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.field)
			}
		})
	}
	ok := base(func(r *Rule) { r.Kind, r.Until = Once, d("2026-12-01") })
	if err := ok.Validate(); err != nil {
		t.Errorf("once with until = from: %v", err)
	}
}

func TestRuleJSON(t *testing.T) {
	in := `{"kind":"weeks","times":["07:00","18:30"],"weekdays":["mon","friday"],"every_weeks":2,"from":"2026-12-01","except":["2026-12-25"]}`
	var r Rule
	if err := json.Unmarshal([]byte(in), &r); err != nil {
		t.Fatal(err)
	}
	if err := r.Validate(); err != nil {
		t.Fatal(err)
	}
	out, err := json.Marshal(r)
	if err != nil {
		t.Fatal(err)
	}
	want := `{"kind":"weeks","times":["07:00","18:30"],"weekdays":["mon","fri"],"every_weeks":2,"from":"2026-12-01","except":["2026-12-25"]}`
	if string(out) != want {
		t.Errorf("marshal: %s\nwant %s", out, want)
	}
	if s := r.String(); s != "every 2 weeks on mon, fri at 07:00, 18:30 from 2026-12-01 except 2026-12-25" {
		t.Errorf("String() = %q", s)
	}
	for _, bad := range []string{`{"times":["7"]}`, `{"times":["24:00"]}`, `{"weekdays":["funday"]}`, `{"from":"2026-13-01"}`, `{"times":["07:5"]}`} {
		if err := json.Unmarshal([]byte(bad), &r); err == nil {
			t.Errorf("%s: decoded without error", bad)
		}
	}
}

func TestItemID(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	start := time.Date(2026, 12, 1, 7, 0, 0, 0, sh)
	id := ItemID("3f9a1c2b7d4e", start.UTC(), sh)
	if id != "3f9a1c2b7d4e@2026-12-01T07:00:00+08:00" {
		t.Fatalf("ItemID = %q", id)
	}
	prog, got, err := ParseItemID(id)
	if err != nil || prog != "3f9a1c2b7d4e" || !got.Equal(start) {
		t.Errorf("ParseItemID = %q %v %v", prog, got, err)
	}
	for _, bad := range []string{"", "@2026-12-01T07:00:00+08:00", "p@yesterday", "p"} {
		if _, _, err := ParseItemID(bad); err == nil || !strings.Contains(err.Error(), "occurrence id") {
			t.Errorf("ParseItemID(%q) = %v, want an error", bad, err)
		}
	}
}
