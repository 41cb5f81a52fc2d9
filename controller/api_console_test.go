package controller

import (
	"encoding/json"
	"io"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/controller/access"
)

// TestOverviewFigures checks the console's overview: terminals by state,
// the online rate and the coverage figure (villages with two or more
// working terminals out of all villages), county-wide and for a village
// cadre, who sees only their village.
func TestOverviewFigures(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	a1, _ := h.enrolledTerminal(t, villageA, "大巷村1号")
	h.enrolledTerminal(t, villageA, "大巷村2号")
	_, b1 := h.enrolledTerminal(t, villageB, "大将村1号")

	var ov Overview
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/overview", nil, &ov)
	want := AreaStats{Code: county, Name: "融安县", Terminals: 3, Online: 3, Working: 3, OnlineRate: 1, Villages: 3, Covered: 1, Coverage: 1.0 / 3}
	if ov.Total != want {
		t.Errorf("county figures %+v, want %+v", ov.Total, want)
	}
	if len(ov.Townships) != 1 || ov.Townships[0].Code != township || ov.Townships[0].Villages != 3 || ov.Townships[0].Covered != 1 {
		t.Errorf("townships %+v, want 长安镇 with 1 of 3 villages covered", ov.Townships)
	}
	if ov.CoverageTarget != 0.7 {
		t.Errorf("coverage target %v, want the national 0.7", ov.CoverageTarget)
	}
	if got := villageFigures(ov, villageA); got.Terminals != 2 || got.Covered != 1 {
		t.Errorf("大巷村 %+v, want 2 terminals and covered", got)
	}

	// One of 大巷村's two terminals goes offline: the village no longer
	// counts, and the online rate drops.
	a1.stop()
	h.waitOffline(t, h.terminalID(t, "大巷村1号"))
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/overview", nil, &ov)
	if ov.Total.Online != 2 || ov.Total.Offline != 1 || ov.Total.Covered != 0 || ov.Total.Coverage != 0 || ov.Total.OnlineRate != 2.0/3 {
		t.Errorf("after one went offline: %+v, want 2 online, 1 offline, no village covered", ov.Total)
	}

	// A cadre of 大巷村 sees their village and the way to it, no other.
	cadre := h.user(t, "wang", []string{access.Cadre}, villageA)
	var mine Overview
	cadre.mustCall(t, http.StatusOK, "GET", "/api/v1/overview", nil, &mine)
	if mine.Total.Terminals != 2 || mine.Total.Villages != 1 {
		t.Errorf("cadre's figures %+v, want 大巷村's 2 terminals and 1 village", mine.Total)
	}
	var codes []string
	for _, a := range mine.Areas {
		codes = append(codes, a.Code)
		if a.Inside != (a.Code == villageA) {
			t.Errorf("cadre's area %s inside=%v", a.Code, a.Inside)
		}
	}
	if !slices.Equal(codes, []string{county, township, villageA}) {
		t.Errorf("cadre's areas %v, want the county, the township and 大巷村 only", codes)
	}
	if len(mine.Villages) != 1 || mine.Villages[0].Code != villageA {
		t.Errorf("cadre's villages %+v, want 大巷村 only", mine.Villages)
	}
	// Another village's terminal is not found for them, heartbeat included.
	cadre.refused(t, http.StatusNotFound, "", "GET", "/api/v1/terminals/"+b1+"/heartbeat", nil)
	var hb TerminalHeartbeat
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/"+b1+"/heartbeat", nil, &hb)
	var beat struct {
		State  string `json:"state"`
		Volume *int   `json:"volume"`
	}
	if err := json.Unmarshal(hb.Heartbeat, &beat); err != nil || beat.State != "idle" || beat.Volume == nil || hb.LastSeen.IsZero() {
		t.Errorf("last heartbeat %s (seen %v): want an idle heartbeat with a volume", hb.Heartbeat, hb.LastSeen)
	}
}

func villageFigures(ov Overview, code string) AreaStats {
	for _, v := range ov.Villages {
		if v.Code == code {
			return v
		}
	}
	return AreaStats{}
}

// terminalID finds a terminal by name as the admin sees it.
func (h *testController) terminalID(t *testing.T, name string) string {
	t.Helper()
	var ts []struct{ ID, Name string }
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals", nil, &ts)
	for _, x := range ts {
		if x.Name == name {
			return x.ID
		}
	}
	t.Fatalf("no terminal named %s", name)
	return ""
}

// TestConsoleInfo checks what the console learns at start: the user, the
// actions their roles allow, and, for a session, its CSRF token so that a
// reloaded page can act.
func TestConsoleInfo(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	cadre := h.user(t, "wang", []string{access.Cadre}, villageA)
	var info ConsoleInfo
	cadre.mustCall(t, http.StatusOK, "GET", "/api/v1/console", nil, &info)
	if info.User.Name != "wang" || info.County.Code != county || info.County.Name != "融安县" || info.CSRFToken != "" {
		t.Errorf("bearer console info %+v: want wang, 融安县 and no CSRF token", info)
	}
	if !slices.Contains(info.Actions, access.SendDaily) || slices.Contains(info.Actions, access.SendEmergency) || info.MayDrill {
		t.Errorf("cadre's actions %v (drill %v): want daily notices, no emergencies, no drills", info.Actions, info.MayDrill)
	}
	s := h.session(t, "wang", cadre.password)
	s.mustCall(t, http.StatusOK, "GET", "/api/v1/console", nil, &info)
	if info.CSRFToken != s.csrf {
		t.Errorf("session console info gives CSRF %q, want the session's %q", info.CSRFToken, s.csrf)
	}
}

// TestConsoleServed checks the console's page and files come from the
// binary with a strict CSP, and that serving it leaves the API's answers
// for unknown routes alone.
func TestConsoleServed(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	for _, tc := range []struct {
		name, method, path string
		status             int
		ctype, body        string
	}{
		{"page", "GET", "/", 200, "text/html", "大喇叭"},
		{"script", "GET", "/console/app.js", 200, "text/javascript", "import"},
		{"style", "GET", "/console/app.css", 200, "text/css", "WenQuanYi"},
		{"chinese", "GET", "/console/i18n/zh-CN.json", 200, "application/json", "概览"},
		{"english", "GET", "/console/i18n/en.json", 200, "application/json", "Overview"},
		{"head", "HEAD", "/", 200, "text/html", ""},
		{"no such file", "GET", "/console/nope.js", 404, "", ""},
		{"the page only at its one address", "GET", "/console/index.html", 404, "", ""},
		{"unknown API route", "GET", "/api/v1/nope", 404, "", ""},
		{"not a page", "GET", "/anything", 404, "", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			req, _ := http.NewRequest(tc.method, h.base+tc.path, nil)
			resp, err := apiClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			body, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tc.status {
				t.Fatalf("status %d, want %d", resp.StatusCode, tc.status)
			}
			if tc.status != 200 {
				return
			}
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), tc.ctype) || !strings.Contains(string(body), tc.body) {
				t.Errorf("type %q body %.80q, want %s holding %q", resp.Header.Get("Content-Type"), body, tc.ctype, tc.body)
			}
			if csp := resp.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || !strings.Contains(csp, "script-src 'self'") {
				t.Errorf("CSP %q: want nothing but this origin", csp)
			}
			if resp.Header.Get("ETag") == "" {
				t.Error("no ETag: unchanged files would be sent again")
			}
		})
	}
}

// TestHeartbeatHistory checks GET /api/v1/terminals/{id}/heartbeats: a
// real terminal's heartbeat is kept, its going offline is a point of its
// own, the history is bounded to the kept days, and another village's
// terminal is not found for a cadre.
func TestHeartbeatHistory(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	a1, a1ID := h.enrolledTerminal(t, villageA, "大巷村1号")
	_, b1ID := h.enrolledTerminal(t, villageB, "大将村1号")

	var hist HeartbeatHistory
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/"+a1ID+"/heartbeats", nil, &hist)
	if len(hist.Points) == 0 || hist.Points[0].State != "idle" || hist.Points[0].Volume == nil || hist.Keep != "168h0m0s" {
		t.Fatalf("history of an online terminal %+v: want an idle point with a volume, kept 7 days", hist)
	}
	a1.stop()
	h.waitOffline(t, a1ID)
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/"+a1ID+"/heartbeats?since="+hist.Since.Format(time.RFC3339), nil, &hist)
	last := hist.Points[len(hist.Points)-1]
	if last.State != "offline" || last.Volume != nil {
		t.Errorf("last point %+v after the terminal stopped: want offline, without a volume", last)
	}
	for i := 1; i < len(hist.Points); i++ {
		if !hist.Points[i].At.After(hist.Points[i-1].At) {
			t.Errorf("points out of order: %+v", hist.Points)
		}
	}
	h.admin.refused(t, http.StatusBadRequest, "since", "GET", "/api/v1/terminals/"+a1ID+"/heartbeats?since=2020-01-01", nil)
	h.admin.refused(t, http.StatusBadRequest, "since", "GET", "/api/v1/terminals/"+a1ID+"/heartbeats?since=yesterday", nil)
	cadre := h.user(t, "wang", []string{access.Cadre}, villageA)
	cadre.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals/"+a1ID+"/heartbeats", nil, &hist)
	cadre.refused(t, http.StatusNotFound, "", "GET", "/api/v1/terminals/"+b1ID+"/heartbeats", nil)
}
