package controller

import (
	"encoding/json"
	"net/http"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// The read-only routes the web console (controller/console) needs beyond
// the rest of the API: who is signed in and what they may do, the county's
// figures within the caller's areas, and a terminal's last heartbeat.

// CoverageTarget is the national target for the share of villages with at
// least two working terminals (2023).
const CoverageTarget = 0.7

// ConsoleInfo answers GET /api/v1/console.
type ConsoleInfo struct {
	User      store.User      `json:"user"`
	CSRFToken string          `json:"csrf_token,omitempty"` // the session's, so a reloaded page can act
	Actions   []access.Action `json:"actions"`              // what the user's roles allow
	MayDrill  bool            `json:"may_drill"`
	Policy    access.Policy   `json:"policy"`
	County    store.Area      `json:"county"`
	Protocol  int             `json:"protocol"`
	// QuietHours are the county's hours without routine programs, e.g.
	// "22:00-06:00"; empty when there are none.
	QuietHours string `json:"quiet_hours,omitempty"`
}

// consoleActions are the actions the console shows or hides controls for.
var consoleActions = []access.Action{access.View, access.ManageUsers, access.ManageSettings, access.ManageKeys,
	access.ViewAudit, access.ManageTerminals, access.UploadMedia, access.SendEmergency, access.SendDaily,
	access.CancelAlert, access.ApproveAlert, access.ManagePrograms}

func (c *Controller) apiConsole(w http.ResponseWriter, r *http.Request, p *principal) {
	pol, err := c.Policy(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	areas, err := c.store.Areas(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	out := ConsoleInfo{User: p.user, Actions: []access.Action{}, MayDrill: pol.MaySendDrill(p.user.Roles), Policy: pol, Protocol: protocol.Version}
	if p.session != nil {
		out.CSRFToken = p.session.CSRF
	}
	for _, a := range consoleActions {
		if p.can(a) {
			out.Actions = append(out.Actions, a)
		}
	}
	out.County = countyArea(c.cfg.PlatformEBRID, areas)
	if !c.sched.quiet.IsZero() {
		out.QuietHours = c.sched.quiet.String()
	}
	writeJSON(w, http.StatusOK, out)
}

// countyArea is the area this platform serves: the area code inside its
// resource code (level digit, 12-digit area, tail), else the tree's root.
func countyArea(platform string, areas []store.Area) store.Area {
	var code string
	if protocol.ValidEBRID(platform) == nil {
		code = platform[1 : 1+protocol.AreaCodeLen]
	}
	for _, a := range areas {
		if a.Code == code {
			return a
		}
	}
	for _, a := range areas {
		if a.Parent == "" {
			return a
		}
	}
	return store.Area{Code: code}
}

// ConsoleArea is an area of the tree as one user sees it.
type ConsoleArea struct {
	store.Area
	Level  string `json:"level"`  // province, city, county, township, village
	Inside bool   `json:"inside"` // inside the user's areas: they may target it; else only a way to reach theirs
}

// AreaStats are the figures of one area: terminals by state, the online
// rate, and the coverage figure (villages with at least two working
// terminals — online, no active fault — out of all villages).
type AreaStats struct {
	Code       string  `json:"code"`
	Name       string  `json:"name"`
	Terminals  int     `json:"terminals"` // enrolled and not revoked
	Online     int     `json:"online"`
	Offline    int     `json:"offline"`
	Playing    int     `json:"playing"`
	Faulty     int     `json:"faulty"` // reporting a fault state or holding an active fault
	Working    int     `json:"working"`
	OnlineRate float64 `json:"online_rate"` // online / terminals, 0..1
	Villages   int     `json:"villages"`
	Covered    int     `json:"villages_covered"`
	Coverage   float64 `json:"coverage"` // covered / villages, 0..1
}

// Overview answers GET /api/v1/overview, everything within the caller's
// areas.
type Overview struct {
	At             time.Time     `json:"at"`
	Areas          []ConsoleArea `json:"areas"`
	Total          AreaStats     `json:"total"`
	Townships      []AreaStats   `json:"townships"`
	Villages       []AreaStats   `json:"villages"`
	CoverageTarget float64       `json:"coverage_target"`
}

// areaLevel names the level of a 12-digit area code.
func areaLevel(code string) string {
	switch len(protocol.AreaLevelPrefix(code)) {
	case 12:
		return "village"
	case 9:
		return "township"
	case 6:
		return "county"
	case 4:
		return "city"
	}
	return "province"
}

// villageOf and townshipOf return the area code of the village and the
// township holding an area ("" above that level).
func villageOf(code string) string {
	if len(protocol.AreaLevelPrefix(code)) == 12 {
		return code
	}
	return ""
}

func townshipOf(code string) string {
	if len(protocol.AreaLevelPrefix(code)) < 9 {
		return ""
	}
	return code[:9] + "000"
}

func (c *Controller) apiOverview(w http.ResponseWriter, r *http.Request, p *principal) {
	ov, err := c.overview(r, p)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ov)
}

func (c *Controller) overview(r *http.Request, p *principal) (Overview, error) {
	ctx, scope := r.Context(), p.scope()
	areas, err := c.store.Areas(ctx)
	if err != nil {
		return Overview{}, err
	}
	terms, err := c.store.Terminals(ctx, "")
	if err != nil {
		return Overview{}, err
	}
	faults, err := c.store.Faults(ctx, true)
	if err != nil {
		return Overview{}, err
	}
	faulty := map[string]bool{}
	for _, f := range faults {
		faulty[f.TerminalID] = true
	}
	ov := Overview{At: c.now(), Areas: []ConsoleArea{}, Townships: []AreaStats{}, Villages: []AreaStats{}, CoverageTarget: CoverageTarget}
	county := countyArea(c.cfg.PlatformEBRID, areas)
	ov.Total.Code, ov.Total.Name = county.Code, county.Name
	stats := map[string]*AreaStats{} // townships and villages the user sees, by code
	var order []string
	for _, a := range areas {
		if !scope.Overlaps(a.Code) {
			continue
		}
		ca := ConsoleArea{Area: a, Level: areaLevel(a.Code), Inside: scope.Covers(a.Code)}
		ov.Areas = append(ov.Areas, ca)
		if ca.Level == "township" || (ca.Level == "village" && ca.Inside) {
			stats[a.Code] = &AreaStats{Code: a.Code, Name: a.Name}
			order = append(order, a.Code)
		}
	}
	working := map[string]int{} // village → working terminals
	for _, t := range terms {
		if t.Status != store.TerminalActive || !scope.Covers(t.AreaCode) {
			continue
		}
		online := t.State != "" && t.State != "offline"
		bad := t.State == protocol.StateFault || faulty[t.ID]
		for _, s := range []*AreaStats{&ov.Total, stats[townshipOf(t.AreaCode)], stats[villageOf(t.AreaCode)]} {
			if s != nil {
				s.count(online, t.State == protocol.StatePlaying, bad)
			}
		}
		if online && !bad && villageOf(t.AreaCode) != "" {
			working[t.AreaCode]++
		}
	}
	for _, code := range order {
		if areaLevel(code) != "village" {
			continue
		}
		covered := working[code] >= 2
		for _, s := range []*AreaStats{&ov.Total, stats[townshipOf(code)], stats[code]} {
			if s != nil {
				s.Villages++
				if covered {
					s.Covered++
				}
			}
		}
	}
	ov.Total.rates()
	for _, code := range order {
		s := stats[code]
		s.rates()
		if areaLevel(code) == "township" {
			ov.Townships = append(ov.Townships, *s)
		} else {
			ov.Villages = append(ov.Villages, *s)
		}
	}
	return ov, nil
}

func (s *AreaStats) count(online, playing, faulty bool) {
	s.Terminals++
	if online {
		s.Online++
	} else {
		s.Offline++
	}
	if playing {
		s.Playing++
	}
	if faulty {
		s.Faulty++
	}
	if online && !faulty {
		s.Working++
	}
}

func (s *AreaStats) rates() {
	if s.Terminals > 0 {
		s.OnlineRate = float64(s.Online) / float64(s.Terminals)
	}
	if s.Villages > 0 {
		s.Coverage = float64(s.Covered) / float64(s.Villages)
	}
}

// TerminalHeartbeat answers GET /api/v1/terminals/{id}/heartbeat.
type TerminalHeartbeat struct {
	TerminalID string          `json:"terminal_id"`
	LastSeen   time.Time       `json:"last_seen,omitzero"`
	Heartbeat  json.RawMessage `json:"heartbeat"` // protocol.Heartbeat; null before the first
}

func (c *Controller) apiHeartbeat(w http.ResponseWriter, r *http.Request, p *principal) {
	t, err := c.terminalInScope(r.Context(), p, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	hb, err := c.store.LastHeartbeat(r.Context(), t.ID)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	if hb == nil {
		hb = json.RawMessage("null")
	}
	writeJSON(w, http.StatusOK, TerminalHeartbeat{TerminalID: t.ID, LastSeen: t.LastSeen, Heartbeat: hb})
}

// heartbeatPoint is the history point of a heartbeat at at (nil: offline).
func heartbeatPoint(at time.Time, hb *protocol.Heartbeat) store.HeartbeatPoint {
	if hb == nil {
		return store.HeartbeatPoint{At: at, State: "offline"}
	}
	vol, relayOK, relayOn, audioOK := hb.Volume, hb.RelayOK, hb.RelayOn, hb.AudioOK
	return store.HeartbeatPoint{At: at, State: hb.State, Volume: &vol, RelayOK: &relayOK, RelayOn: &relayOn, AudioOK: &audioOK, Playing: hb.Playing}
}

// HeartbeatHistory answers GET /api/v1/terminals/{id}/heartbeats.
type HeartbeatHistory struct {
	TerminalID string                 `json:"terminal_id"`
	Since      time.Time              `json:"since"`
	Until      time.Time              `json:"until"`
	Keep       string                 `json:"keep"`   // how long history is kept, e.g. "168h0m0s"
	Sample     string                 `json:"sample"` // an unchanged heartbeat is kept this often
	Points     []store.HeartbeatPoint `json:"points"` // oldest first; the first may be before since (the state then)
}

// apiHeartbeats answers a terminal's heartbeat history from ?since= (RFC
// 3339 or a date; default 24 hours ago, at most the kept 7 days).
func (c *Controller) apiHeartbeats(w http.ResponseWriter, r *http.Request, p *principal) {
	t, err := c.terminalInScope(r.Context(), p, r.PathValue("id"))
	if err != nil {
		c.fail(w, r, err)
		return
	}
	now := c.now()
	since, err := c.timeParam(r, "since", now.Add(-24*time.Hour))
	if err == nil && (since.Before(now.Add(-store.HeartbeatKeep-time.Hour)) || since.After(now)) {
		err = invalid("since", "%s must lie within the kept history: the last %d days", since.Format(time.RFC3339), int(store.HeartbeatKeep.Hours()/24))
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	pts, err := c.store.Heartbeats(r.Context(), t.ID, since)
	if err != nil {
		c.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, HeartbeatHistory{TerminalID: t.ID, Since: since, Until: now, Keep: store.HeartbeatKeep.String(),
		Sample: store.HeartbeatSample.String(), Points: pts})
}
