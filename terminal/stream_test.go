package terminal

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// TestStreamReaderReadsOnlyVerified reads a stream while it is fetched:
// the reader gets the verified bytes and waits for more, and when the
// fetch fails it returns the error, never a byte past the verified ones.
func TestStreamReaderReadsOnlyVerified(t *testing.T) {
	dir := t.TempDir()
	f, err := os.Create(dir + "/partial")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := []byte(strings.Repeat("v", 10) + strings.Repeat("x", 10)) // 10 verified, 10 not
	f.Write(data)
	st := newStream(protocol.Media{SHA256: strings.Repeat("0", 64), Size: 30, ChunkSize: 10, DurationMS: 60000}, nil)
	if st.canStart() {
		t.Fatal("can start before any chunk is verified")
	}
	st.progress(f.Name(), 10)
	if !st.canStart() {
		t.Fatal("cannot start after the first chunk is verified")
	}
	r := newStreamReader(context.Background(), st, nil)
	defer r.Close()
	if n, _ := r.Seek(0, io.SeekEnd); n != 30 {
		t.Fatalf("size %d, want the signed 30", n)
	}
	r.Seek(0, io.SeekStart)
	got := make(chan []byte)
	fail := make(chan error, 1)
	go func() {
		b, err := io.ReadAll(r)
		fail <- err
		got <- b
	}()
	time.Sleep(50 * time.Millisecond) // let it block at the verified end
	bad := errors.New("chunk 1 has sha256 ..., want ...")
	st.finish(bad)
	if err := <-fail; !errors.Is(err, bad) {
		t.Fatalf("read ended with %v, want the chunk error", err)
	}
	if b := <-got; string(b) != strings.Repeat("v", 10) {
		t.Fatalf("read %q, want only the 10 verified bytes", b)
	}
}

// TestStreamStartsOnTheFirstPiece: a file cut into pieces from a small
// first one up to the chunk size may start once that first piece is
// verified, not a whole chunk.
func TestStreamStartsOnTheFirstPiece(t *testing.T) {
	m := protocol.Media{SHA256: strings.Repeat("0", 64), Size: 200 << 10, ChunkSize: 64 << 10, FirstChunk: 16 << 10, DurationMS: 25000}
	st := newStream(m, nil)
	st.progress("partial", 16<<10-1)
	if st.canStart() {
		t.Fatal("can start before the first piece is verified")
	}
	st.progress("partial", 16<<10)
	if !st.canStart() {
		t.Fatal("cannot start once the first 16 KiB piece is verified")
	}
}

// TestShortMediaStartsWhole: a file shorter than streamMinDuration is
// fetched whole before it plays.
func TestShortMediaStartsWhole(t *testing.T) {
	st := newStream(protocol.Media{SHA256: strings.Repeat("0", 64), Size: 30, ChunkSize: 10, DurationMS: 4000}, nil)
	st.progress("partial", 20)
	if st.canStart() {
		t.Fatal("a 4 s file can start before it is complete")
	}
	st.finish(nil)
	if !st.canStart() {
		t.Fatal("a complete file cannot start")
	}
}

// TestStreamingStartAndBadChunkMidFile plays an alert before its media has
// arrived: the "playing" receipt comes while a later chunk is still held
// back by the controller; that chunk then fails its hash, which stops the
// playback, fails the alert for its media, raises the media fault, and
// leaves nothing in the cache. What was heard is only the verified part.
func TestStreamingStartAndBadChunkMidFile(t *testing.T) {
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	m := tone(ctl, 6*time.Second) // 16 kHz mono WAV: 47 chunks of 4096 bytes
	const bad = 8
	open := make(chan struct{})
	ctl.set(func(c *fakeController) { c.corrupt[m.SHA256] = bad; c.gate[m.SHA256] = gate{chunk: bad, open: open} })
	cmd := ctl.alert([]protocol.Media{m}, nil)
	ctl.send(ctl.sign(cmd))

	ctl.waitState(cmd.ID, protocol.DeliveryPlaying) // with chunks 8.. not yet sent
	ctl.mu.Lock()
	if len(ctl.gets) != 1 || !ctl.gets[0].Stream {
		t.Errorf("media requests %+v, want one that says it streams (plays as the file comes)", ctl.gets)
	}
	ctl.mu.Unlock()
	eventually(t, "relay ON", func() bool { return r.term.Status().RelayOn })
	eventually(t, "some of the verified audio heard", func() bool { // before the bad chunk can stop it
		for _, name := range r.wavs() {
			if fi, err := os.Stat(name); err == nil && fi.Size() > 44+3200 {
				return true
			}
		}
		return false
	})
	close(open)

	rc := ctl.waitState(cmd.ID, protocol.DeliveryFailed)
	if rc.Reason != "media" || !strings.Contains(rc.Detail, "chunk 8 ") {
		t.Fatalf("failed with reason %q (%s), want media, caught at chunk %d", rc.Reason, rc.Detail, bad)
	}
	if f := ctl.faults(protocol.FaultMedia); len(f) != 1 || !f[0].Active {
		t.Fatalf("media faults %+v, want one raised", f)
	}
	eventually(t, "relay OFF", func() bool { return !r.term.Status().RelayOn })
	if _, ok := r.term.cache.Path(cacheKey(m)); ok {
		t.Fatal("damaged media entered the cache")
	}
	// 8 verified chunks hold 32768 bytes: the 44-byte header and 1.02 s of
	// 16-bit mono audio at 16 kHz. Nothing past them may have sounded.
	verified := time.Duration(bad*4096-44) * time.Second / (2 * 16000)
	if heard := r.playedTone(toneFreq); heard > verified+20*time.Millisecond {
		t.Fatalf("heard %s of the tone, more than the %s verified", heard, verified)
	}
}

// TestHoldStreamPausesForMissingBytes: the fleet simulator's silent sink
// plays a streamed file as a decoder would, at the audio's pace, and waits
// (a pause a listener would hear, counted) when it reaches bytes not yet
// verified; bytes that come in time make no pause.
func TestHoldStreamPausesForMissingBytes(t *testing.T) {
	m := protocol.Media{SHA256: strings.Repeat("0", 64), Size: 1000, ChunkSize: 250, DurationMS: 600}
	for _, tc := range []struct {
		name  string
		late  time.Duration // when the rest of the file is verified
		pause bool
	}{{"in time", 50 * time.Millisecond, false}, {"late", 400 * time.Millisecond, true}} {
		t.Run(tc.name, func(t *testing.T) {
			st := newStream(m, nil)
			st.progress("partial", 250) // the first 150 ms of audio
			go func() {
				time.Sleep(tc.late)
				st.progress("partial", 1000)
			}()
			begin := time.Now()
			if err := holdStream(context.Background(), audio.NewHoldSink(8000), st, 0, 600*time.Millisecond); err != nil {
				t.Fatal(err)
			}
			took, paused := time.Since(begin), st.takePaused()
			if tc.pause != (paused > 0) {
				t.Fatalf("the rest verified %s in: paused %s", tc.late, paused)
			}
			if min := 600*time.Millisecond + paused; took < min {
				t.Fatalf("held %s, less than the audio and its pause (%s)", took, min)
			}
			if tc.pause && paused < tc.late-150*time.Millisecond-20*time.Millisecond {
				t.Fatalf("paused %s for bytes that came %s after the first 150 ms of audio", paused, tc.late)
			}
			if st.takePaused() != 0 {
				t.Fatal("takePaused did not reset the count")
			}
		})
	}
}

// TestMP3AlertSoundsBeforeItsFileIsWhole: an alert's MP3 of 5 s or more
// sounds from its first verified chunks, while the rest has not come: its
// media request says it streams, "playing" is reported with a later chunk
// held back, and once that comes the whole alert plays; that chunk came
// late, and the "done" receipt says the audio paused.
func TestMP3AlertSoundsBeforeItsFileIsWhole(t *testing.T) {
	one, err := os.ReadFile("../audio/testdata/tone1k_mono_44k1_notag.mp3") // 1.04 s, no tags
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat(one, 6)
	info, err := audio.Probe(data)
	if err != nil {
		t.Fatal(err)
	}
	ctl := newFakeController(t)
	r := newRig(t, ctl)
	r.start()
	m := ctl.addMedia(data, 4096)
	m.Format, m.DurationMS = "mp3", info.Duration.Milliseconds()
	held := len(m.Chunks) / 2
	open := make(chan struct{})
	ctl.set(func(c *fakeController) { c.gate[m.SHA256] = gate{chunk: held, open: open} })
	cmd := ctl.alert([]protocol.Media{m}, nil)
	ctl.send(ctl.sign(cmd))

	ctl.waitState(cmd.ID, protocol.DeliveryPlaying) // with chunk held and those after it not yet sent
	ctl.mu.Lock()
	if len(ctl.gets) != 1 || !ctl.gets[0].Stream {
		t.Errorf("media requests %+v, want one that says it streams", ctl.gets)
	}
	ctl.mu.Unlock()
	// The held chunk comes only after its audio was due: the sound pauses,
	// and the receipt says so.
	time.Sleep(time.Duration(held*4096) * time.Duration(m.DurationMS) * time.Millisecond / time.Duration(m.Size) * 3 / 2)
	close(open)
	rc := ctl.waitState(cmd.ID, protocol.DeliveryDone)
	if rc.Reason != "" || !strings.Contains(rc.Detail, "the audio paused") {
		t.Fatalf("done with reason %q and detail %q, want none and a pause", rc.Reason, rc.Detail)
	}
}
