package protocol

import (
	"crypto/ed25519"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

// testMedia is a media description whose hashes are made of c.
func testMedia(c byte) Media {
	h := strings.Repeat(string(rune(c)), 64)
	return Media{SHA256: h, Size: 1000, Format: "mp3", DurationMS: 2000, ChunkSize: DefaultChunkSize, Chunks: []string{h}}
}

// testSchedule is a schedule command: two programs over three days, one
// of them twice a day, sharing one media file.
func testSchedule() *Command {
	a, b := testMedia('a'), testMedia('b')
	item := func(prog string, start time.Time, media ...string) ScheduleItem {
		return ScheduleItem{ID: prog + "@" + start.Format(time.RFC3339), ProgramID: prog, Title: "早间新闻", Start: start,
			Latest: start.Add(10 * time.Minute), Priority: PriorityProgram, Repeat: 1, MediaIDs: media}
	}
	return &Command{
		ID: "fedcba9876543210fedcba9876543210", Kind: KindSchedule,
		IssuedAt: t0, NotBefore: t0.Add(-time.Minute), Expires: t0.Add(72 * time.Hour),
		Targets: Targets{Terminals: []string{"64502241020030000000001"}},
		Schedule: &Schedule{Version: 3, From: t0, Until: t0.Add(72 * time.Hour), Media: []Media{a, b}, Items: []ScheduleItem{
			item("morning", t0.Add(time.Hour), a.SHA256, b.SHA256),
			item("noon", t0.Add(5*time.Hour), b.SHA256),
			item("morning", t0.Add(25*time.Hour), a.SHA256, b.SHA256),
		}},
	}
}

func TestScheduleValidate(t *testing.T) {
	cases := []struct {
		name   string
		mutate func(s *Schedule)
		want   string // in the error; "" valid
	}{
		{"valid", func(s *Schedule) {}, ""},
		{"media not in the table", func(s *Schedule) { s.Items[1].MediaIDs = []string{testMedia('c').SHA256} }, "is not in the schedule's media"},
		{"unused media", func(s *Schedule) { s.Media = append(s.Media, testMedia('c')) }, "no item plays it"},
		{"media listed twice", func(s *Schedule) { s.Media = append(s.Media, s.Media[0]) }, "listed twice"},
		{"bad media in the table", func(s *Schedule) { s.Media[0].Chunks = nil }, "schedule media 0"},
		{"item without media", func(s *Schedule) { s.Items[0].MediaIDs = nil }, "0 media, want 1.."},
		{"item with too many media", func(s *Schedule) {
			for len(s.Items[0].MediaIDs) <= MaxItemMedia {
				s.Items[0].MediaIDs = append(s.Items[0].MediaIDs, s.Media[0].SHA256)
			}
		}, "17 media"},
		{"too many media", func(s *Schedule) {
			for i := range MaxScheduleMedia + 1 {
				m := testMedia('a')
				m.SHA256 = strings.Repeat("0", 60) + string("0123456789abcdef"[i>>12&15]) + string("0123456789abcdef"[i>>8&15]) +
					string("0123456789abcdef"[i>>4&15]) + string("0123456789abcdef"[i&15])
				s.Media = append(s.Media, m)
			}
		}, "at most 256"},
		{"item id repeated", func(s *Schedule) { s.Items[2].ID = s.Items[0].ID }, "id repeated"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			cmd := testSchedule()
			c.mutate(cmd.Schedule)
			err := cmd.Validate()
			switch {
			case c.want == "" && err != nil:
				t.Fatalf("valid schedule refused: %v", err)
			case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
				t.Fatalf("error %v, want one saying %q", err, c.want)
			}
		})
	}
}

// TestScheduleResolve: items get their media from the table, in their
// order, and the resolved media does not travel.
func TestScheduleResolve(t *testing.T) {
	cmd := testSchedule()
	sc, err := Sign(cmd, ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize)))
	if err != nil {
		t.Fatal(err)
	}
	var back Command
	if err := json.Unmarshal(sc.Payload, &back); err != nil {
		t.Fatal(err)
	}
	s := back.Schedule
	s.Resolve()
	if got := s.Items[0].Media; len(got) != 2 || got[0].SHA256 != s.Media[0].SHA256 || got[1].SHA256 != s.Media[1].SHA256 {
		t.Fatalf("item 0 resolved to %v", got)
	}
	if n := strings.Count(string(sc.Payload), `"chunks"`); n != len(cmd.Schedule.Media) {
		t.Fatalf("media described %d times in the signed bytes, want once each (%d)", n, len(cmd.Schedule.Media))
	}
}

// vectorOf is the signature test vector of c signed by key.
func vectorOf(name string, key ed25519.PrivateKey, c *Command) vector {
	payload, _ := json.Marshal(c)
	sc := SignBytes(payload, key)
	return vector{Name: name, Seed: key.Seed(), PublicKey: key.Public().(ed25519.PublicKey), KeyID: sc.KeyID,
		Payload: string(payload), Signed: append([]byte(commandContext), payload...), Signature: sc.Sig}
}
