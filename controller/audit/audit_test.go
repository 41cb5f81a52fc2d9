package audit

import (
	"errors"
	"testing"
	"time"
)

func chain(key []byte, n int) []Entry {
	var prev []byte
	var out []Entry
	for i := 1; i <= n; i++ {
		e := Entry{Seq: int64(i), At: time.UnixMilli(int64(1000 * i)), Actor: "officer1", Source: "10.0.0.5", Action: "alert.create", Target: "x"}
		e.Prev = prev
		e.Seal = Sealed(key, prev, e)
		prev = e.Seal
		out = append(out, e)
	}
	return out
}

func TestVerify(t *testing.T) {
	key := []byte("0123456789abcdef0123456789abcdef")
	cases := []struct {
		name    string
		mutate  func([]Entry) []Entry
		last    int64
		wantSeq int64
	}{
		{"intact", func(es []Entry) []Entry { return es }, 5, 0},
		{"edited actor", func(es []Entry) []Entry { es[2].Actor = "approver"; return es }, 5, 3},
		{"edited time", func(es []Entry) []Entry { es[1].At = es[1].At.Add(time.Second); return es }, 5, 2},
		{"deleted middle row", func(es []Entry) []Entry { return append(es[:2], es[3:]...) }, 5, 4},
		{"deleted last row", func(es []Entry) []Entry { return es[:4] }, 5, 5},
		{"resealed without the key", func(es []Entry) []Entry {
			es[3].Detail = "hidden"
			es[3].Seal = Sealed([]byte("guess"), es[3].Prev, es[3])
			return es
		}, 5, 4},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := NewVerifier(key)
			var err error
			for _, e := range c.mutate(chain(key, 5)) {
				if err = v.Check(e); err != nil {
					break
				}
			}
			if err == nil {
				err = v.Head(c.last)
			}
			var p *Problem
			if c.wantSeq == 0 {
				if err != nil {
					t.Fatalf("intact chain: %v", err)
				}
				return
			}
			if !errors.As(err, &p) || p.Seq != c.wantSeq {
				t.Fatalf("got %v, want a problem at entry %d", err, c.wantSeq)
			}
		})
	}
}
