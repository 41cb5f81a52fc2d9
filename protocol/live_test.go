package protocol

import (
	"bytes"
	"errors"
	"strings"
	"testing"
	"time"
)

func testLive() *Live {
	return &Live{
		SessionID: strings.Repeat("ab", 32), StreamKey: strings.Repeat("cd", 32), Format: LiveFormat, MaxSeconds: 600,
		EBMID: "44502240000000000000001202611260001", Class: ClassDaily, Title: "村委会通知",
	}
}

func TestLiveFrames(t *testing.T) {
	l := testLive()
	v, err := NewLiveVerifier(l)
	if err != nil {
		t.Fatal(err)
	}
	key := bytes.Repeat([]byte{0xcd}, 32)
	session := v.Session()
	other := session
	other[0] ^= 1
	pcm := bytes.Repeat([]byte{1, 2}, LiveFrameBytes/2)

	good := EncodeLiveFrame(session, key, 1, pcm)
	if len(good) != MediaChunkHeader+len(pcm)+LiveMACSize {
		t.Fatalf("frame of %d bytes", len(good))
	}
	// The frame is a media chunk to anyone who does not know the session.
	if sum, off, _, err := DecodeMediaChunk(good); err != nil || sum != session || off != 1 {
		t.Fatalf("media chunk view: %x %d %v", sum, off, err)
	}
	tampered := bytes.Clone(good)
	tampered[MediaChunkHeader+3] ^= 0x40
	wrongKey := EncodeLiveFrame(session, bytes.Repeat([]byte{0xce}, 32), 2, pcm)
	resequenced := bytes.Clone(EncodeLiveFrame(session, key, 2, pcm))
	resequenced[39] = 9 // seq 9 under the MAC of seq 2

	cases := []struct {
		name string
		msg  []byte
		want error
		end  bool
	}{
		{"first frame", good, nil, false},
		{"replayed frame", good, ErrLiveReplay, false},
		{"tampered PCM", tampered, ErrLiveMAC, false},
		{"wrong stream key", wrongKey, ErrLiveMAC, false},
		{"sequence changed under the MAC", resequenced, ErrLiveMAC, false},
		{"other session", EncodeLiveFrame(other, key, 3, pcm), ErrLiveSession, false},
		{"too short", good[:MediaChunkHeader+10], ErrLiveFrame, false},
		{"odd PCM length", EncodeLiveFrame(session, key, 3, pcm[:5]), ErrLiveFrame, false},
		{"too much PCM", EncodeLiveFrame(session, key, 3, make([]byte, LiveMaxPCM+2)), ErrLiveFrame, false},
		{"next frame after a gap", EncodeLiveFrame(session, key, 5, pcm), nil, false},
		{"older frame", EncodeLiveFrame(session, key, 4, pcm), ErrLiveReplay, false},
		{"end frame with PCM", EncodeLiveFrame(session, key, LiveEndSeq, pcm), ErrLiveFrame, false},
		{"end frame", EncodeLiveFrame(session, key, LiveEndSeq, nil), nil, true},
		{"frame after the end", EncodeLiveFrame(session, key, 6, pcm), ErrLiveReplay, false},
	}
	for _, c := range cases {
		got, end, err := v.Open(c.msg)
		switch {
		case c.want == nil && err != nil:
			t.Errorf("%s: %v", c.name, err)
		case c.want != nil && !errors.Is(err, c.want):
			t.Errorf("%s: error %v, want %v", c.name, err, c.want)
		case end != c.end:
			t.Errorf("%s: end %v, want %v", c.name, end, c.end)
		case c.want == nil && !c.end && !bytes.Equal(got, pcm):
			t.Errorf("%s: PCM not returned intact", c.name)
		}
	}
}

func TestLiveCommandValidate(t *testing.T) {
	base := func() *Command {
		return &Command{ID: "0123456789abcdef0123456789abcdef", Kind: KindLive, IssuedAt: t0, NotBefore: t0.Add(-time.Minute),
			Expires: t0.Add(11 * time.Minute), Targets: Targets{Areas: []string{"450224102001"}}, Live: testLive()}
	}
	if err := base().Validate(); err != nil {
		t.Fatalf("valid live command: %v", err)
	}
	cases := []struct {
		name   string
		change func(c *Command)
		want   string
	}{
		{"short session id", func(c *Command) { c.Live.SessionID = "abcd" }, "session_id"},
		{"upper-case key", func(c *Command) { c.Live.StreamKey = strings.Repeat("CD", 32) }, "stream_key"},
		{"other format", func(c *Command) { c.Live.Format = "s16le/48000/2" }, "format"},
		{"no time limit", func(c *Command) { c.Live.MaxSeconds = 0 }, "max_seconds"},
		{"bad EBM id", func(c *Command) { c.Live.EBMID = "1" }, "EBM"},
		{"unknown class", func(c *Command) { c.Live.Class = "party" }, "class"},
		{"emergency without level", func(c *Command) { c.Live.Class = ClassEmergency }, "level"},
		{"loud", func(c *Command) { c.Live.Volume = 101 }, "volume"},
		{"second body", func(c *Command) { c.Cancel = &Cancel{EBMID: c.Live.EBMID} }, "exactly one body"},
		{"kind mismatch", func(c *Command) { c.Kind = KindAlert }, "does not match"},
	}
	for _, tc := range cases {
		c := base()
		tc.change(c)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: error %v, want one naming %q", tc.name, err, tc.want)
		}
	}
}

func TestLivePriority(t *testing.T) {
	l := testLive()
	if p := LivePriority(l); p != PriorityLive {
		t.Fatalf("daily live priority %d", p)
	}
	l.Class, l.Level = ClassEmergency, 2
	if p := LivePriority(l); p != PriorityEmergency2 {
		t.Fatalf("emergency level 2 live priority %d", p)
	}
	if a := l.Alert(); a.Priority != PriorityEmergency2 || a.EBMID != l.EBMID || len(a.Media) != 0 {
		t.Fatalf("alert view %+v", a)
	}
}
