package spool

import (
	"bufio"
	"fmt"
	"os"
)

// tempPath is where a replacement spool file is built before the rename.
func tempPath(path string) string { return path + ".tmp" }

// compact rewrites the file to hold only keep, with acked recorded in the
// header, and switches s to the new file. If the rename did not happen s is
// unchanged; once it has, s.acked is acked even if an error is returned.
func (s *Spool) compact(acked uint64, keep []Record) error {
	tmp := tempPath(s.path)
	f, err := os.OpenFile(tmp, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("compact: %w", err)
	}
	end, err := writeCompacted(f, s.lastSeq, acked, keep)
	if err == nil {
		err = os.Rename(tmp, s.path)
	}
	if err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("compact: %w", err)
	}
	// The name now points at the new file, so use it whatever happens next.
	serr := s.tail.Replace(f, end)
	s.acked = acked
	s.dropAcked()
	if serr != nil {
		return fmt.Errorf("compact: %w", serr)
	}
	return nil
}

// writeCompacted writes a header and keep's frames to f and fsyncs it.
func writeCompacted(f *os.File, lastSeq, acked uint64, keep []Record) (int64, error) {
	w := bufio.NewWriter(f)
	n, _ := w.Write(encodeHeader(lastSeq, acked))
	end := int64(n)
	for _, r := range keep {
		n, _ = w.Write(encodeFrame(r.Seq, r.Data, false))
		end += int64(n)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("write %s: %w", f.Name(), err)
	}
	if err := f.Sync(); err != nil {
		return 0, fmt.Errorf("sync %s: %w", f.Name(), err)
	}
	return end, nil
}
