package terminal

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/protocol"
)

// emergency builds a level 1 emergency alert of media at full priority.
func emergency(ctl *fakeController, m protocol.Media) *protocol.Command {
	return ctl.alert([]protocol.Media{m}, func(c *protocol.Command) { c.Alert.Level, c.Alert.Volume = 1, 0 })
}

// daily builds a daily notice; priority 0 ranks it as a daily notice.
func daily(ctl *fakeController, m protocol.Media, priority int) *protocol.Command {
	return ctl.alert([]protocol.Media{m}, func(c *protocol.Command) {
		c.Alert.Class, c.Alert.Level, c.Alert.Volume, c.Alert.Priority = protocol.ClassDaily, 0, 0, priority
	})
}

// waitSwitch waits for a task-switch report.
func (c *fakeController) waitSwitch(want string) {
	c.t.Helper()
	c.waitFor("switch "+want, func() bool {
		for _, r := range c.reports {
			if r.Switch != nil && fmt.Sprintf("%s %s→%s", r.Switch.Action, r.Switch.From, r.Switch.To) == want {
				return true
			}
		}
		return false
	})
}

// TestPreemption: a routine is interrupted by an emergency, which plays at
// once; then the routine resumes from where it stopped (a program, a daily
// notice) or is dropped (live speech). The relay stays ON throughout.
func TestPreemption(t *testing.T) {
	const routineLen, cutAfter, emergencyLen = 1500 * time.Millisecond, 500 * time.Millisecond, 600 * time.Millisecond
	cases := []struct {
		name    string
		routine func(ctl *fakeController, m protocol.Media) (id, cmdID string, cmd *protocol.Command)
		resumes bool
	}{
		{"program resumes", func(ctl *fakeController, m protocol.Media) (string, string, *protocol.Command) {
			start := time.Now().Add(200 * time.Millisecond)
			it := item("news@"+start.Format(time.RFC3339Nano), start, start.Add(5*time.Second), m)
			return it.ID, "", ctl.schedule(1, it)
		}, true},
		{"daily notice resumes", func(ctl *fakeController, m protocol.Media) (string, string, *protocol.Command) {
			cmd := daily(ctl, m, 0)
			return cmd.Alert.EBMID, cmd.ID, cmd
		}, true},
		{"live speech is dropped", func(ctl *fakeController, m protocol.Media) (string, string, *protocol.Command) {
			cmd := daily(ctl, m, protocol.PriorityLive)
			return cmd.Alert.EBMID, cmd.ID, cmd
		}, false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeController(t)
			r := newRig(t, ctl)
			r.start()
			base := len(r.board.Log())
			id, cmdID, cmd := c.routine(ctl, toneOf(ctl, routineHz, routineLen))
			ctl.send(ctl.sign(cmd))
			ctl.waitSwitch("start →" + id)
			time.Sleep(cutAfter)
			em := emergency(ctl, toneOf(ctl, emergencyHz, emergencyLen))
			ctl.send(ctl.sign(em))
			ctl.waitState(em.ID, protocol.DeliveryDone)
			ebm := em.Alert.EBMID

			wantSwitches := []string{"start →" + id, "preempt " + id + "→" + ebm}
			if c.resumes {
				wantSwitches = append(wantSwitches, "start "+id+"→"+ebm, "end "+ebm+"→", "resume "+ebm+"→"+id, "end "+id+"→")
				if cmdID != "" {
					ctl.waitState(cmdID, protocol.DeliveryDone)
				} else if o := ctl.waitOccurrence(id); o.State != protocol.OccurrencePlayed || !near(time.Duration(o.PlayedMS)*time.Millisecond, routineLen, 100*time.Millisecond) {
					t.Fatalf("occurrence %+v, want played for about %v", o, routineLen)
				}
			} else {
				wantSwitches = append(wantSwitches, "end "+id+"→", "start "+id+"→"+ebm, "end "+ebm+"→")
				if rc := ctl.waitState(cmdID, protocol.DeliveryFailed); rc.Reason != "preempted" {
					t.Fatalf("live speech ended %+v, want failed: preempted", rc)
				}
			}
			eventually(t, "relay OFF", func() bool { return !r.board.On(1) && len(r.relayOps(base)) >= 2 })
			if got := ctl.switches(); !slices.Equal(got, wantSwitches) {
				t.Fatalf("switches\n  %s\nwant\n  %s", joined(got), joined(wantSwitches))
			}
			hs := r.heardTones()
			wantOrder := []float64{routineHz, emergencyHz}
			wantRoutine := routineLen
			if c.resumes {
				wantOrder = append(wantOrder, routineHz)
			} else {
				wantRoutine = cutAfter
			}
			if got := order(hs); !slices.Equal(got, wantOrder) {
				t.Fatalf("heard %v, want tones %v", hs, wantOrder)
			}
			if got := total(hs, routineHz); !near(got, wantRoutine, 120*time.Millisecond) {
				t.Fatalf("routine sounded %v in all (%v), want %v", got, hs, wantRoutine)
			}
			if got := total(hs, emergencyHz); !near(got, emergencyLen, 60*time.Millisecond) {
				t.Fatalf("emergency sounded %v, want %v", got, emergencyLen)
			}
			if ops := r.relayOps(base); !slices.Equal(ops, []string{"on", "off"}) {
				t.Fatalf("relay switched %v, want ON once and OFF once", ops)
			}
		})
	}
}

// TestQueueAndRelay: equal priorities wait their turn, and the relay stays
// ON between tasks that follow within the tail (and a warm-up), but not
// across a longer gap.
func TestQueueAndRelay(t *testing.T) {
	const d = 400 * time.Millisecond
	cases := []struct {
		name     string
		run      func(t *testing.T, ctl *fakeController, r *rig)
		wantOps  []string
		wantTone []float64
	}{
		{"equal alerts queue first come first served", func(t *testing.T, ctl *fakeController, r *rig) {
			a := emergency(ctl, toneOf(ctl, routineHz, d))
			b := emergency(ctl, toneOf(ctl, otherHz, d))
			ctl.send(ctl.sign(a))
			ctl.waitState(a.ID, protocol.DeliveryPlaying)
			ctl.send(ctl.sign(b))
			ctl.waitState(b.ID, protocol.DeliveryDone)
			if rc := ctl.waitState(a.ID, protocol.DeliveryDone); rc.State != protocol.DeliveryDone {
				t.Fatal(rc)
			}
			for _, s := range ctl.switches() {
				if strings.HasPrefix(s, "preempt") {
					t.Fatalf("an equal priority preempted: %v", ctl.switches())
				}
			}
		}, []string{"on", "off"}, []float64{routineHz, otherHz}},
		{"back-to-back programs keep the relay on", func(t *testing.T, ctl *fakeController, r *rig) {
			t0 := time.Now().Add(300 * time.Millisecond)
			x := item("x", t0, t0.Add(time.Second), toneOf(ctl, routineHz, d))
			y := item("y", t0.Add(d+20*time.Millisecond), t0.Add(3*time.Second), toneOf(ctl, otherHz, d))
			ctl.send(ctl.sign(ctl.schedule(1, x, y)))
			ctl.waitOccurrence("x")
			ctl.waitOccurrence("y")
		}, []string{"on", "off"}, []float64{routineHz, otherHz}},
		{"a long gap switches the relay off", func(t *testing.T, ctl *fakeController, r *rig) {
			t0 := time.Now().Add(300 * time.Millisecond)
			x := item("x", t0, t0.Add(time.Second), toneOf(ctl, routineHz, d))
			y := item("y", t0.Add(d+700*time.Millisecond), t0.Add(3*time.Second), toneOf(ctl, otherHz, d))
			ctl.send(ctl.sign(ctl.schedule(1, x, y)))
			ctl.waitOccurrence("x")
			ctl.waitOccurrence("y")
		}, []string{"on", "off", "on", "off"}, []float64{routineHz, otherHz}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeController(t)
			r := newRig(t, ctl)
			r.start()
			base := len(r.board.Log())
			c.run(t, ctl, r)
			eventually(t, "relay OFF", func() bool { return len(r.relayOps(base)) == len(c.wantOps) && !r.board.On(1) })
			time.Sleep(3 * ms(r.cfg.TailMS)) // nothing more may switch
			if ops := r.relayOps(base); !slices.Equal(ops, c.wantOps) {
				t.Fatalf("relay switched %v, want %v", ops, c.wantOps)
			}
			hs := r.heardTones()
			if got := order(hs); !slices.Equal(got, c.wantTone) {
				t.Fatalf("heard %v, want %v", hs, c.wantTone)
			}
			for _, h := range hs {
				if !near(h.dur, d, 40*time.Millisecond) {
					t.Fatalf("heard %v, want each whole (%v)", hs, d)
				}
			}
		})
	}
}

// TestEmergencyVolume: emergencies play at full volume unless the alert or
// emergency_volume says otherwise; other alerts use the terminal's volume.
func TestEmergencyVolume(t *testing.T) {
	const amp = 0.5 // of the test tones
	cases := []struct {
		name      string
		emergency bool
		alertVol  int
		cfgVol    int // emergency_volume
		want      float64
	}{
		{"emergency at full volume", true, 0, 0, amp},
		{"emergency_volume configured", true, 0, 50, amp * 0.25},
		{"the alert's own volume wins", true, 50, 0, amp * 0.25},
		{"daily notice at the terminal's volume", false, 0, 0, amp * 0.64}, // volume 80
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeController(t)
			r := newRig(t, ctl)
			r.cfg.EmergencyVolume = c.cfgVol
			r.start()
			m := toneOf(ctl, routineHz, 200*time.Millisecond)
			cmd := ctl.alert([]protocol.Media{m}, func(cmd *protocol.Command) {
				cmd.Alert.Volume = c.alertVol
				if !c.emergency {
					cmd.Alert.Class, cmd.Alert.Level = protocol.ClassDaily, 0
				}
			})
			ctl.send(ctl.sign(cmd))
			ctl.waitState(cmd.ID, protocol.DeliveryDone)
			hs := r.heardTones()
			if len(hs) != 1 {
				t.Fatalf("heard %v, want one tone", hs)
			}
			if p := hs[0].peak; p < c.want-0.02 || p > c.want+0.02 {
				t.Fatalf("peak %.3f, want %.3f", p, c.want)
			}
		})
	}
}
