// Package atomicfile writes files so that a crash or power cut leaves either
// the old contents or the new, never a mix: whole files are replaced by a
// synced temporary file renamed over them, and append-only files grow by
// synced appends that are cut back when a write fails.
package atomicfile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with data: a temporary file in the same folder is
// written, synced and renamed over path, then the folder is synced so the
// rename survives a power cut.
func Write(path string, data []byte, perm os.FileMode) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp*")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // a no-op after the rename
	err = f.Chmod(perm)
	if err == nil {
		_, err = f.Write(data)
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err == nil {
		err = SyncDir(path)
	}
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// SyncDir syncs the folder holding path, so a rename in it is durable.
func SyncDir(path string) error {
	d, err := os.Open(filepath.Dir(path))
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("sync folder %s: %w", d.Name(), err)
	}
	return nil
}

// Tail is the good end of an append-only file. Append writes at End and
// syncs; when that fails it cuts the file back to End, so the file stays
// valid and a later append starts clean.
type Tail struct {
	F   *os.File
	End int64

	dirty    bool // bytes past End may remain from a failed append
	dirDirty bool // the rename that made F current is not yet durable
}

// Append writes b at End and syncs it.
func (t *Tail) Append(b []byte) error { return t.append(b, true) }

// Write writes b at End without syncing it, for a record whose loss in a
// power cut is harmless (a spool's acknowledgement: the reports come
// again, and the controller keeps each once). The next Append's sync makes
// it durable with its own record; a torn one at the end is cut off when
// the file is read again.
func (t *Tail) Write(b []byte) error { return t.append(b, false) }

func (t *Tail) append(b []byte, sync bool) error {
	if t.dirDirty {
		if err := SyncDir(t.F.Name()); err != nil {
			return err
		}
		t.dirDirty = false
	}
	if t.dirty {
		if err := t.F.Truncate(t.End); err != nil {
			return fmt.Errorf("truncate to %d after an earlier failure: %w", t.End, err)
		}
		t.dirty = false
	}
	_, err := t.F.WriteAt(b, t.End)
	if err == nil && sync {
		err = t.F.Sync()
	}
	if err != nil {
		if terr := t.F.Truncate(t.End); terr != nil {
			t.dirty = true
			return errors.Join(err, fmt.Errorf("truncate back to %d: %w", t.End, terr))
		}
		t.F.Sync() // best effort: the file is valid either way
		return err
	}
	t.End += int64(len(b))
	return nil
}

// Replace makes f (already renamed over the old file's name, holding end
// good bytes) the file appended to, closing the old one. If the folder
// cannot be synced now, the next Append retries before trusting f.
func (t *Tail) Replace(f *os.File, end int64) error {
	if t.F != nil {
		t.F.Close() // the old inode is unlinked; its close error is moot
	}
	t.F, t.End, t.dirty = f, end, false
	if err := SyncDir(f.Name()); err != nil {
		t.dirDirty = true
		return err
	}
	return nil
}
