// Package spool is an append-only on-disk queue of records waiting to be sent
// upstream. A record is durable once Append returns; it stays until Ack covers
// its Seq, across link loss, process restarts and power cuts.
//
// Every frame carries a CRC-32C. On Open a torn tail (the partial last write
// of a power cut) is truncated away; damage followed by valid frames is
// reported as corruption at its offset rather than silently dropped, because
// each Append was fsynced before the next one began.
//
// A Spool is safe for concurrent use. Only one Spool may have a file open.
package spool

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"sort"
	"sync"

	"dalaba/internal/atomicfile"
)

// compactAckedBytes is how many bytes of acknowledged frames Ack tolerates
// before it rewrites the file while records are still pending.
const compactAckedBytes = 1 << 20

// compactIdleBytes is how large the file may grow before an Ack that leaves
// nothing pending rewrites it empty. Below it an Ack appends an ack frame
// (one small write, not synced) instead of a rewrite, a sync and two renames
// for every acknowledgement: a terminal reporting a few times a minute
// rewrites its spool about once an hour instead, and wears its SD card less.
const compactIdleBytes = 64 << 10

// Record is one spooled item.
type Record struct {
	Seq  uint64
	Data []byte
}

// Spool is an open spool file.
type Spool struct {
	path string

	mu           sync.Mutex
	tail         atomicfile.Tail // the file (F nil once closed) and its good end
	lastSeq      uint64          // highest Seq assigned, including failed appends
	acked        uint64          // highest Seq acknowledged
	pending      []Record        // Seq > acked, in Seq order
	pendingBytes int64           // on-disk size of the pending frames
}

// Open opens the spool at path, creating it if missing. It verifies every
// frame, truncates a torn tail and fails, naming the offset, on corruption
// that valid frames follow.
func Open(path string) (*Spool, error) {
	if err := os.Remove(tempPath(path)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("spool %s: remove leftover temp file: %w", path, err)
	}
	if _, err := os.Stat(path); errors.Is(err, os.ErrNotExist) {
		if err := atomicfile.Write(path, encodeHeader(0, 0), 0o600); err != nil {
			return nil, fmt.Errorf("spool %s: create: %w", path, err)
		}
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	s := &Spool{path: path, tail: atomicfile.Tail{F: f}}
	if err := s.load(); err != nil {
		f.Close()
		return nil, fmt.Errorf("spool %s: %w", path, err)
	}
	return s, nil
}

// load reads the whole file, rebuilds the in-memory state and truncates a
// torn tail.
func (s *Spool) load() error {
	buf, err := io.ReadAll(s.tail.F)
	if err != nil {
		return fmt.Errorf("read: %w", err)
	}
	if len(buf) == 0 { // created empty by someone else; nothing to lose
		buf = encodeHeader(0, 0)
		if _, err := s.tail.F.WriteAt(buf, 0); err != nil {
			return fmt.Errorf("write header: %w", err)
		}
	}
	if s.lastSeq, s.acked, err = decodeHeader(buf); err != nil {
		return err
	}
	var prev uint64 // Seq of the previous data frame
	off := int64(headerSize)
	for off < int64(len(buf)) {
		fr, err := decodeFrame(buf[off:])
		if err != nil {
			if next, ok := findFrame(buf, off+1, s.lastSeq); ok {
				return fmt.Errorf("corrupt record at offset %d (%v); a valid record follows at offset %d", off, err, next)
			}
			break // torn tail
		}
		switch {
		case fr.ack && fr.seq > s.lastSeq:
			return fmt.Errorf("corrupt record at offset %d: ack %d beyond last seq %d", off, fr.seq, s.lastSeq)
		case fr.ack:
			s.acked = max(s.acked, fr.seq)
		case fr.seq <= max(prev, s.acked):
			return fmt.Errorf("corrupt record at offset %d: seq %d not after %d", off, fr.seq, max(prev, s.acked))
		default:
			prev = fr.seq
			s.lastSeq = max(s.lastSeq, fr.seq)
			s.pending = append(s.pending, Record{Seq: fr.seq, Data: fr.data})
			s.pendingBytes += fr.size
		}
		off += fr.size
	}
	s.tail.End = off
	s.dropAcked()
	if off < int64(len(buf)) {
		if err := s.tail.F.Truncate(off); err != nil {
			return fmt.Errorf("truncate torn tail at offset %d: %w", off, err)
		}
	}
	if err := s.tail.F.Sync(); err != nil {
		return fmt.Errorf("sync: %w", err)
	}
	return nil
}

// Append durably adds data as a new record and returns its Seq. If the write
// or fsync fails (disk full, say) the file is cut back to its last good frame
// and the error is returned; earlier records are unaffected.
func (s *Spool) Append(data []byte) (uint64, error) {
	if len(data) > maxRecordSize {
		return 0, fmt.Errorf("spool %s: record of %d bytes exceeds limit of %d bytes", s.path, len(data), maxRecordSize)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tail.F == nil {
		return 0, fmt.Errorf("spool %s: append: spool is closed", s.path)
	}
	// A Seq is never reused, even if its write fails: a failed frame that
	// reached the disk anyway must not collide with its successor.
	s.lastSeq++
	seq := s.lastSeq
	fr := encodeFrame(seq, data, false)
	if err := s.tail.Append(fr); err != nil {
		return 0, fmt.Errorf("spool %s: append seq %d: %w", s.path, seq, err)
	}
	s.pending = append(s.pending, Record{Seq: seq, Data: append([]byte(nil), data...)})
	s.pendingBytes += int64(len(fr))
	return seq, nil
}

// Hold adds data as a new record kept in memory only, for when Append
// failed (the disk is full): it is sent like the others while the process
// runs, and written to the file if a compaction happens before it is
// acknowledged, but a restart before then loses it. It returns its Seq.
func (s *Spool) Hold(data []byte) uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.lastSeq++
	s.pending = append(s.pending, Record{Seq: s.lastSeq, Data: append([]byte(nil), data...)})
	s.pendingBytes += frameHeaderSize + int64(len(data))
	return s.lastSeq
}

// Pending returns the records not yet acknowledged whose Seq is above
// after, in Seq order. Their data are shared, not copied: a record's bytes
// never change once spooled, and the caller must not change them. (A
// sender asks only for what it has not sent: copying every pending record
// on each of its wake-ups was a tenth of a simulated terminal's garbage in
// a fan-out, while the controller held its acknowledgements.)
func (s *Spool) Pending(after uint64) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].Seq > after })
	return slices.Clone(s.pending[i:])
}

// Len is how many records are not yet acknowledged.
func (s *Spool) Len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.pending)
}

// ErrNotCompacted is returned by Ack when the acknowledgement was persisted
// but the file could not be rewritten without the acknowledged records (the
// disk is full, say): nothing is lost, the file only stays larger.
var ErrNotCompacted = errors.New("acknowledgement recorded, but the spool could not be compacted")

// ErrAckBeyond is returned by Ack for a Seq this spool never gave out.
var ErrAckBeyond = errors.New("acknowledged beyond the last seq")

// SkipTo makes the receiver's acknowledgement up to seq, beyond the last Seq
// this spool knows, the new floor: everything pending is done and the next
// Seq follows seq. That happens after a restart when records that were only
// held in memory (Hold) had been acknowledged: their Seqs must not be given
// out again. The floor lives in memory; the receiver repeats its
// acknowledgement on every connection.
func (s *Spool) SkipTo(seq uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if seq <= s.lastSeq {
		return
	}
	s.lastSeq, s.acked = seq, seq
	s.dropAcked()
}

// Ack marks every record with Seq <= upTo as done. The mark is written but
// not synced: one lost in a power cut sends its reports again, and the
// controller keeps each report once (docs/protocol.md, §5); a later
// Append's sync makes it durable. It compacts the
// file when nothing is left pending and the file has grown past
// compactIdleBytes, or acknowledged frames pass compactAckedBytes.
// If Ack returns an error after the acknowledgement was persisted (only
// compaction failed), Pending already reflects it.
func (s *Spool) Ack(upTo uint64) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tail.F == nil {
		return fmt.Errorf("spool %s: ack %d: spool is closed", s.path, upTo)
	}
	if upTo <= s.acked {
		return nil
	}
	if upTo > s.lastSeq {
		return fmt.Errorf("spool %s: ack %d: %w %d", s.path, upTo, ErrAckBeyond, s.lastSeq)
	}
	i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].Seq > upTo })
	var keepBytes int64
	for _, r := range s.pending[i:] {
		keepBytes += frameHeaderSize + int64(len(r.Data))
	}
	var cerr error
	if i == len(s.pending) && s.tail.End-headerSize >= compactIdleBytes || s.tail.End-headerSize-keepBytes >= compactAckedBytes {
		cerr = s.compact(upTo, s.pending[i:])
		if s.acked == upTo { // the compacted file is in place
			if cerr != nil {
				return fmt.Errorf("spool %s: ack %d: %w: %w", s.path, upTo, ErrNotCompacted, cerr)
			}
			return nil
		}
	}
	if err := s.tail.Write(encodeFrame(upTo, nil, true)); err != nil { // not synced: a lost ack sends its reports again
		return fmt.Errorf("spool %s: ack %d: %w", s.path, upTo, errors.Join(cerr, err))
	}
	s.acked = upTo
	s.dropAcked()
	if cerr != nil {
		return fmt.Errorf("spool %s: ack %d: %w: %w", s.path, upTo, ErrNotCompacted, cerr)
	}
	return nil
}

// dropAcked removes acknowledged records from s.pending.
func (s *Spool) dropAcked() {
	i := sort.Search(len(s.pending), func(i int) bool { return s.pending[i].Seq > s.acked })
	for _, r := range s.pending[:i] {
		s.pendingBytes -= frameHeaderSize + int64(len(r.Data))
	}
	s.pending = append([]Record(nil), s.pending[i:]...)
}

// Close closes the file. Records stay on disk for the next Open.
func (s *Spool) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.tail.F == nil {
		return nil
	}
	err := s.tail.F.Close()
	s.tail.F = nil
	if err != nil {
		return fmt.Errorf("spool %s: close: %w", s.path, err)
	}
	return nil
}
