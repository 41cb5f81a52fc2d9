package protocol

import (
	"bytes"
	"strconv"
	"time"
)

// fieldReader reads a JSON object of known fields in a known order; bad is
// set at the first byte that is not as expected, and then stays set.
type fieldReader struct {
	b   []byte
	bad bool
}

func (r *fieldReader) next(name string) bool { return !r.bad && bytes.HasPrefix(r.b, []byte(name)) }

func (r *fieldReader) lit(s string) {
	if !r.next(s) {
		r.bad = true
		return
	}
	r.b = r.b[len(s):]
}

// quoted reads a plain string, quotes included.
func (r *fieldReader) quoted() []byte {
	if r.bad || len(r.b) == 0 || r.b[0] != '"' {
		r.bad = true
		return nil
	}
	for i := 1; i < len(r.b); i++ {
		switch c := r.b[i]; {
		case c == '"':
			q := r.b[:i+1]
			r.b = r.b[i+1:]
			return q
		case c < 0x20 || c > 0x7e || c == '\\':
			r.bad = true
			return nil
		}
	}
	r.bad = true
	return nil
}

func (r *fieldReader) str(name string) string {
	r.lit(name)
	q := r.quoted()
	if q == nil {
		return ""
	}
	return string(q[1 : len(q)-1])
}

// int reads an integer as JSON writes one: an optional minus and digits
// without a leading zero, no fraction or exponent, within bits.
func (r *fieldReader) int(name string, bits int) int64 {
	r.lit(name)
	n := r.integer(true)
	v, err := strconv.ParseInt(string(r.b[:n]), 10, bits)
	if n == 0 || err != nil {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// uint reads an unsigned integer as JSON writes one: digits without a
// leading zero, within 64 bits.
func (r *fieldReader) uint(name string) uint64 {
	r.lit(name)
	n := r.integer(false)
	v, err := strconv.ParseUint(string(r.b[:n]), 10, 64)
	if n == 0 || err != nil {
		r.bad = true
		return 0
	}
	r.b = r.b[n:]
	return v
}

// integer returns the length of the integer r.b begins with, as JSON
// writes one (a minus only when signed); 0 when it begins with none, or
// when bad is set.
func (r *fieldReader) integer(signed bool) int {
	if r.bad {
		return 0
	}
	n := 0
	if signed && n < len(r.b) && r.b[n] == '-' {
		n++
	}
	digits := n
	for n < len(r.b) && r.b[n] >= '0' && r.b[n] <= '9' {
		n++
	}
	if n == digits || r.b[digits] == '0' && n > digits+1 {
		return 0
	}
	return n
}

// time reads a time as time.Time's MarshalJSON writes one.
func (r *fieldReader) time(name string) time.Time {
	r.lit(name)
	var t time.Time
	if q := r.quoted(); q != nil && t.UnmarshalJSON(q) != nil {
		r.bad = true
	}
	return t
}

// optStr reads a string field json.Marshal leaves out when it is empty
// (omitempty); an empty one written anyway is read too.
func (r *fieldReader) optStr(name string) string {
	if !r.next(name) {
		return ""
	}
	return r.str(name)
}

func (r *fieldReader) bool(name string) bool {
	r.lit(name)
	switch {
	case r.next("true"):
		r.b = r.b[4:]
		return true
	case r.next("false"):
		r.b = r.b[5:]
	default:
		r.bad = true
	}
	return false
}
