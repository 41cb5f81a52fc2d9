package audio

import (
	"errors"
	"fmt"
	"io"
	"strings"

	mp3 "dalaba/third_party/go-mp3"
)

// mp3Stream is go-mp3's decoder made safe for untrusted files: its panics
// on corrupt data become errors. It yields interleaved s16le stereo (mono
// files are duplicated by the decoder).
type mp3Stream struct{ dec *mp3.Decoder }

// mp3Error is a decoder failure, worded for people.
type mp3Error struct{ err error }

func (e mp3Error) Error() string {
	return "MP3: corrupt audio data: " + strings.TrimPrefix(e.err.Error(), "mp3: ")
}
func (e mp3Error) Unwrap() error { return e.err }

// newMP3Decoder starts decoding r, which must hold only MPEG frames (no
// ID3v2 tag: go-mp3 would allocate the size the tag declares).
func newMP3Decoder(r io.Reader) (s *mp3Stream, err error) {
	defer func() {
		if p := recover(); p != nil {
			s, err = nil, mp3Error{fmt.Errorf("decoder failed: %v", p)}
		}
	}()
	d, err := mp3.NewDecoder(r)
	if err != nil {
		return nil, mp3Error{err}
	}
	return &mp3Stream{dec: d}, nil
}

// Read implements io.Reader.
func (s *mp3Stream) Read(p []byte) (n int, err error) {
	defer func() {
		if r := recover(); r != nil {
			n, err = 0, mp3Error{fmt.Errorf("decoder failed: %v", r)}
		}
	}()
	n, err = s.dec.Read(p)
	if err != nil && !errors.Is(err, io.EOF) {
		err = mp3Error{err}
	}
	return n, err
}

// trimReader drops the first skip bytes of r and holds back its last tail
// bytes, which it drops at the end: it never reads further ahead than tail
// and what it returns.
type trimReader struct {
	r          io.Reader
	skip, tail int64
	pend       []byte // read, not returned
	eof        error  // r's end, once met
}

// Read implements io.Reader.
func (t *trimReader) Read(p []byte) (int, error) {
	if t.skip > 0 {
		n, err := io.CopyN(io.Discard, t.r, t.skip)
		t.skip -= n
		if err != nil {
			return 0, err
		}
	}
	if t.tail == 0 && len(t.pend) == 0 {
		return t.r.Read(p)
	}
	for int64(len(t.pend)) <= t.tail && t.eof == nil {
		if cap(t.pend)-len(t.pend) < 4096 {
			t.pend = append(make([]byte, 0, 2*cap(t.pend)+int(t.tail)+4096), t.pend...)
		}
		n, err := t.r.Read(t.pend[len(t.pend):cap(t.pend)])
		t.pend = t.pend[:len(t.pend)+n]
		if err != nil {
			t.eof = err
		}
	}
	out := int64(len(t.pend)) - t.tail
	if out <= 0 {
		return 0, t.eof
	}
	n := copy(p, t.pend[:out])
	t.pend = t.pend[:copy(t.pend, t.pend[n:])]
	return n, nil
}

// section is the byte range [start, start+size) of a ReadSeeker, itself a
// ReadSeeker. It assumes nobody else moves the underlying reader.
type section struct {
	r           io.ReadSeeker
	start, size int64
	pos         int64
}

// newSection returns the given range of r, positioned at its start.
func newSection(r io.ReadSeeker, start, end int64) (*section, error) {
	if _, err := r.Seek(start, io.SeekStart); err != nil {
		return nil, fmt.Errorf("seek to byte %d: %w", start, err)
	}
	return &section{r: r, start: start, size: end - start}, nil
}

// Read implements io.Reader.
func (s *section) Read(p []byte) (int, error) {
	if s.pos >= s.size {
		return 0, io.EOF
	}
	if int64(len(p)) > s.size-s.pos {
		p = p[:s.size-s.pos]
	}
	n, err := s.r.Read(p)
	s.pos += int64(n)
	return n, err
}

// Seek implements io.Seeker.
func (s *section) Seek(offset int64, whence int) (int64, error) {
	switch whence {
	case io.SeekCurrent:
		offset += s.pos
	case io.SeekEnd:
		offset += s.size
	}
	if offset < 0 {
		return 0, errors.New("seek before start of section")
	}
	if _, err := s.r.Seek(s.start+offset, io.SeekStart); err != nil {
		return 0, err
	}
	s.pos = offset
	return offset, nil
}
