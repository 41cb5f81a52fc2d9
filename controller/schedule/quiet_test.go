package schedule

import (
	"testing"
	"time"
)

func TestQuietHours(t *testing.T) {
	sh := mustLoad(t, "Asia/Shanghai")
	at := func(hm string) time.Time {
		c := clocks(hm)[0]
		return At(d("2026-12-01"), c, sh)
	}
	cases := []struct {
		spec string
		in   []string
		out  []string
	}{
		{"22:00-06:00", []string{"22:00", "23:59", "00:00", "03:00", "05:59"}, []string{"21:59", "06:00", "12:00"}},
		{"12:00-13:30", []string{"12:00", "13:29"}, []string{"11:59", "13:30", "23:00", "00:00"}},
		{"", nil, []string{"00:00", "12:00", "23:59"}},
	}
	for _, tc := range cases {
		t.Run(tc.spec, func(t *testing.T) {
			q, err := ParseQuietHours(tc.spec)
			if err != nil {
				t.Fatal(err)
			}
			if q.String() != tc.spec || q.IsZero() != (tc.spec == "") {
				t.Errorf("String() = %q, IsZero() = %v", q.String(), q.IsZero())
			}
			for _, hm := range tc.in {
				if !q.Contains(at(hm), sh) {
					t.Errorf("%s is not inside %s", hm, tc.spec)
				}
			}
			for _, hm := range tc.out {
				if q.Contains(at(hm), sh) {
					t.Errorf("%s is inside %s", hm, tc.spec)
				}
			}
		})
	}
	// The wall clock decides, whatever zone the instant is written in.
	q, _ := ParseQuietHours("22:00-06:00")
	if !q.Contains(time.Date(2026, 12, 1, 15, 0, 0, 0, time.UTC), sh) {
		t.Error("15:00 UTC is 23:00 in Shanghai, inside 22:00-06:00")
	}
	for _, bad := range []string{"22:00", "22:00-", "25:00-06:00", "06:00-06:00", "22-06"} {
		if _, err := ParseQuietHours(bad); err == nil {
			t.Errorf("ParseQuietHours(%q) accepted", bad)
		}
	}
}
