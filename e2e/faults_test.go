package e2e

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/audio/pulsetest"
	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/protocol"
	"dalaba/sim"
	"dalaba/terminal/spool"
)

// Tones of the fault scenarios, told apart in one recording.
const (
	faultLongHz  = 1000
	faultShortHz = 700
)

// TestFaultTerminalKilledMidPlayback (scenario 2): a terminal process is
// killed with SIGKILL while an alert plays through PulseAudio, the relay
// left ON by the dead process. Restarted, it switches the relay OFF, reports
// the interrupted alert failed with reason "interrupted", and neither that
// alert nor an earlier one that had finished sounds again: the board sees no
// ON frame and the recording no tone after the restart.
func TestFaultTerminalKilledMidPlayback(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	f := newField(t)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	pulse := pulsetest.Start(t)
	ft := f.faultTerminal("大巷村1号", "killed", pulse.Env(), map[string]any{"audio": map[string]any{"output": "oto"}})
	waitOnline(t, f.admin, ft.fieldTerminal)
	long := officer.upload(t, "long.wav", audio.ToneWAV(faultLongHz, 8*time.Second, 44100, 0.5))
	short := officer.upload(t, "short.wav", audio.ToneWAV(faultShortHz, time.Second, 44100, 0.5))

	finished := sendAlert(t, officer.api, "已播完", short, ft)
	waitDelivery(t, officer.api, finished, ft.id, protocol.DeliveryDone, 20*time.Second)

	cut := sendAlert(t, officer.api, "播放中断", long, ft)
	waitDelivery(t, officer.api, cut, ft.id, protocol.DeliveryPlaying, 20*time.Second)
	time.Sleep(time.Second) // well into the audio
	ft.kill()
	if !ft.board.On(1) {
		t.Fatal("the relay is OFF right after the kill; the test needs it left ON by the dead process")
	}

	rec := pulse.StartRecording(t, filepath.Join(f.dir, "after-restart.wav"))
	restarted := time.Now()
	ft.restart()
	d := waitDelivery(t, officer.api, cut, ft.id, protocol.DeliveryFailed, 20*time.Second)
	if d.Reason != "interrupted" {
		t.Errorf("interrupted alert failed with reason %q (%s), want \"interrupted\"", d.Reason, d.Detail)
	}
	if ft.board.On(1) {
		t.Error("the relay is still ON after the restart")
	}
	// Anything replayed would switch the relay ON and sound within the
	// warm-up plus a little: give it that, and more.
	time.Sleep(warmup + 2*time.Second)
	rec.Stop()
	if ops := ft.opsSince(restarted); slices.Contains(ops, "on") || len(ops) == 0 || ops[0] != "off" {
		t.Errorf("after the restart the board saw %v, want only OFF", ops)
	}
	samples := readRecording(t, rec.Path())
	for _, hz := range []float64{faultLongHz, faultShortHz} {
		if segs := audio.ToneSegments(samples, pulsetest.RecordRate, hz); len(segs) != 0 {
			t.Errorf("the %v Hz tone sounded again after the restart: %v", hz, segs)
		}
	}
	if got := delivery(t, officer.api, finished, ft.id); got.State != protocol.DeliveryDone {
		t.Errorf("the finished alert's delivery became %s (%s)", got.State, got.Reason)
	}
	if got, want := receiptStates(t, officer.api, ft.id, cut), []string{"accepted", "fetching", "playing", "failed"}; !slices.Equal(got, want) && !slices.Equal(got, slices.Delete(slices.Clone(want), 1, 2)) {
		t.Errorf("receipts for the interrupted alert: %v, want %v (fetching optional)", got, want)
	}
	if got := receiptStates(t, officer.api, ft.id, finished); got[len(got)-1] != protocol.DeliveryDone || slices.Contains(got, protocol.DeliveryFailed) {
		t.Errorf("receipts for the finished alert: %v, want ending done", got)
	}
}

// TestFaultRelayBoardGone (scenario 4): the relay board's serial line is
// pulled (its pty pair killed) before an alert and, after it is plugged
// back, during one. Each time the terminal raises the relay fault with the
// driver's reason, the alert ends failed with reason "relay", and when the
// board returns the fault is cleared and the board ends OFF.
func TestFaultRelayBoardGone(t *testing.T) {
	f := newField(t)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	ft := f.faultTerminal("大巷村1号", "relaygone", nil, map[string]any{"heartbeat_seconds": 5})
	waitOnline(t, f.admin, ft.fieldTerminal)
	media := officer.upload(t, "tone.wav", audio.ToneWAV(faultLongHz, 3*time.Second, 44100, 0.5))

	// Before: the line is gone when the alert comes.
	ft.pull()
	before := sendAlert(t, officer.api, "继电器离线", media, ft)
	d := waitDelivery(t, officer.api, before, ft.id, protocol.DeliveryFailed, 20*time.Second)
	if d.Reason != protocol.FaultRelay || d.Detail == "" {
		t.Errorf("alert with the board gone failed with %q (%s), want reason relay and the driver's error", d.Reason, d.Detail)
	}
	changes, msgs := faultChanges(t, f.admin, ft.id, protocol.FaultRelay)
	if len(changes) == 0 || !changes[len(changes)-1] {
		t.Fatalf("relay fault changes %v, want raised", changes)
	}
	t.Logf("board gone before the alert: delivery %s/%s %q; fault %q", d.State, d.Reason, d.Detail, msgs[len(msgs)-1])

	// The board returns: the next probe (a heartbeat) clears the fault.
	ft.plugIn()
	eventually(t, 15*time.Second, "the relay fault to clear", func() bool {
		changes, _ = faultChanges(t, f.admin, ft.id, protocol.FaultRelay)
		return !changes[len(changes)-1]
	})

	// During: the line goes while the alert plays.
	during := sendAlert(t, officer.api, "播放中继电器离线", media, ft)
	waitDelivery(t, officer.api, during, ft.id, protocol.DeliveryPlaying, 20*time.Second)
	if !ft.board.On(1) {
		t.Fatal("relay not ON while the alert plays")
	}
	ft.pull()
	d = waitDelivery(t, officer.api, during, ft.id, protocol.DeliveryFailed, 20*time.Second)
	if d.Reason != protocol.FaultRelay || d.Detail == "" {
		t.Errorf("alert with the board pulled while playing failed with %q (%s), want reason relay", d.Reason, d.Detail)
	}
	changes, msgs = faultChanges(t, f.admin, ft.id, protocol.FaultRelay)
	if !changes[len(changes)-1] {
		t.Fatalf("relay fault changes %v, want raised again", changes)
	}
	t.Logf("board pulled while playing: delivery %s/%s %q; fault %q", d.State, d.Reason, d.Detail, msgs[len(msgs)-1])

	// Back again: cleared, and the relay the dead line left ON is switched OFF.
	ft.plugIn()
	eventually(t, 15*time.Second, "the relay fault to clear and the board to read OFF", func() bool {
		changes, _ = faultChanges(t, f.admin, ft.id, protocol.FaultRelay)
		return !changes[len(changes)-1] && !ft.board.On(1)
	})
	if want := []bool{true, false, true, false}; !slices.Equal(changes, want) {
		t.Errorf("relay fault changes %v, want %v", changes, want)
	}
}

// TestFaultSlowClientsCut: clients that hold a connection with half a
// request are cut by the controller: one that never finishes its headers
// (the read-header timeout), one that sends headers and part of a body and
// stalls (the body deadline), and one that opens the terminal WebSocket
// endpoint and never completes the handshake. A normal request still works
// afterwards.
func TestFaultSlowClientsCut(t *testing.T) {
	t.Parallel() // mostly waiting: overlaps the other waiting tests
	f := newField(t)
	cases := []struct{ name, send string }{
		{"half the headers", "GET /api/v1/health HTTP/1.1\r\nHost: x\r\nX-Slow: "},
		{"half a body", "POST /api/v1/media?name=a.wav HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + f.admin.token +
			"\r\nContent-Type: application/octet-stream\r\nContent-Length: 200000\r\n\r\nRIFF"},
		{"half a websocket handshake", "GET /v1/terminal HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"},
	}
	var wg sync.WaitGroup
	for _, c := range cases {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Errorf("%s: %v", c.name, err)
				return
			}
			defer conn.Close()
			if _, err := conn.Write([]byte(c.send)); err != nil {
				t.Errorf("%s: %v", c.name, err)
				return
			}
			began := time.Now()
			conn.SetReadDeadline(began.Add(time.Minute))
			_, err = io.Copy(io.Discard, conn) // until the server hangs up
			if err != nil {
				t.Errorf("%s: the controller kept the connection open for %s (%v)", c.name, time.Since(began).Round(time.Second), err)
				return
			}
			t.Logf("%s: cut after %s", c.name, time.Since(began).Round(100*time.Millisecond))
		}()
	}
	wg.Wait()
	var h map[string]any
	if b, err := httpGet(f.admin.base + "/api/v1/health"); err != nil || json.Unmarshal(b, &h) != nil || h["ok"] != true {
		t.Fatalf("health after the slow clients: %s %v", b, err)
	}
}

// TestFaultTerminalDiskFull (scenario 6): the terminal's data folder is a
// small tmpfs, filled to the last byte while the terminal runs. The
// terminal reports the disk fault (its state reads "fault" at the
// controller); killed and restarted on the full disk it still opens its
// spool; once space is freed the fault clears, the alert sent while the
// disk was full ends done or failed for the disk (never left open), the
// next alert plays, every report spooled before the disk filled is at the
// controller, and the spool file reads back undamaged.
func TestFaultTerminalDiskFull(t *testing.T) {
	dataDir := smallTmpfs(t, "3m")
	f := newField(t)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	ft := f.faultTerminal("大巷村1号", "diskfull", nil, map[string]any{"data_dir": dataDir, "heartbeat_seconds": 5})
	waitOnline(t, f.admin, ft.fieldTerminal)
	media := officer.upload(t, "tone.wav", audio.ToneWAV(faultShortHz, time.Second, 44100, 0.5))
	first := sendAlert(t, officer.api, "磁盘未满", media, ft)
	waitDelivery(t, officer.api, first, ft.id, protocol.DeliveryDone, 20*time.Second)
	eventually(t, 10*time.Second, "the first alert's reports to reach the controller", func() bool {
		return slices.Contains(receiptStates(t, officer.api, ft.id, first), protocol.DeliveryDone)
	})
	before := reports(t, f.admin, ft.id, "")

	filler := fillDisk(t, dataDir)
	full := sendAlert(t, officer.api, "磁盘已满", media, ft)
	eventually(t, 20*time.Second, "the terminal to show the fault", func() bool {
		return terminalState(t, f.admin, ft.id) == protocol.StateFault
	})

	// Killed and restarted on the full disk: the spool still opens.
	ft.kill()
	ft.restart()
	waitOnline(t, f.admin, ft.fieldTerminal)

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	// The alert that came on the full disk played (its replay guard record
	// fitted in the last block) or failed for the disk; either way the
	// controller knows.
	eventually(t, 20*time.Second, "the alert on the full disk to end", func() bool {
		return protocol.DeliveryFinal(delivery(t, officer.api, full, ft.id).State)
	})
	d := delivery(t, officer.api, full, ft.id)
	t.Logf("alert on the full disk: delivery %s/%s %q", d.State, d.Reason, d.Detail)
	if d.State != protocol.DeliveryDone && d.Reason != protocol.FaultDisk && d.Reason != "interrupted" {
		t.Errorf("alert on the full disk: delivery %s (%s: %s), want done or failed for the disk", d.State, d.Reason, d.Detail)
	}
	_, msgs := faultChanges(t, f.admin, ft.id, protocol.FaultDisk)
	t.Logf("disk fault messages: %q", msgs)
	after := sendAlert(t, officer.api, "磁盘恢复", media, ft)
	waitDelivery(t, officer.api, after, ft.id, protocol.DeliveryDone, 30*time.Second)
	eventually(t, 20*time.Second, "the disk fault to clear", func() bool {
		changes, _ := faultChanges(t, f.admin, ft.id, protocol.FaultDisk)
		return len(changes) > 0 && !changes[len(changes)-1]
	})
	got := map[uint64]bool{}
	for _, r := range reports(t, f.admin, ft.id, "") {
		got[r.Report.Seq] = true
	}
	for _, r := range before {
		if !got[r.Report.Seq] {
			t.Errorf("report %d (%s), stored before the disk filled, is gone", r.Report.Seq, r.Report.Kind)
		}
	}
	ft.proc.stop()
	sp, err := spool.Open(filepath.Join(dataDir, "reports.spool"))
	if err != nil {
		t.Fatalf("the spool does not open after the disk was full: %v", err)
	}
	defer sp.Close()
	for _, rec := range sp.Pending(0) {
		var r protocol.Report
		if err := json.Unmarshal(rec.Data, &r); err != nil {
			t.Errorf("spooled record %d is damaged: %v", rec.Seq, err)
		}
	}
}

// smallTmpfs mounts a tmpfs of size under the test's temporary folder and
// returns a folder in it. It needs root (as CI runs it).
func smallTmpfs(t *testing.T, size string) string {
	t.Helper()
	needRoot(t, "mount a tmpfs")
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size+",mode=0700", "tmpfs", dir).CombinedOutput(); err != nil {
		t.Fatalf("mount a %s tmpfs at %s: %v\n%s", size, dir, err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", dir).Run() })
	return filepath.Join(dir, "terminal")
}

// needRoot fails under CI, and skips elsewhere, when the test is not root.
func needRoot(t *testing.T, what string) {
	t.Helper()
	if os.Geteuid() == 0 {
		return
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("this test must run as root to %s (CI runs the tests as root)", what)
	}
	t.Skipf("not root: cannot %s", what)
}

// fillDisk writes a file into dir until the file system is full and
// returns its path.
func fillDisk(t *testing.T, dir string) string {
	t.Helper()
	path := filepath.Join(dir, "filler")
	fh, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer fh.Close()
	buf := make([]byte, 4096)
	for {
		if _, err := fh.Write(buf); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("fill %s: %v", dir, err)
			}
			break
		}
	}
	for n := len(buf) / 2; n > 0; n /= 2 { // the last partial pages
		if _, err := fh.Write(buf[:n]); err != nil {
			continue
		}
	}
	return path
}

// terminalState is the terminal's state as the controller last heard it.
func terminalState(t *testing.T, a api, id string) string {
	t.Helper()
	var ts []store.Terminal
	a.get(t, "/api/v1/terminals", &ts)
	for _, term := range ts {
		if term.ID == id {
			return term.State
		}
	}
	t.Fatalf("terminal %s not listed", id)
	return ""
}

// TestFaultTerminalClockJumps (scenario 7): the terminal's own clock is an
// hour ahead, then an hour behind (clock_offset_ms, across restarts). A
// server at a hijacked address replays an alert the terminal already
// played: it is refused as a replay both times and the relay never
// switches. Back on the controller with its clock an hour ahead, a program
// scheduled for the next minute starts on that minute by the county's
// clock, not an hour early or late.
func TestFaultTerminalClockJumps(t *testing.T) {
	t.Parallel() // mostly waiting: overlaps the other waiting tests
	f := newField(t)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	cadre := f.person("qian", "cadre", village)
	ft := f.faultTerminal("大巷村1号", "clock", nil, nil)
	waitOnline(t, f.admin, ft.fieldTerminal)
	tone := audio.ToneWAV(faultShortHz, time.Second, 44100, 0.5)
	played := sendAlert(t, officer.api, "已播完", officer.upload(t, "tone.wav", tone), ft)
	waitDelivery(t, officer.api, played, ft.id, protocol.DeliveryDone, 20*time.Second)
	var genuine protocol.SignedCommand
	officer.getJSON(t, "/api/v1/alerts/"+played+"/command", &genuine)
	ons := countOn(ft.ops())
	home := ft.cfg["controllers"]

	for _, jump := range []time.Duration{time.Hour, -time.Hour} {
		ft.proc.stop()
		r := startRogue(t, []protocol.SignedCommand{genuine})
		ft.cfg["controllers"], ft.cfg["clock_offset_ms"] = []string{r.url()}, jump.Milliseconds()
		ft.restart()
		eventually(t, 15*time.Second, fmt.Sprintf("the replay to be refused with the clock %+v", jump), func() bool { return len(r.rejections()) > 0 })
		time.Sleep(warmup + time.Second)        // had it been taken, the relay would switch now
		for _, reason := range r.rejections() { // once per connection
			if reason != protocol.RejectReplay {
				t.Errorf("clock %+v: the replayed alert was refused as %q, want replay", jump, reason)
			}
		}
		if n := countOn(ft.ops()); n != ons {
			t.Fatalf("clock %+v: the replayed alert switched the relay ON", jump)
		}
	}

	// Back home, an hour ahead: a program on the next minute.
	ft.proc.stop()
	ft.cfg["controllers"], ft.cfg["clock_offset_ms"] = home, time.Hour.Milliseconds()
	ft.restart()
	waitOnline(t, f.admin, ft.fieldTerminal)
	news := filepath.Join(f.dir, "news.wav")
	if err := os.WriteFile(news, tone, 0o644); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	slot := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(slot) < 8*time.Second {
		slot = slot.Add(time.Minute)
	}
	added := time.Now()
	cadre.run("program", "add", "--title", "整点报时", "--audio", news, "--terminal", ft.id, "--once", slot.In(loc).Format("2006-01-02 15:04"))
	var on time.Time
	eventually(t, time.Until(slot)+10*time.Second, "the program to switch the relay ON", func() bool {
		for _, e := range ft.ops() {
			if e.Op == "on" && e.At.After(added) {
				on = e.At
				return true
			}
		}
		return false
	})
	// The relay goes ON a warm-up and a little before the slot.
	if early := slot.Sub(on); early < 0 || early > warmup+time.Second {
		t.Errorf("with the clock an hour ahead the program switched ON at %s for a slot at %s", on.Format(time.TimeOnly), slot.Format(time.TimeOnly))
	}
	t.Logf("program for %s: relay ON %s before, with the terminal's clock an hour ahead", slot.Format(time.TimeOnly), slot.Sub(on).Round(time.Millisecond))
}

// TestFaultAudioServerGone (scenario 5): the terminal's PulseAudio server is
// killed while an alert plays. The terminal reports the audio fault, the
// alert fails with reason "audio" and the relay is switched OFF. A new
// server comes up at the same address: the fault clears without a restart
// of the terminal, and the next alert is heard in the new server's
// recording.
func TestFaultAudioServerGone(t *testing.T) {
	pulsetest.Require(t, "pulseaudio", "parecord")
	f := newField(t)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	first := pulsetest.Start(t)
	// The terminal's PULSE_SERVER is a link, pointed at whichever server runs.
	linkDir, err := os.MkdirTemp("", "pl")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(linkDir) })
	link := filepath.Join(linkDir, "s")
	pointAt := func(s *pulsetest.Server) {
		os.Remove(link)
		if err := os.Symlink(s.Socket, link); err != nil {
			t.Fatal(err)
		}
	}
	pointAt(first)
	ft := f.faultTerminal("大巷村1号", "audiogone", []string{"PULSE_SERVER=unix:" + link},
		map[string]any{"audio": map[string]any{"output": "oto"}, "heartbeat_seconds": 5})
	waitOnline(t, f.admin, ft.fieldTerminal)
	long := officer.upload(t, "long.wav", audio.ToneWAV(faultLongHz, 8*time.Second, 44100, 0.5))
	short := officer.upload(t, "short.wav", audio.ToneWAV(faultShortHz, 1500*time.Millisecond, 44100, 0.5))

	cut := sendAlert(t, officer.api, "音频服务中断", long, ft)
	waitDelivery(t, officer.api, cut, ft.id, protocol.DeliveryPlaying, 20*time.Second)
	time.Sleep(time.Second)
	syscall.Kill(first.Pid(), syscall.SIGKILL)
	d := waitDelivery(t, officer.api, cut, ft.id, protocol.DeliveryFailed, 20*time.Second)
	if d.Reason != protocol.FaultAudio {
		t.Errorf("alert cut by the audio server's death failed with %q (%s), want audio", d.Reason, d.Detail)
	}
	eventually(t, 5*time.Second, "the relay OFF", func() bool { return !ft.board.On(1) })
	changes, msgs := faultChanges(t, f.admin, ft.id, protocol.FaultAudio)
	if len(changes) == 0 || !changes[len(changes)-1] {
		t.Fatalf("audio fault changes %v, want raised", changes)
	}
	t.Logf("audio server killed: delivery %s/%s %q; fault %q", d.State, d.Reason, d.Detail, msgs[len(msgs)-1])

	second := pulsetest.Start(t)
	pointAt(second)
	eventually(t, 20*time.Second, "the audio fault to clear", func() bool {
		changes, _ = faultChanges(t, f.admin, ft.id, protocol.FaultAudio)
		return !changes[len(changes)-1]
	})
	rec := second.StartRecording(t, filepath.Join(f.dir, "back.wav"))
	back := sendAlert(t, officer.api, "音频服务恢复", short, ft)
	waitDelivery(t, officer.api, back, ft.id, protocol.DeliveryDone, 20*time.Second)
	time.Sleep(200 * time.Millisecond)
	rec.Stop()
	// A machine starved of CPU may leave dropouts: count what sounded.
	segs := audio.ToneSegments(readRecording(t, rec.Path()), pulsetest.RecordRate, faultShortHz)
	var heard time.Duration
	for _, sg := range segs {
		heard += sg.End - sg.Start
	}
	if len(segs) == 0 || !near(heard, 1500*time.Millisecond, 150*time.Millisecond) || segs[len(segs)-1].End-segs[0].Start > 2*time.Second {
		t.Fatalf("after the server returned the alert's tone sounded as %v, want 1.5 s of it", segs)
	}
	if len(segs) > 1 {
		t.Logf("the tone has dropouts (a busy machine): %v", segs)
	}
}

// TestFaultBackupWhileLive (scenario 8): `dalaba-controller backup` copies
// the database while the controller runs, an officer issues alerts one
// after another and a terminal reports. The copy, restored into a second
// controller, serves: every alert issued before the backup began is there,
// nothing that was never issued is, each alert has its one delivery, and
// the audit chain verifies. Backing up onto an existing file is refused.
func TestFaultBackupWhileLive(t *testing.T) {
	f := newField(t)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	ft := f.faultTerminal("大巷村1号", "backup", nil, nil)
	waitOnline(t, f.admin, ft.fieldTerminal)
	media := officer.upload(t, "tone.wav", audio.ToneWAV(faultShortHz, 200*time.Millisecond, 44100, 0.5))

	var (
		mu     sync.Mutex
		issued []string
		werr   error
	)
	stop, stopped := make(chan struct{}), make(chan struct{})
	go func() { // the officer keeps issuing alerts
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			id, err := postAlert(officer.api, fmt.Sprintf("备份测试 %d", i), media, ft.id)
			mu.Lock()
			if err != nil {
				werr = err
			} else {
				issued = append(issued, id)
			}
			mu.Unlock()
			if err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // the alert list shows the newest 200
		}
	}()
	time.Sleep(time.Second)
	mu.Lock()
	before := slices.Clone(issued)
	mu.Unlock()
	ctlBin := filepath.Join(f.bin, "dalaba-controller")
	cfg := filepath.Join(f.data, "controller.json")
	copyPath := filepath.Join(f.dir, "backup.db")
	t.Log(strings.TrimSpace(run(t, ctlBin, "-config", cfg, "backup", copyPath)))
	time.Sleep(500 * time.Millisecond)
	close(stop)
	<-stopped
	if werr != nil {
		t.Fatalf("issuing alerts during the backup: %v", werr)
	}
	if out, err := runErr(ctlBin, "-config", cfg, "backup", copyPath); err == nil || !strings.Contains(out, "already exists") {
		t.Errorf("backup onto an existing file: %v\n%s", err, out)
	}

	// Restore: the data folder's files, the database from the copy.
	restored := filepath.Join(f.dir, "restored")
	if out, err := exec.Command("cp", "-a", f.data, restored).CombinedOutput(); err != nil {
		t.Fatalf("copy the data folder: %v\n%s", err, out)
	}
	for _, suffix := range []string{"", "-wal", "-shm"} {
		os.Remove(filepath.Join(restored, "dalaba.db"+suffix))
	}
	if out, err := exec.Command("cp", copyPath, filepath.Join(restored, "dalaba.db")).CombinedOutput(); err != nil {
		t.Fatalf("restore the copy: %v\n%s", err, out)
	}
	var conf map[string]any
	b, err := os.ReadFile(filepath.Join(restored, "controller.json"))
	if err != nil || json.Unmarshal(b, &conf) != nil {
		t.Fatalf("read the restored config: %v", err)
	}
	addr := freePort(t)
	conf["listen"], conf["data_dir"] = addr, restored
	writeJSON(t, filepath.Join(restored, "controller.json"), conf)
	start(t, "restored-controller", nil, ctlBin, "-config", filepath.Join(restored, "controller.json"))
	r := api{base: "http://" + addr, token: f.admin.token}
	eventually(t, 10*time.Second, "the restored controller", func() bool {
		_, err := httpGet(r.base + "/api/v1/health")
		return err == nil
	})
	var alerts []controller.AlertView
	r.get(t, "/api/v1/alerts", &alerts)
	have := map[string]bool{}
	for _, a := range alerts {
		have[a.ID] = true
		n := 0
		for _, c := range a.Counts {
			n += c
		}
		if n != 1 {
			t.Errorf("restored alert %s has %d deliveries (%v), want 1", a.ID, n, a.Counts)
		}
		if !slices.Contains(issued, a.ID) {
			t.Errorf("restored alert %s was never issued", a.ID)
		}
	}
	for _, id := range before {
		if !have[id] {
			t.Errorf("alert %s, issued before the backup began, is not in the copy", id)
		}
	}
	var v struct {
		OK      bool   `json:"ok"`
		Problem string `json:"problem"`
	}
	r.get(t, "/api/v1/audit/verify", &v)
	if !v.OK {
		t.Errorf("the restored audit chain does not verify: %s", v.Problem)
	}
	t.Logf("%d alerts issued (%d before the backup began), %d in the copy", len(issued), len(before), len(alerts))
	if len(alerts) < len(before) || len(before) == 0 {
		t.Fatalf("%d alerts in the copy, %d issued before it began", len(alerts), len(before))
	}
}

// postAlert issues an alert to one terminal and returns its id; for use
// off the test's goroutine.
func postAlert(a api, title, media, terminalID string) (string, error) {
	body, _ := json.Marshal(map[string]any{"class": protocol.ClassEmergency, "level": 4, "title": title,
		"terminals": []string{terminalID}, "media": []string{media}})
	req, _ := http.NewRequest(http.MethodPost, a.base+"/api/v1/alerts", bytes.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+a.token)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var v controller.AlertView
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode/100 != 2 || json.Unmarshal(b, &v) != nil {
		return "", fmt.Errorf("POST /api/v1/alerts: %s %s", resp.Status, b)
	}
	return v.ID, nil
}

// fleetSize is how many terminal processes TestFaultControllerKilledMidFanOut
// runs, each a real dalaba-terminal; TestFaultControllerKilledFleet runs
// the 200 with the fleet simulator.
const fleetSize = 20

// TestFaultControllerKilledMidFanOut (scenario 1): the controller is killed
// with SIGKILL the moment it has issued an alert to 20 terminal processes,
// while the commands, receipts and their database writes are in flight,
// and is started again. Every terminal plays the alert exactly once (one
// "start" switch report, receipts accepted → playing → done, each once),
// every receipt arrives and every delivery ends done.
func TestFaultControllerKilledMidFanOut(t *testing.T) {
	c := newCtlField(t, false)
	c.noApproval()
	officer := c.person("zhao", "officer", county)
	var ids []string
	var fleet []*fieldTerminal
	for i := range fleetSize {
		name := fmt.Sprintf("大巷村%d号", i+1)
		out := c.cli("terminal", "enroll", "--area", village, "--name", name)
		ft := &fieldTerminal{name: name, proto: fmt.Sprintf("fleet%02d", i), id: enrolledRe.FindStringSubmatch(out)[1]}
		ft.cfgPath = filepath.Join(c.dir, ft.proto+".json")
		ft.cfg = map[string]any{
			"controllers":  []string{"ws://" + c.addr + "/v1/terminal"},
			"data_dir":     filepath.Join(c.dir, "terminal-"+ft.proto),
			"enroll_token": enrollTok.FindStringSubmatch(out)[1],
			"name":         name,
			"relay":        map[string]any{"protocol": "sim", "channel": 1},
			"audio":        map[string]any{"output": "silent"},
			"warmup_ms":    warmup.Milliseconds(),
			"tail_ms":      tailTime.Milliseconds(),
		}
		ft.start(t, c.bin, nil)
		fleet, ids = append(fleet, ft), append(ids, ft.id)
	}
	waitOnline(t, c.admin, fleet...)
	media := officer.upload(t, "tone.wav", audio.ToneWAV(faultShortHz, 2*time.Second, 44100, 0.5))

	var v controller.AlertView
	officer.do(t, http.MethodPost, "/api/v1/alerts", map[string]any{
		"class": protocol.ClassEmergency, "level": 4, "title": "控制中心宕机测试", "terminals": ids, "media": []string{media},
	}, &v)
	c.kill()
	killed := time.Now()
	c.restart()
	t.Logf("controller killed right after issuing the alert, and started again in %s", time.Since(killed).Round(time.Millisecond))

	eventually(t, 90*time.Second, "every delivery to end", func() bool {
		var got controller.AlertView
		officer.get(t, "/api/v1/alerts/"+v.ID, &got)
		return got.Counts[protocol.DeliveryDone] == fleetSize || func() bool {
			for _, d := range got.Deliveries {
				if protocol.DeliveryFinal(d.State) && d.State != protocol.DeliveryDone {
					t.Fatalf("terminal %s: delivery %s (%s: %s)", d.TerminalID, d.State, d.Reason, d.Detail)
				}
			}
			return false
		}()
	})
	resent := 0
	for _, ft := range fleet {
		eventually(t, 10*time.Second, ft.name+"'s receipts", func() bool {
			return slices.Contains(receiptStates(t, c.admin, ft.id, v.ID), protocol.DeliveryDone)
		})
		got := slices.DeleteFunc(receiptStates(t, c.admin, ft.id, v.ID), func(s string) bool { return s == protocol.DeliveryFetching })
		if !slices.Equal(got, []string{"accepted", "playing", "done"}) {
			t.Errorf("%s: receipts %v, want accepted, playing, done: each once", ft.name, got)
		}
		starts := 0
		for _, s := range switches(t, c.admin, ft.id) {
			if s.Action == "start" && s.To == v.ID {
				starts++
			}
		}
		if starts != 1 {
			t.Errorf("%s started the alert %d times, want once", ft.name, starts)
		}
		for _, r := range reports(t, c.admin, ft.id, protocol.ReportRejection) {
			if r.Report.Rejection.Reason == protocol.RejectReplay {
				resent++
				break
			}
		}
	}
	t.Logf("%d of %d terminals were sent the alert again after the restart and refused it as a replay", resent, fleetSize)
}

// TestFaultControllerKilledFleet (scenario 1 at the scale): 200
// terminals of the fleet simulator (the real terminal package in two
// `dalaba sim worker` processes, silent sinks) get one alert; the
// controller is killed with SIGKILL the moment it has issued it and is
// started again. Every delivery ends done, and every terminal reported
// exactly one start of the alert and each receipt once.
func TestFaultControllerKilledFleet(t *testing.T) {
	const n = 200
	c := newCtlField(t, false)
	c.noApproval()
	officer := c.person("zhao", "officer", county)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	dalaba := filepath.Join(c.bin, "dalaba")
	fl, err := sim.Start(ctx, sim.Options{API: c.admin.base, Token: c.admin.token, County: county, N: n, Townships: 2, Villages: 4,
		PerProcess: n / 2, RampPerSec: 200, Bound: 5 * time.Minute,
		Spawn: func() *exec.Cmd { return exec.Command(dalaba, "sim", "worker") }})
	if fl != nil {
		defer fl.Stop()
	}
	if err != nil {
		t.Fatalf("start the fleet: %v", err)
	}
	media := officer.upload(t, "tone.wav", audio.ToneWAV(faultShortHz, time.Second, 44100, 0.5))
	var v controller.AlertView
	officer.do(t, http.MethodPost, "/api/v1/alerts", map[string]any{
		"class": protocol.ClassEmergency, "level": 4, "title": "控制中心宕机测试", "areas": []string{county}, "media": []string{media},
	}, &v)
	c.kill()
	c.restart()
	var got controller.AlertView
	eventually(t, 3*time.Minute, "every delivery done", func() bool {
		got.Counts = nil
		officer.get(t, "/api/v1/alerts/"+v.ID, &got)
		return got.Counts[protocol.DeliveryDone] == n
	})
	starts, receipts := map[string]int{}, map[string][]string{}
	eventually(t, 30*time.Second, "every terminal's receipts", func() bool {
		clear(starts)
		clear(receipts)
		var reps []store.StoredReport
		c.admin.get(t, "/api/v1/reports?limit=10000", &reps)
		slices.SortFunc(reps, func(x, y store.StoredReport) int { return cmp.Compare(x.Report.Seq, y.Report.Seq) })
		for _, r := range reps {
			switch {
			case r.Report.Switch != nil && r.Report.Switch.Action == "start" && r.Report.Switch.To == v.ID:
				starts[r.TerminalID]++
			case r.Report.Receipt != nil && r.Report.Receipt.EBMID == v.ID && r.Report.Receipt.State != protocol.DeliveryFetching:
				receipts[r.TerminalID] = append(receipts[r.TerminalID], r.Report.Receipt.State)
			}
		}
		done := 0
		for _, rs := range receipts {
			if slices.Contains(rs, protocol.DeliveryDone) {
				done++
			}
		}
		return done == n
	})
	if len(starts) != n {
		t.Errorf("%d terminals reported starting the alert, want %d", len(starts), n)
	}
	for id, k := range starts {
		if k != 1 {
			t.Errorf("terminal %s started the alert %d times, want once", id, k)
		}
	}
	for id, rs := range receipts {
		if !slices.Equal(rs, []string{"accepted", "playing", "done"}) {
			t.Errorf("terminal %s: receipts %v, want accepted, playing, done: each once", id, rs)
		}
	}
	t.Logf("%d terminals: every delivery done and played once after the controller was killed mid-issue", n)
}
