package controller

import (
	"net/http"
	"slices"
	"testing"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// A second township of the county, with one village.
const (
	township2 = "450224103000"
	village2  = "450224103001"
)

// scopeRig is a controller with terminals in village A, village B and the
// second township, and operators bound to parts of the county, made on
// first use.
type scopeRig struct {
	h          *testController
	media      string
	tA, tB, tC string // terminal ids in villageA, villageB, village2
}

func newScopeRig(t *testing.T) *scopeRig {
	t.Helper()
	h := startController(t, nil)
	h.admin.mustCall(t, http.StatusOK, "POST", "/api/v1/areas", store.Area{Code: township2, Name: "大良镇", Parent: county}, nil)
	h.admin.mustCall(t, http.StatusOK, "POST", "/api/v1/areas", store.Area{Code: village2, Name: "大良村", Parent: township2}, nil)
	return &scopeRig{h: h, media: h.upload(t, tone(100*time.Millisecond)).SHA256,
		tA: activeTerminalInStore(t, h, villageA), tB: activeTerminalInStore(t, h, villageB), tC: activeTerminalInStore(t, h, village2)}
}

func (r *scopeRig) cadreA(t *testing.T) *client {
	return r.h.user(t, "cadre-a", []string{access.Cadre}, villageA)
}

// officerT is an officer of the first township only.
func (r *scopeRig) officerT(t *testing.T) *client {
	return r.h.user(t, "officer-t", []string{access.Officer}, township)
}

func (r *scopeRig) technicianA(t *testing.T) *client {
	return r.h.user(t, "tech-a", []string{access.Technician}, villageA)
}

func (r *scopeRig) approverA(t *testing.T) *client {
	return r.h.user(t, "approver-a", []string{access.Approver}, villageA)
}

func (r *scopeRig) daily(areas []string, terminals ...string) AlertRequest {
	return AlertRequest{Class: protocol.ClassDaily, Title: "村务通知", Areas: areas, Terminals: terminals, Media: []string{r.media}}
}

func (r *scopeRig) emergency(areas []string, terminals ...string) AlertRequest {
	return AlertRequest{Title: "防汛预警", Level: 2, Areas: areas, Terminals: terminals, Media: []string{r.media}}
}

func TestScopeOfComposing(t *testing.T) {
	t.Parallel()
	r := newScopeRig(t)
	cases := []struct {
		name   string
		who    *client
		req    AlertRequest
		status int
	}{
		{"cadre to own village", r.cadreA(t), r.daily([]string{villageA}), http.StatusCreated},
		{"cadre to own terminal", r.cadreA(t), r.daily(nil, r.tA), http.StatusCreated},
		{"cadre to village B", r.cadreA(t), r.daily([]string{villageB}), http.StatusForbidden},
		{"cadre to the township", r.cadreA(t), r.daily([]string{township}), http.StatusForbidden},
		{"cadre to the county", r.cadreA(t), r.daily([]string{county}), http.StatusForbidden},
		{"cadre to own village and B", r.cadreA(t), r.daily([]string{villageA, villageB}), http.StatusForbidden},
		{"cadre to a terminal of B", r.cadreA(t), r.daily(nil, r.tB), http.StatusForbidden},
		{"cadre to own village and a terminal of B", r.cadreA(t), r.daily([]string{villageA}, r.tB), http.StatusForbidden},
		{"cadre to an unknown terminal", r.cadreA(t), r.daily(nil, "64502241020039999999999"), http.StatusForbidden},
		{"cadre sends an emergency to own village", r.cadreA(t), r.emergency([]string{villageA}), http.StatusForbidden},
		{"cadre sends a default-class alert", r.cadreA(t), AlertRequest{Title: "x", Level: 2, Areas: []string{villageA}, Media: []string{r.media}}, http.StatusForbidden},
		{"township officer to the township", r.officerT(t), r.emergency([]string{township}), http.StatusCreated},
		{"township officer to village B", r.officerT(t), r.daily([]string{villageB}), http.StatusCreated},
		{"township officer to the other township", r.officerT(t), r.emergency([]string{township2}), http.StatusForbidden},
		{"township officer to the county", r.officerT(t), r.emergency([]string{county}), http.StatusForbidden},
		{"township officer to a terminal of the other township", r.officerT(t), r.daily(nil, r.tC), http.StatusForbidden},
		{"county officer to the county", r.h.officer(t), r.emergency([]string{county}), http.StatusCreated},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := r.h.alertCount(t)
			if c.status != http.StatusCreated {
				c.who.refused(t, c.status, "", "POST", "/api/v1/alerts", c.req)
				if n := r.h.alertCount(t); n != before {
					t.Fatalf("%d alerts after a refused one, want %d", n, before)
				}
				return
			}
			var v AlertView
			c.who.mustCall(t, c.status, "POST", "/api/v1/alerts", c.req, &v)
			if v.CreatedBy != c.who.name {
				t.Fatalf("alert created by %q, want %q", v.CreatedBy, c.who.name)
			}
		})
	}
}

func terminalIDs(ts []store.Terminal) []string {
	var out []string
	for _, t := range ts {
		out = append(out, t.ID)
	}
	slices.Sort(out)
	return out
}

func deliveryTerminals(v AlertView) []string {
	var out []string
	for _, d := range v.Deliveries {
		out = append(out, d.TerminalID)
	}
	slices.Sort(out)
	return out
}

func countTotal(counts map[string]int) int {
	n := 0
	for _, c := range counts {
		n += c
	}
	return n
}

func TestScopeOfSeeing(t *testing.T) {
	t.Parallel()
	r := newScopeRig(t)
	h := r.h
	sorted := func(ids ...string) []string { slices.Sort(ids); return ids }

	t.Run("terminal lists", func(t *testing.T) {
		cases := []struct {
			name  string
			who   *client
			query string
			want  []string
		}{
			{"cadre of A", r.cadreA(t), "", []string{r.tA}},
			{"cadre of A asking for village B", r.cadreA(t), "?area=" + villageB, nil},
			{"cadre of A asking for the county", r.cadreA(t), "?area=" + county, []string{r.tA}},
			{"township officer", r.officerT(t), "", sorted(r.tA, r.tB)},
			{"county officer", r.h.officer(t), "", sorted(r.tA, r.tB, r.tC)},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				var ts []store.Terminal
				c.who.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals"+c.query, nil, &ts)
				if got := terminalIDs(ts); !slices.Equal(got, c.want) {
					t.Fatalf("sees terminals %v, want %v", got, c.want)
				}
			})
		}
	})

	t.Run("one terminal", func(t *testing.T) {
		cases := []struct {
			name, path string
			who        *client
			status     int
		}{
			{"cadre reads own terminal", "/api/v1/terminals/" + r.tA, r.cadreA(t), http.StatusOK},
			{"cadre reads B's terminal", "/api/v1/terminals/" + r.tB, r.cadreA(t), http.StatusNotFound},
			{"cadre reads B's terminal's reports", "/api/v1/terminals/" + r.tB + "/reports", r.cadreA(t), http.StatusNotFound},
			{"township officer reads the other township's terminal", "/api/v1/terminals/" + r.tC, r.officerT(t), http.StatusNotFound},
		}
		for _, c := range cases {
			t.Run(c.name, func(t *testing.T) {
				status, raw := c.who.call(t, "GET", c.path, nil, nil)
				if status != c.status {
					t.Fatalf("status %d %s, want %d", status, raw, c.status)
				}
			})
		}
	})

	// A township-wide notice reaches A and B: the cadre of A sees the
	// notice, but only A's delivery, in the list, the tally and the stream.
	stream := h.eventStreamAs(t, r.cadreA(t), "")
	town := h.send(t, r.daily([]string{township}))
	onlyB := h.send(t, r.daily([]string{villageB}))
	t.Run("deliveries of a shared alert", func(t *testing.T) {
		var v AlertView
		r.cadreA(t).mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+town.ID, nil, &v)
		if got := deliveryTerminals(v); !slices.Equal(got, []string{r.tA}) {
			t.Fatalf("cadre of A sees deliveries to %v, want only %s", got, r.tA)
		}
		if n := countTotal(v.Counts); n != 1 {
			t.Fatalf("cadre of A sees counts %v: %d deliveries, but may see 1", v.Counts, n)
		}
		var list []AlertView
		r.cadreA(t).mustCall(t, http.StatusOK, "GET", "/api/v1/alerts", nil, &list)
		for _, a := range list {
			if a.ID == onlyB.ID {
				t.Fatalf("cadre of A lists village B's alert %s", a.ID)
			}
			if a.ID == town.ID && countTotal(a.Counts) != 1 {
				t.Fatalf("cadre of A's list counts %v for the township notice, want 1 delivery", a.Counts)
			}
		}
		if !slices.ContainsFunc(list, func(a AlertView) bool { return a.ID == town.ID }) {
			t.Fatal("cadre of A does not list the township notice that reaches A")
		}
		r.officerT(t).mustCall(t, http.StatusOK, "GET", "/api/v1/alerts/"+town.ID, nil, &v)
		if got := deliveryTerminals(v); !slices.Equal(got, sorted(r.tA, r.tB)) || countTotal(v.Counts) != 2 {
			t.Fatalf("township officer sees deliveries %v counts %v, want both", got, v.Counts)
		}
	})
	t.Run("an alert only for B", func(t *testing.T) {
		for _, path := range []string{"/api/v1/alerts/" + onlyB.ID, "/api/v1/alerts/" + onlyB.ID + "/command"} {
			if status, raw := r.cadreA(t).call(t, "GET", path, nil, nil); status != http.StatusNotFound {
				t.Fatalf("GET %s as cadre of A: %d %s, want 404", path, status, raw)
			}
		}
	})
	t.Run("cancelling", func(t *testing.T) {
		r.cadreA(t).refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+town.ID+"/cancel", nil)
		r.cadreA(t).refused(t, http.StatusNotFound, "", "POST", "/api/v1/alerts/"+onlyB.ID+"/cancel", nil)
		wide := h.send(t, r.emergency([]string{county}))
		r.officerT(t).refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+wide.ID+"/cancel", nil)
		own := h.send(t, r.emergency([]string{villageA}))
		r.cadreA(t).refused(t, http.StatusForbidden, "", "POST", "/api/v1/alerts/"+own.ID+"/cancel", nil) // an emergency
		for _, id := range []string{town.ID, onlyB.ID, wide.ID, own.ID} {
			if v := h.view(t, id); v.Status != store.AlertActive {
				t.Fatalf("alert %s is %s after refused cancels", id, v.Status)
			}
		}
		var mine AlertView
		r.cadreA(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", r.daily([]string{villageA}), &mine)
		r.cadreA(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+mine.ID+"/cancel", nil, nil)
	})
	t.Run("event stream", func(t *testing.T) {
		// The county officer cancels the township notice: both deliveries
		// become cancelled. Then a cadre's own notice is cancelled as a
		// marker. Up to the marker, the cadre's stream saw nothing of B.
		r.h.officer(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+town.ID+"/cancel", nil, nil)
		var marker AlertView
		r.cadreA(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", r.daily([]string{villageA}), &marker)
		r.cadreA(t).mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+marker.ID+"/cancel", nil, nil)
		sawTown := false
		for {
			select {
			case e, ok := <-stream:
				if !ok {
					t.Fatal("stream ended")
				}
				if e.AlertID == onlyB.ID {
					t.Fatalf("cadre of A's stream carried village B's alert: %+v", e)
				}
				if e.Kind == events.KindDelivery {
					d := deliveryEvent(t, e)
					if d.TerminalID != r.tA {
						t.Fatalf("cadre of A's stream carried a delivery to %s: %+v", d.TerminalID, d)
					}
					sawTown = sawTown || d.AlertID == town.ID
					if d.AlertID == marker.ID && d.State == protocol.DeliveryCancelled {
						if !sawTown {
							t.Fatal("cadre of A's stream missed the township notice's delivery to A")
						}
						return
					}
				}
			case <-time.After(waitLimit):
				t.Fatal("no marker event")
			}
		}
	})
}

func TestScopeOfManaging(t *testing.T) {
	t.Parallel()
	r := newScopeRig(t)
	h := r.h
	pendingTown := AlertView{}
	r.h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", r.emergency([]string{township}), &pendingTown)
	// A level 1 sent at once to the township, awaiting review.
	issueNow := access.DefaultPolicy()
	issueNow.IssueNowLevel1 = true
	h.setPolicy(t, issueNow)
	urgent := r.emergency([]string{township})
	urgent.Level, urgent.IssueNow = 1, true
	var reviewTown AlertView
	r.h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", urgent, &reviewTown)
	cases := []struct {
		name         string
		who          *client
		method, path string
		body         any
		status       int
	}{
		{"technician of A enrolls into B", r.technicianA(t), "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageB, Name: "越界"}, http.StatusForbidden},
		{"technician of A enrolls into the township", r.technicianA(t), "POST", "/api/v1/terminals", EnrollRequest{AreaCode: township, Name: "越界"}, http.StatusForbidden},
		{"technician of A revokes B's terminal", r.technicianA(t), "POST", "/api/v1/terminals/" + r.tB + "/revoke", nil, http.StatusNotFound},
		{"technician of A configures B's terminal", r.technicianA(t), "POST", "/api/v1/terminals/" + r.tB + "/config", map[string]int{"volume": 30}, http.StatusNotFound},
		{"approver of A approves a township alert", r.approverA(t), "POST", "/api/v1/alerts/" + pendingTown.ID + "/approve", decision{Comment: "同意"}, http.StatusForbidden},
		{"approver of A rejects a township alert", r.approverA(t), "POST", "/api/v1/alerts/" + pendingTown.ID + "/reject", decision{Comment: "不同意"}, http.StatusForbidden},
		{"approver of A reviews a township alert", r.approverA(t), "POST", "/api/v1/alerts/" + reviewTown.ID + "/review", decision{Comment: "已复核"}, http.StatusForbidden},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.who.refused(t, c.status, "", c.method, c.path, c.body)
		})
	}
	if row := h.terminalRow(t, r.tB); row.Status != store.TerminalActive {
		t.Fatalf("B's terminal is %s after refused requests", row.Status)
	}
	if v := h.view(t, pendingTown.ID); v.Status != store.AlertPending {
		t.Fatalf("township alert is %s after refused decisions", v.Status)
	}
	if v := h.view(t, reviewTown.ID); !v.NeedsReview {
		t.Fatal("township alert was marked reviewed by an approver of one village")
	}
	var ts []store.Terminal
	h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/terminals", nil, &ts)
	if len(ts) != 3 {
		t.Fatalf("%d terminals after refused enrollments, want 3", len(ts))
	}
	// In their own village they may.
	r.technicianA(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/terminals", EnrollRequest{AreaCode: villageA, Name: "大巷村2号"}, nil)
	r.technicianA(t).mustCall(t, http.StatusOK, "POST", "/api/v1/terminals/"+r.tA+"/revoke", nil, nil)
	// The approvers listed for the township alert are those covering it.
	var pending []struct {
		AlertView
		Approvers []string `json:"approvers"`
	}
	r.h.approver(t).mustCall(t, http.StatusOK, "GET", "/api/v1/approvals", nil, &pending)
	if len(pending) != 2 || pending[1].ID != pendingTown.ID || !slices.Equal(pending[1].Approvers, []string{r.h.approver(t).name}) {
		t.Fatalf("approvals %+v, want the township alerts with approver %s only", pending, r.h.approver(t).name)
	}
}
