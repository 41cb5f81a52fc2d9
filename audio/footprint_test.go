package audio

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"
	"time"

	"dalaba/audio/pulsetest"
)

// BenchmarkDecode decodes 20 s alerts to the output's PCM (48 kHz stereo)
// as a terminal does while it plays, and reports the processor time that
// takes, garbage collection included, as a percent of one core in real
// time (cpu-%): the decoding share of the terminal footprint
// (docs/benchmarks.md, "Terminal footprint"). The MP3 is the fan-out
// benchmark's (a 64 kbit/s mono test file twenty times over), and a
// 128 kbit/s stereo one made the same way; the WAV at 44.1 kHz measures
// the resampling alone.
//
//	go test -run '^$' -bench 'Decode$' -benchmem ./audio
func BenchmarkDecode(b *testing.B) {
	mp3 := func(tb testing.TB) []byte { return bytes.Repeat(readFixture(tb, "tone1k_mono_44k1_notag.mp3"), 20) }
	stereo := func(tb testing.TB) []byte {
		return bytes.Repeat(readFixture(tb, "tone1k_stereo_44k1_128k_notag.mp3"), 20)
	}
	wav := func(testing.TB) []byte { return ToneWAV(1000, 20*time.Second, 44100, 0.5) }
	for _, c := range []struct {
		name   string
		file   func(testing.TB) []byte
		format string
		rate   int
	}{
		{"mp3-44k1-mono-64k-to-48k", mp3, "mp3", 48000},
		{"mp3-44k1-mono-64k-to-44k1", mp3, "mp3", 44100},
		{"mp3-44k1-stereo-128k-to-48k", stereo, "mp3", 48000},
		{"wav-44k1-mono-to-48k", wav, "wav", 48000},
		{"wav-44k1-mono-to-44k1", wav, "wav", 44100},
	} {
		b.Run(c.name, func(b *testing.B) {
			data := c.file(b)
			info, err := Probe(data)
			if err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 8192)
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime(b)
			for range b.N {
				pcm, err := Decode(bytes.NewReader(data), c.format, c.rate, 80)
				if err != nil {
					b.Fatal(err)
				}
				n, err := io.CopyBuffer(io.Discard, struct{ io.Reader }{pcm}, buf)
				if want := int64(info.Duration.Seconds()*float64(c.rate)) * frameBytes; err != nil || n < want-frameBytes {
					b.Fatalf("decoded %d bytes (%v), want %d", n, err, want)
				}
			}
			cpu := cpuTime(b) - cpu0
			b.ReportMetric(float64(cpu)/float64(b.N)/float64(info.Duration)*100, "cpu-%")
		})
	}
}

// cpuTime returns the processor time the process has used, all threads.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestDecodeMemoryDoesNotGrowWithLength: decoding holds neither the file
// nor its PCM, so a ten-minute MP3 costs the terminal no more memory than
// a twenty-second one (the file is read from disk as it plays).
func TestDecodeMemoryDoesNotGrowWithLength(t *testing.T) {
	one := readFixture(t, "tone1k_stereo_44k1_128k_notag.mp3")
	short, long := bytes.Repeat(one, 20), bytes.Repeat(one, 600) // 21 s, 10.5 min
	inUse := func(data []byte) uint64 {
		var before, during runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		pcm, err := Decode(bytes.NewReader(data), "mp3", 48000, 100)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := io.CopyN(io.Discard, pcm, 5*48000*frameBytes); err != nil { // 5 s
			t.Fatal(err)
		}
		runtime.GC()
		runtime.ReadMemStats(&during)
		runtime.KeepAlive(pcm)
		return during.HeapAlloc - min(before.HeapAlloc, during.HeapAlloc)
	}
	s, l := inUse(short), inUse(long)
	t.Logf("heap held while decoding: %d KB for 21 s, %d KB for 10.5 min (the file is %d KB)", s>>10, l>>10, len(long)>>10)
	if l > s+1<<20 {
		t.Errorf("decoding 10.5 min holds %d KB, 21 s %d KB: memory grows with the file", l>>10, s>>10)
	}
}

// TestPlayPollsOftenOnlyAtTheEnd: a Play checks its output rarely while
// its source has audio left (checking every 5 ms throughout cost about 4%
// of a core) and often once the source has ended, so that it still
// returns right after the last sample (TestOtoSinkPulseAudio measures that).
func TestPlayPollsOftenOnlyAtTheEnd(t *testing.T) {
	for _, c := range []struct {
		name string
		src  io.Reader
	}{
		{"ends with EOF", bytes.NewReader(make([]byte, 64))},
		{"fails", iotest.ErrReader(errors.New("disk gone"))},
	} {
		t.Run(c.name, func(t *testing.T) {
			r := &readTracker{r: c.src}
			buf := make([]byte, 16)
			for {
				if got := r.pollEvery(); got != otoPollPlaying {
					t.Fatalf("after %d bytes, with audio left, polls every %v, want %v", r.count(), got, otoPollPlaying)
				}
				if _, err := r.Read(buf); err != nil {
					break
				}
			}
			if got := r.pollEvery(); got != otoPoll {
				t.Errorf("after the source ended, polls every %v, want %v", got, otoPoll)
			}
		})
	}
}

// playChildEnv tells a test binary started by BenchmarkPlay to do the
// playing, in the mode the variable names.
const playChildEnv = "DALABA_PLAY_BENCH_CHILD"

// BenchmarkPlay plays a 20 s alert through oto or a PulseStreamSink into a
// private PulseAudio server and reports the processor time of this process
// while it plays, as a percent of one core in real time (cpu-%), and its
// context switches per second (switches/s: each a wake-up of one of its
// threads): through oto, "pcm"
// decoded beforehand (the output alone), "mp3" decoded as it plays (the
// whole audio path of a terminal), "stream-pcm" and "stream-mp3" the same
// through PulseStreamSink (50 ms asked for 20 ms at a time); and 20 s with
// nothing playing after a short play: "oto-idle" with the oto sink
// suspended, "oto-awake" with it left awake, "stream-idle" with a
// PulseStreamSink suspended (a waiting terminal's output). Each play runs
// in a child process (oto allows one output per process; see package
// pulsetest).
//
//	go test -run '^$' -bench Play -benchtime 3x ./audio
func BenchmarkPlay(b *testing.B) {
	if mode := os.Getenv(playChildEnv); mode != "" {
		playChild(b, mode)
		return
	}
	pulse := pulsetest.Start(b)
	for _, mode := range []string{"pcm", "mp3", "stream-pcm", "stream-mp3", "oto-idle", "oto-awake", "stream-idle"} {
		b.Run(mode, func(b *testing.B) {
			var cpus, switches []float64
			for range b.N {
				cmd := exec.Command(os.Args[0], "-test.run=^$", "-test.bench=^BenchmarkPlay$", "-test.benchtime=1x")
				cmd.Env = append(os.Environ(), append(pulse.Env(), playChildEnv+"="+mode)...)
				out, err := cmd.CombinedOutput()
				m := regexp.MustCompile(`play-cpu-% ([0-9.]+) switches/s ([0-9.]+)`).FindSubmatch(out)
				if err != nil || m == nil {
					b.Fatalf("child: %v\n%s", err, out)
				}
				cpu, _ := strconv.ParseFloat(string(m[1]), 64)
				sw, _ := strconv.ParseFloat(string(m[2]), 64)
				cpus, switches = append(cpus, cpu), append(switches, sw)
			}
			slices.Sort(cpus)
			slices.Sort(switches)
			b.ReportMetric(0, "ns/op")
			b.ReportMetric(cpus[len(cpus)/2], "cpu-%")
			b.ReportMetric(switches[len(switches)/2], "switches/s")
		})
	}
}

// playChild is the playing part of BenchmarkPlay.
func playChild(b *testing.B, mode string) {
	data := bytes.Repeat(readFixture(b, "tone1k_mono_44k1_notag.mp3"), 20)
	var sink Sink
	var err error
	switch {
	case strings.HasPrefix(mode, "stream-"):
		sink, err = NewPulseStreamSink(48000)
	default:
		sink, err = NewOtoSink(48000)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer sink.Close()
	if strings.HasSuffix(mode, "-idle") || mode == "oto-awake" {
		// As in a terminal: the output has played and stays open.
		if err := sink.Play(context.Background(), bytes.NewReader(make([]byte, 4800*frameBytes))); err != nil {
			b.Fatal(err)
		}
		if o, ok := sink.(interface{ Suspend() error }); ok && mode != "oto-awake" {
			if err := o.Suspend(); err != nil {
				b.Fatal(err)
			}
		}
		before := takeUsage(b)
		time.Sleep(20 * time.Second)
		before.report(b)
		return
	}
	pcm, err := Decode(bytes.NewReader(data), "mp3", 48000, 80)
	if err != nil {
		b.Fatal(err)
	}
	if mode != "mp3" {
		all, err := io.ReadAll(pcm)
		if err != nil {
			b.Fatal(err)
		}
		pcm = bytes.NewReader(all)
	}
	before := takeUsage(b)
	if err := sink.Play(context.Background(), pcm); err != nil {
		b.Fatal(err)
	}
	before.report(b)
}

// usage is this process's processor time and context switches (voluntary
// and not: each is a wake-up of one of its threads) at an instant.
type usage struct {
	at       time.Time
	cpu      time.Duration
	switches int64
}

func takeUsage(tb testing.TB) usage {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return usage{time.Now(), time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), ru.Nvcsw + ru.Nivcsw}
}

// report prints the processor time since u as a percent of one core in
// real time, and the context switches per second, for BenchmarkPlay.
func (u usage) report(tb testing.TB) {
	now := takeUsage(tb)
	secs := now.at.Sub(u.at).Seconds()
	fmt.Printf("play-cpu-%% %.3f switches/s %.1f\n", (now.cpu-u.cpu).Seconds()/secs*100, float64(now.switches-u.switches)/secs)
}
