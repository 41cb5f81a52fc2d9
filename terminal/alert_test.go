package terminal

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

const toneFreq = 1000

// tone adds a tone WAV of d to the controller and returns its description.
func tone(ctl *fakeController, d time.Duration) protocol.Media {
	return ctl.addMedia(audio.ToneWAV(toneFreq, d, 16000, 0.5), 4096)
}

// onThenOff reports whether ops holds an "on" and, after it, an "off".
func onThenOff(ops []string) bool {
	on := slices.Index(ops, "on")
	return on >= 0 && slices.Contains(ops[on:], "off")
}

func TestAlertPlays(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	term := r.start()
	base := len(r.board.Log())
	cmd := ctl.alert([]protocol.Media{tone(ctl, 300*time.Millisecond)}, func(c *protocol.Command) { c.Alert.Repeat = 2 })
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryDone)

	want := []string{protocol.DeliveryAccepted, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone}
	if got := ctl.states(cmd.ID); !slices.Equal(got, want) {
		t.Fatalf("receipts %v, want %v", got, want)
	}
	ops := r.ops(base)
	if !onThenOff(ops) || ops[len(ops)-2] != "off" {
		t.Fatalf("relay board got %v, want on ... off", ops)
	}
	if r.board.On(1) {
		t.Fatal("relay left ON")
	}
	if got := r.playedTone(toneFreq); got < 550*time.Millisecond || got > 700*time.Millisecond {
		t.Fatalf("tone sounded %v, want about 600ms (300ms twice)", got)
	}
	// Every report is stored once and acknowledged: the spool is empty.
	eventually(t, "acks", func() bool { return term.Status().PendingReports == 0 })
	ctl.mu.Lock()
	for i, rep := range ctl.reports {
		if rep.Seq != uint64(i+1) {
			t.Errorf("report %d has seq %d, want %d", i, rep.Seq, i+1)
		}
	}
	ctl.mu.Unlock()

	// The same media again is played from the cache: no fetching.
	again := ctl.alert([]protocol.Media{tone(ctl, 300*time.Millisecond)}, nil)
	ctl.send(ctl.sign(again))
	ctl.waitState(again.ID, protocol.DeliveryDone)
	if got := ctl.states(again.ID); slices.Contains(got, protocol.DeliveryFetching) {
		t.Fatalf("cached media fetched again: %v", got)
	}
}

func TestBadChunkPlaysNothing(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	base := len(r.board.Log())
	m := tone(ctl, 300*time.Millisecond)
	ctl.set(func(c *fakeController) { c.corrupt[m.SHA256] = 2 })
	cmd := ctl.alert([]protocol.Media{m}, nil)
	ctl.send(ctl.sign(cmd))
	rc := ctl.waitState(cmd.ID, protocol.DeliveryFailed)
	if rc.Reason != "media" || !strings.Contains(rc.Detail, "chunk 2 ") {
		t.Fatalf("failed with reason %q (%s), want media, caught at chunk 2", rc.Reason, rc.Detail)
	}
	if f := ctl.faults(protocol.FaultMedia); len(f) != 1 || !f[0].Active {
		t.Fatalf("media faults %+v, want one raised", f)
	}
	if ops := r.ops(base); len(ops) != 0 {
		t.Fatalf("relay board got %v for media that failed its hash", ops)
	}
	if w := r.wavs(); len(w) != 0 {
		t.Fatalf("audio written: %v", w)
	}
	if _, ok := r.term.cache.Path(cacheKey(m)); ok {
		t.Fatal("damaged media entered the cache")
	}
}

// The cache keeps a file under the chunk list it was checked against. A
// signed command whose chunk list belongs to other audio than its sha256
// plays those chunks, and a later command with the file's true chunk list
// does not take them from the cache for the file: it fetches and checks
// the file again.
func TestCacheKeptUnderSignedChunks(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	f := toneOf(ctl, 440, 300*time.Millisecond)
	g := toneOf(ctl, 880, 300*time.Millisecond)
	var fData []byte
	ctl.set(func(c *fakeController) { fData = c.media[f.SHA256]; c.media[f.SHA256] = c.media[g.SHA256] })
	forged := g
	forged.SHA256 = f.SHA256 // g's chunks under f's name
	first := ctl.alert([]protocol.Media{forged}, nil)
	ctl.send(ctl.sign(first))
	ctl.waitState(first.ID, protocol.DeliveryDone)

	ctl.set(func(c *fakeController) { c.media[f.SHA256] = fData })
	second := ctl.alert([]protocol.Media{f}, nil)
	ctl.send(ctl.sign(second))
	ctl.waitState(second.ID, protocol.DeliveryDone)
	if got := ctl.states(second.ID); !slices.Contains(got, protocol.DeliveryFetching) {
		t.Fatalf("receipts %v: the file was taken from the cache under another chunk list", got)
	}
	if _, ok := r.term.cache.Path(cacheKey(f)); !ok {
		t.Fatal("the file is not in the cache under its own chunk list")
	}
}

func TestUnknownMediaFails(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	m := tone(ctl, 100*time.Millisecond)
	ctl.set(func(c *fakeController) { delete(c.media, m.SHA256) })
	cmd := ctl.alert([]protocol.Media{m}, nil)
	ctl.send(ctl.sign(cmd))
	if rc := ctl.waitState(cmd.ID, protocol.DeliveryFailed); rc.Reason != "media" {
		t.Fatalf("failed with reason %q, want media", rc.Reason)
	}
}

func TestCancelMidPlay(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	base := len(r.board.Log())
	cmd := ctl.alert([]protocol.Media{tone(ctl, 5*time.Second)}, nil)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryPlaying)
	queued := ctl.alert([]protocol.Media{tone(ctl, 5*time.Second)}, func(c *protocol.Command) { c.Alert.EBMID = cmd.Alert.EBMID })
	ctl.send(ctl.sign(queued))
	ctl.waitState(queued.ID, protocol.DeliveryAccepted)

	cancel := ctl.command(protocol.KindCancel, func(c *protocol.Command) {
		c.Cancel = &protocol.Cancel{EBMID: cmd.Alert.EBMID, Reason: "drill over"}
	})
	start := time.Now()
	ctl.send(ctl.sign(cancel))
	ctl.waitState(cmd.ID, protocol.DeliveryCancelled)
	ctl.waitState(queued.ID, protocol.DeliveryCancelled)
	ctl.waitState(cancel.ID, protocol.DeliveryDone)
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("cancel took %v", d)
	}
	if ops := r.ops(base); !onThenOff(ops) || r.board.On(1) {
		t.Fatalf("relay board got %v, on=%v; want on then off", ops, r.board.On(1))
	}
	if got := r.playedTone(toneFreq); got > 3*time.Second {
		t.Fatalf("tone sounded %v after a cancel", got)
	}
	if slices.Contains(ctl.states(queued.ID), protocol.DeliveryPlaying) {
		t.Fatal("queued alert of the cancelled EBM played")
	}
}

func TestRelayMuted(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	r.board.SetMute(true)
	cmd := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	ctl.send(ctl.sign(cmd))
	rc := ctl.waitState(cmd.ID, protocol.DeliveryFailed)
	if rc.Reason != "relay" {
		t.Fatalf("failed with reason %q (%s), want relay", rc.Reason, rc.Detail)
	}
	f := ctl.faults(protocol.FaultRelay)
	if len(f) != 1 || !f[0].Active || f[0].Message == "" {
		t.Fatalf("relay faults %+v, want one raised with the driver's error", f)
	}
	if w := r.wavs(); len(w) != 0 {
		t.Fatalf("audio played although the relay failed: %v", w)
	}
	if r.board.On(1) {
		t.Fatal("the board heard ON; the terminal must still have sent OFF")
	}

	// The board answers again: the next alert plays and clears the fault.
	r.board.SetMute(false)
	next := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	ctl.send(ctl.sign(next))
	ctl.waitState(next.ID, protocol.DeliveryDone)
	ctl.waitFor("relay fault cleared", func() bool {
		for _, rep := range ctl.reports {
			if rep.Fault != nil && rep.Fault.Code == protocol.FaultRelay && !rep.Fault.Active {
				return true
			}
		}
		return false
	})
}

func TestAudioUnavailable(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	fail := true
	r.start(func(term *Terminal) {
		open := term.speaker.open
		term.speaker.open = func() (audio.Sink, error) {
			if fail {
				return nil, errors.New("audio: cannot open the audio device (PulseAudio: no server; ALSA: no card)")
			}
			return open()
		}
	})
	base := len(r.board.Log())
	cmd := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	ctl.send(ctl.sign(cmd))
	if rc := ctl.waitState(cmd.ID, protocol.DeliveryFailed); rc.Reason != "audio" {
		t.Fatalf("failed with reason %q, want audio", rc.Reason)
	}
	if f := ctl.faults(protocol.FaultAudio); len(f) != 1 || !f[0].Active {
		t.Fatalf("audio faults %+v, want one raised", f)
	}
	if ops := r.ops(base); slices.Contains(ops, "on") {
		t.Fatalf("amplifier switched on without audio: %v", ops)
	}
	ctl.mu.Lock()
	fail = false
	ctl.mu.Unlock()
	next := ctl.alert([]protocol.Media{tone(ctl, 200*time.Millisecond)}, nil)
	ctl.send(ctl.sign(next))
	ctl.waitState(next.ID, protocol.DeliveryDone)
	if f := ctl.faults(protocol.FaultAudio); len(f) != 2 || f[1].Active {
		t.Fatalf("audio faults %+v, want raised then cleared", f)
	}
}

func TestShutdownSwitchesOff(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	cmd := ctl.alert([]protocol.Media{tone(ctl, 5*time.Second)}, nil)
	ctl.send(ctl.sign(cmd))
	ctl.waitState(cmd.ID, protocol.DeliveryPlaying)
	start := time.Now()
	r.stop()
	if d := time.Since(start); d > time.Second {
		t.Fatalf("shutdown took %v, want under a second", d)
	}
	if r.board.On(1) {
		t.Fatal("relay left ON after shutdown")
	}
}
