package controller

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/schedule"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// TestProgramScope: officers and cadres manage programs in their areas;
// a cadre only routine and daily-notice programs of their villages.
func TestProgramScope(t *testing.T) {
	h := startController(t, nil)
	m := h.upload(t, tone(200*time.Millisecond))
	cadreA := h.user(t, "cadreA", []string{access.Cadre}, villageA)
	cadreB := h.user(t, "cadreB", []string{access.Cadre}, villageB)
	officer := h.officer(t)
	daily := schedule.Rule{Kind: schedule.Daily, Times: hm(t, "07:00")}
	req := func(area string, priority int) ProgramRequest {
		return ProgramRequest{Title: "村务公告", Media: []string{m.SHA256}, Areas: []string{area}, Priority: priority, Rule: daily}
	}

	cadreA.refused(t, http.StatusForbidden, "", "POST", "/api/v1/programs", req(villageB, 0))
	cadreA.refused(t, http.StatusForbidden, "", "POST", "/api/v1/programs", req(township, 0))
	// Nobody may schedule an emergency priority: emergencies are alerts,
	// approved by a second person.
	for _, who := range []*client{cadreA, officer} {
		e := who.refused(t, http.StatusBadRequest, "priority", "POST", "/api/v1/programs", req(villageA, protocol.PriorityEmergency4))
		if !strings.Contains(e.Error, "10 (program) or 20 (daily notice)") {
			t.Errorf("refusal %q does not say which priorities a program may have", e.Error)
		}
	}

	var own ProgramView
	cadreA.mustCall(t, http.StatusCreated, "POST", "/api/v1/programs", req(villageA, protocol.PriorityDaily), &own)
	if own.Priority != protocol.PriorityDaily || own.CreatedBy != "cadreA" {
		t.Errorf("cadre's program %+v", own.Program)
	}
	// Moving it to another village, or raising it to an emergency, is refused.
	cadreA.refused(t, http.StatusForbidden, "", "PATCH", "/api/v1/programs/"+own.ID, map[string]any{"areas": []string{villageB}})
	cadreA.refused(t, http.StatusBadRequest, "priority", "PATCH", "/api/v1/programs/"+own.ID, map[string]any{"priority": protocol.PriorityEmergency1})
	cadreA.mustCall(t, http.StatusOK, "PATCH", "/api/v1/programs/"+own.ID, map[string]any{"title": "村务公告（更新）"}, nil)

	var countyProg ProgramView
	officer.mustCall(t, http.StatusCreated, "POST", "/api/v1/programs", req(county, protocol.PriorityProgram), &countyProg)
	// A cadre sees the county's program (it reaches their village) but may
	// not change or delete it.
	cadreA.mustCall(t, http.StatusOK, "GET", "/api/v1/programs/"+countyProg.ID, nil, nil)
	cadreA.refused(t, http.StatusForbidden, "", "PATCH", "/api/v1/programs/"+countyProg.ID, map[string]any{"title": "x"})
	cadreA.refused(t, http.StatusForbidden, "", "DELETE", "/api/v1/programs/"+countyProg.ID, nil)
	// Another village's cadre does not see village A's program at all.
	cadreB.refused(t, http.StatusNotFound, "", "GET", "/api/v1/programs/"+own.ID, nil)
	cadreB.refused(t, http.StatusNotFound, "", "GET", "/api/v1/programs/"+own.ID+"/occurrences", nil)
	cadreB.refused(t, http.StatusNotFound, "", "DELETE", "/api/v1/programs/"+own.ID, nil)
	var list []ProgramView
	cadreB.mustCall(t, http.StatusOK, "GET", "/api/v1/programs", nil, &list)
	if len(list) != 1 || list[0].ID != countyProg.ID {
		t.Errorf("cadre B lists %d programs, want only the county's", len(list))
	}
	cadreA.mustCall(t, http.StatusOK, "DELETE", "/api/v1/programs/"+own.ID, nil, nil)
	cadreA.refused(t, http.StatusNotFound, "", "DELETE", "/api/v1/programs/"+own.ID, nil)
	cadreA.refused(t, http.StatusNotFound, "", "PATCH", "/api/v1/programs/"+own.ID, map[string]any{"title": "y"})
	es := h.auditEntries(t, "")
	for _, action := range []string{"program.create", "program.update", "program.delete"} {
		if !hasAudit(es, action, "cadreA", own.ID) {
			t.Errorf("no audit entry %s by cadreA", action)
		}
	}
}

// TestProgramValidation: each bad request is refused with the field named.
func TestProgramValidation(t *testing.T) {
	h := startController(t, nil)
	m := h.upload(t, tone(200*time.Millisecond))
	officer := h.officer(t)
	good := func(mod func(r map[string]any)) map[string]any {
		r := map[string]any{"title": "广播体操", "media": []string{m.SHA256}, "areas": []string{villageA},
			"rule": map[string]any{"kind": "weekly", "weekdays": []string{"mon", "fri"}, "times": []string{"07:00"}}}
		mod(r)
		return r
	}
	rule := func(r map[string]any) map[string]any { return r["rule"].(map[string]any) }
	cases := []struct {
		name  string
		field string
		mod   func(r map[string]any)
	}{
		{"no title", "title", func(r map[string]any) { r["title"] = " " }},
		{"no media", "media", func(r map[string]any) { r["media"] = []string{} }},
		{"unknown media", "media", func(r map[string]any) { r["media"] = []string{strings.Repeat("ab", 32)} }},
		{"no target", "areas", func(r map[string]any) { r["areas"] = []string{} }},
		{"bad area", "areas", func(r map[string]any) { r["areas"] = []string{"4502"} }},
		{"volume", "volume", func(r map[string]any) { r["volume"] = 101 }},
		{"live priority", "priority", func(r map[string]any) { r["priority"] = protocol.PriorityLive }},
		{"repeat", "repeat", func(r map[string]any) { r["repeat"] = 101 }},
		{"late", "late_minutes", func(r map[string]any) { r["late_minutes"] = MaxLateMinutes + 1 }},
		{"kind", "rule.kind", func(r map[string]any) { rule(r)["kind"] = "hourly" }},
		{"weekly without days", "rule.weekdays", func(r map[string]any) { delete(rule(r), "weekdays") }},
		{"monthly day 32", "rule.month_days", func(r map[string]any) {
			rule(r)["kind"], rule(r)["month_days"] = "monthly", []int{32}
			delete(rule(r), "weekdays")
		}},
		{"ended", "rule.until", func(r map[string]any) { rule(r)["from"], rule(r)["until"] = "2020-01-01", "2020-02-01" }},
		{"bad time", "body", func(r map[string]any) { rule(r)["times"] = []string{"25:00"} }},
		{"unknown field", "body", func(r map[string]any) { r["colour"] = "red" }},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			officer.refused(t, http.StatusBadRequest, tc.field, "POST", "/api/v1/programs", good(tc.mod))
		})
	}
	var p ProgramView
	officer.mustCall(t, http.StatusCreated, "POST", "/api/v1/programs", good(func(map[string]any) {}), &p)
	if p.Schedule != "mon, fri at 07:00 from "+p.Rule.From.String() || len(p.Next) == 0 {
		t.Errorf("view: %q next %v", p.Schedule, p.Next)
	}
	for _, n := range p.Next {
		if wd := n.In(h.c.sched.loc).Weekday(); wd != time.Monday && wd != time.Friday {
			t.Errorf("next occurrence %s is a %s", n, wd)
		}
	}
	officer.refused(t, http.StatusBadRequest, "rule.times", "PATCH", "/api/v1/programs/"+p.ID, map[string]any{"rule": map[string]any{"kind": "daily"}})
	officer.refused(t, http.StatusBadRequest, "until", "GET", "/api/v1/programs/"+p.ID+"/occurrences?from=2026-12-01&until=2026-11-01", nil)
	officer.refused(t, http.StatusBadRequest, "from", "GET", "/api/v1/programs/"+p.ID+"/occurrences?from=yesterday", nil)
	officer.refused(t, http.StatusBadRequest, "until", "GET", "/api/v1/programs/"+p.ID+"/occurrences?from=2026-01-01&until=2026-12-01", nil)
}

// TestScheduleConfig: the schedule keys are checked, and errors name them.
func TestScheduleConfig(t *testing.T) {
	base := DefaultConfig()
	base.DataDir = t.TempDir()
	if err := base.Validate(); err != nil {
		t.Fatalf("defaults: %v", err)
	}
	if base.TimeZone != "Asia/Shanghai" || base.ScheduleDays != 3 || base.QuietHours != "" {
		t.Errorf("defaults %q %d %q", base.TimeZone, base.ScheduleDays, base.QuietHours)
	}
	cases := []struct {
		key string
		mod func(*Config)
	}{
		{"time_zone", func(c *Config) { c.TimeZone = "Mars/Olympus" }},
		{"time_zone", func(c *Config) { c.TimeZone = "" }},
		{"quiet_hours", func(c *Config) { c.QuietHours = "22:00" }},
		{"quiet_hours", func(c *Config) { c.QuietHours = "22:00-22:00" }},
		{"schedule_days", func(c *Config) { c.ScheduleDays = 0 }},
		{"schedule_days", func(c *Config) { c.ScheduleDays = 8 }},
	}
	for _, tc := range cases {
		c := base
		tc.mod(&c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.key+":") {
			t.Errorf("%+v: Validate() = %v, want an error naming %s", c, err, tc.key)
		}
	}
	env := map[string]string{"DALABA_TIME_ZONE": "Europe/Berlin", "DALABA_QUIET_HOURS": "22:00-06:00", "DALABA_SCHEDULE_DAYS": "7"}
	c := base
	if err := c.applyEnv(func(k string) (string, bool) { v, ok := env[k]; return v, ok }); err != nil {
		t.Fatal(err)
	}
	if c.TimeZone != "Europe/Berlin" || c.QuietHours != "22:00-06:00" || c.ScheduleDays != 7 || c.Validate() != nil {
		t.Errorf("from the environment: %q %q %d", c.TimeZone, c.QuietHours, c.ScheduleDays)
	}
}

// TestPlanQuietHours: routine programs in the quiet hours are held back
// and recorded as skipped; an emergency-priority program never is.
func TestPlanQuietHours(t *testing.T) {
	sh, err := time.LoadLocation("Asia/Shanghai")
	if err != nil {
		t.Fatal(err)
	}
	quiet, _ := schedule.ParseQuietHours("22:00-06:00")
	c := &Controller{sched: &scheduler{loc: sh, quiet: quiet, days: 1}}
	day := schedule.Date{Year: 2026, Month: 12, Day: 1}
	rule := schedule.Rule{Kind: schedule.Daily, Times: hm(t, "05:30", "06:00", "21:59", "23:00"), From: day}
	m := protocol.Media{SHA256: strings.Repeat("ab", 32)}
	set := &programSet{media: map[string]protocol.Media{m.SHA256: m}, progs: []store.Program{
		{ID: "routine", Title: "新闻", Media: []string{m.SHA256}, Targets: protocol.Targets{Areas: []string{villageA}}, Priority: protocol.PriorityDaily, Repeat: 1, LateMinutes: 10, Rule: rule},
		{ID: "bells", Title: "报时", Media: []string{m.SHA256}, Targets: protocol.Targets{Areas: []string{county}}, Priority: protocol.PriorityProgram, Repeat: 1, LateMinutes: 10, Rule: rule},
		{ID: "elsewhere", Title: "别村", Media: []string{m.SHA256}, Targets: protocol.Targets{Areas: []string{villageB}}, Priority: protocol.PriorityProgram, Repeat: 1, LateMinutes: 10, Rule: rule},
	}}
	now := schedule.At(day, 0, sh)
	pl := c.plan(set, "64502241020030000000001", villageA, now)
	var items, held []string
	for _, it := range pl.items {
		items = append(items, it.ProgramID+" "+it.Start.In(sh).Format("01-02 15:04"))
	}
	for _, o := range pl.quiet {
		if o.State != protocol.OccurrenceSkipped || o.Reason != protocol.SkipQuietHours || o.Source != store.OutcomeController {
			t.Errorf("quiet outcome %+v", o)
		}
		held = append(held, o.ProgramID+" "+o.Start.In(sh).Format("01-02 15:04"))
	}
	wantItems := []string{"bells 12-01 06:00", "routine 12-01 06:00", "bells 12-01 21:59", "routine 12-01 21:59",
		"bells 12-02 06:00", "routine 12-02 06:00", "bells 12-02 21:59", "routine 12-02 21:59"}
	wantHeld := []string{"bells 12-01 05:30", "routine 12-01 05:30", "bells 12-01 23:00", "routine 12-01 23:00",
		"bells 12-02 05:30", "routine 12-02 05:30", "bells 12-02 23:00", "routine 12-02 23:00"}
	slices.Sort(items)
	slices.Sort(wantItems)
	slices.Sort(held)
	slices.Sort(wantHeld)
	if !slices.Equal(items, wantItems) || !slices.Equal(held, wantHeld) {
		t.Errorf("items %v\nwant  %v\nheld %v\nwant %v", items, wantItems, held, wantHeld)
	}
	// The same programs at the same day give the same hash; a later hour
	// of the same day too (the window is whole days), the next day not.
	if c.plan(set, "64502241020030000000001", villageA, now.Add(3*time.Hour)).hash != pl.hash {
		t.Error("hash changed within a day")
	}
	if c.plan(set, "64502241020030000000001", villageA, now.Add(24*time.Hour)).hash == pl.hash {
		t.Error("hash unchanged on a new day")
	}
}

// TestScheduleWindow: whole days on the county's calendar, never longer
// than a command may live, even across a daylight-saving change.
func TestScheduleWindow(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	c := &Controller{sched: &scheduler{loc: berlin, days: 7}}
	now := time.Date(2027, 10, 28, 10, 0, 0, 0, berlin)
	from, until := c.scheduleWindow(now)
	if !from.Equal(time.Date(2027, 10, 28, 0, 0, 0, 0, berlin)) || until.Sub(from) != protocol.MaxCommandLifetime {
		t.Errorf("window %s..%s, want midnight and 8 days (the autumn hour cut off)", from, until)
	}
	c.sched.days = 3
	from, until = c.scheduleWindow(now)
	if !until.Equal(time.Date(2027, 11, 1, 0, 0, 0, 0, berlin)) {
		t.Errorf("3 days from %s: until %s, want midnight 1 November", from, until)
	}
}
