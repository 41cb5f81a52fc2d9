package e2e

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/audio/pulsetest"
	"dalaba/protocol"
)

var (
	deviceOnce sync.Once
	deviceBin  string
	deviceErr  error
)

// deviceBinaries returns a folder beside the other built binaries holding
// dalaba-terminal built as for the boards (make cross: static, no cgo,
// stripped), for this machine's architecture.
func deviceBinaries(tb testing.TB) string {
	tb.Helper()
	bin := binaries(tb)
	deviceOnce.Do(func() {
		deviceBin = filepath.Join(bin, "device")
		cmd := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", filepath.Join(deviceBin, "dalaba-terminal"), "dalaba/cmd/dalaba-terminal")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			deviceErr = fmt.Errorf("build dalaba-terminal (CGO_ENABLED=0): %v\n%s", err, out)
		}
	})
	if deviceErr != nil {
		tb.Fatal(deviceErr)
	}
	return deviceBin
}

// footprintMP3 is an alert recording of about 20 s: a tagless 1.045 s
// test file twenty times over (the fan-out benchmark's alert is the mono
// 64 kbit/s one).
func footprintMP3(tb testing.TB, fixture string) []byte {
	tb.Helper()
	b, err := os.ReadFile(filepath.Join("..", "audio", "testdata", fixture))
	if err != nil {
		tb.Fatal(err)
	}
	return bytes.Repeat(b, 20)
}

// procSample is what /proc says about a process at one moment.
type procSample struct {
	at    time.Time
	rss   int64 // VmRSS, bytes
	hwm   int64 // VmHWM, bytes
	ticks int64 // utime+stime of all its threads, clock ticks
}

// userHZ is the kernel's clock tick for /proc/<pid>/stat times (USER_HZ,
// 100 on every Linux architecture Dalaba runs on).
const userHZ = 100

// readProc samples /proc/<pid>/status and /proc/<pid>/stat.
func readProc(pid int) (procSample, error) {
	s := procSample{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return s, err
	}
	for _, line := range strings.Split(string(status), "\n") {
		key, val, _ := strings.Cut(line, ":")
		kb, _ := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(val), " kB"), 10, 64)
		switch key {
		case "VmRSS":
			s.rss = kb << 10
		case "VmHWM":
			s.hwm = kb << 10
		}
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return s, err
	}
	// The command name, in parentheses, may hold spaces: count fields after it.
	i := bytes.LastIndexByte(stat, ')')
	fields := strings.Fields(string(stat[i+1:]))
	if len(fields) < 13 || s.rss == 0 {
		return s, fmt.Errorf("/proc/%d: unexpected format", pid)
	}
	utime, err1 := strconv.ParseInt(fields[11], 10, 64) // field 14 of stat
	stime, err2 := strconv.ParseInt(fields[12], 10, 64) // field 15
	if err1 != nil || err2 != nil {
		return s, fmt.Errorf("/proc/%d/stat: bad CPU times %q %q", pid, fields[11], fields[12])
	}
	s.ticks = utime + stime
	return s, nil
}

// sampler reads /proc for a process every 100 ms until stopped.
type sampler struct {
	pid  int
	stop chan struct{}
	done chan struct{}
	mu   sync.Mutex
	got  []procSample
	err  error
}

func startSampler(pid int) *sampler {
	s := &sampler{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		tick := time.NewTicker(100 * time.Millisecond)
		defer tick.Stop()
		for {
			p, err := readProc(pid)
			s.mu.Lock()
			if err != nil && s.err == nil {
				s.err = err
			}
			if err == nil {
				s.got = append(s.got, p)
			}
			s.mu.Unlock()
			select {
			case <-s.stop:
				return
			case <-tick.C:
			}
		}
	}()
	return s
}

// samples stops the sampler and returns what it saw.
func (s *sampler) samples() ([]procSample, error) {
	close(s.stop)
	<-s.done
	return s.got, s.err
}

// footprint is one terminal's measured footprint.
type footprint struct {
	idleRSS, playRSS, hwm int64   // bytes
	idleCPU               float64 // percent of one core over idleWindow before the alert
	playCPU               float64 // percent of one core over the playing time
	played                time.Duration
}

// window returns the CPU used between the samples nearest inside
// [from, to], as a percent of one core, and the peak RSS of all samples.
func window(ss []procSample, from, to time.Time) (cpu float64, peak int64, err error) {
	var first, last *procSample
	for i := range ss {
		peak = max(peak, ss[i].rss)
		if ss[i].at.Before(from) || ss[i].at.After(to) {
			continue
		}
		if first == nil {
			first = &ss[i]
		}
		last = &ss[i]
	}
	if first == nil || last.at.Sub(first.at) < time.Second {
		return 0, peak, fmt.Errorf("fewer than a second of samples inside the playing time %s..%s", from.Format("15:04:05.000"), to.Format("15:04:05.000"))
	}
	secs := last.at.Sub(first.at).Seconds()
	return float64(last.ticks-first.ticks) / userHZ / secs * 100, peak, nil
}

// idleWindow is how long the terminal's CPU is measured while it waits, its
// audio output open (5 s: 1 clock tick is 0.2 % of a core).
const idleWindow = 5 * time.Second

// measureFootprint runs one device-built terminal on a pty relay line with
// oto output into PulseAudio, measures it idle, then sends it an alert
// with the ~20 s MP3 and measures it while it plays.
func measureFootprint(b *testing.B, fixture string, alerts int) []footprint {
	pulsetest.Require(b, "pulseaudio", "parecord")
	f := newField(b)
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	pulse := pulsetest.Start(b)
	dev := *f
	dev.bin = deviceBinaries(b)
	ft := dev.terminal("大巷村1号", "footprint", "lcus", pulse.Env(), nil)
	waitOnline(b, f.admin, ft)
	media := officer.upload(b, "county.mp3", footprintMP3(b, fixture))
	pid := ft.proc.cmd.Process.Pid

	var out []footprint
	for i := range alerts {
		// Settled: online, past the start-up work and a GC cycle or two.
		time.Sleep(2 * time.Second)
		settled, err := readProc(pid)
		if err != nil {
			b.Fatal(err)
		}
		time.Sleep(idleWindow)
		idle, err := readProc(pid)
		if err != nil {
			b.Fatal(err)
		}
		idleCPU := float64(idle.ticks-settled.ticks) / userHZ / idle.at.Sub(settled.at).Seconds() * 100
		rec := pulse.StartRecording(b, filepath.Join(f.dir, fmt.Sprintf("footprint-%d.wav", i)))
		s := startSampler(pid)
		id := sendAlert(b, officer.api, fmt.Sprintf("足迹测试%d", i), media, &faultTerminal{fieldTerminal: ft})
		waitDelivery(b, officer.api, id, ft.id, protocol.DeliveryDone, 60*time.Second)
		time.Sleep(200 * time.Millisecond) // let the last audio reach the recording
		rec.Stop()
		ss, err := s.samples()
		if err != nil {
			b.Fatal(err)
		}
		segs := audio.ToneSegments(readRecording(b, rec.Path()), pulsetest.RecordRate, toneHz)
		var heard time.Duration
		for _, sg := range segs {
			heard += sg.End - sg.Start
		}
		// Twenty tones of 1 s, a short gap at each join of the file.
		if len(segs) == 0 || heard < 19*time.Second || heard > 21500*time.Millisecond {
			b.Fatalf("the recording holds %s of the tone in %d segments, want about 20 s: the terminal did not really play", heard, len(segs))
		}
		cpu, peak, err := window(ss, rec.Time(segs[0].Start), rec.Time(segs[len(segs)-1].End))
		if err != nil {
			b.Fatal(err)
		}
		out = append(out, footprint{idleRSS: idle.rss, playRSS: peak, hwm: ss[len(ss)-1].hwm, idleCPU: idleCPU, playCPU: cpu, played: heard})
	}
	return out
}

// BenchmarkTerminalFootprint (issue 5, benchmark 5): RSS of a real terminal
// process idle and while it plays a 20 s MP3 alert through PulseAudio, and
// the CPU it uses while playing and while it waits (idle-cpu-%: 5 s before
// the alert). Each iteration is one alert to the same
// process; -count gives fresh processes.
//
//	go test -count=3 -run '^$' -bench TerminalFootprint -benchtime 1x ./e2e
func BenchmarkTerminalFootprint(b *testing.B) {
	for _, c := range []struct{ name, fixture string }{
		{"mono-64k", "tone1k_mono_44k1_notag.mp3"},
		{"stereo-128k", "tone1k_stereo_44k1_128k_notag.mp3"},
	} {
		b.Run(c.name, func(b *testing.B) {
			fs := measureFootprint(b, c.fixture, b.N)
			mb := func(n int64) float64 { return float64(n) / (1 << 20) }
			var idle, play, hwm int64
			var cpus, idleCPUs []float64
			for _, f := range fs {
				idle, play, hwm = max(idle, f.idleRSS), max(play, f.playRSS), max(hwm, f.hwm)
				cpus, idleCPUs = append(cpus, f.playCPU), append(idleCPUs, f.idleCPU)
				b.Logf("idle %.1f MB, playing %.1f MB (peak), high-water %.1f MB, CPU %.2f%% of one core over %s of sound, %.2f%% idle",
					mb(f.idleRSS), mb(f.playRSS), mb(f.hwm), f.playCPU, f.played.Round(time.Millisecond), f.idleCPU)
			}
			slices.Sort(cpus)
			slices.Sort(idleCPUs)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(mb(idle), "idle-rss-MB")
			b.ReportMetric(mb(play), "play-rss-MB")
			b.ReportMetric(cpus[len(cpus)/2], "play-cpu-%")
			b.ReportMetric(idleCPUs[len(idleCPUs)/2], "idle-cpu-%")
			b.ReportMetric(mb(hwm), "hwm-MB")
		})
	}
}

// TestReadProc checks the /proc reading the footprint benchmark relies on
// against this process: its RSS is within its high-water mark, and busy
// work shows in its processor ticks.
func TestReadProc(t *testing.T) {
	before, err := readProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if before.rss <= 0 || before.hwm < before.rss/2 {
		t.Errorf("VmRSS %d, VmHWM %d bytes: not read", before.rss, before.hwm)
	}
	for limit := time.Now().Add(30 * time.Second); ; {
		now, err := readProc(os.Getpid())
		if err != nil {
			t.Fatal(err)
		}
		if now.ticks >= before.ticks+3 {
			break
		}
		if time.Now().After(limit) {
			t.Fatalf("busy work for 30 s moved the processor ticks from %d to %d only", before.ticks, now.ticks)
		}
		for i := 0; i < 1e6; i++ { // busy work
			runtime.Gosched()
		}
	}
	if _, err := readProc(1 << 30); err == nil {
		t.Error("reading a process that does not exist did not fail")
	}
}
