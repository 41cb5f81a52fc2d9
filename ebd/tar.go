package ebd

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"
)

// Limits bound what ReadTar accepts.
type Limits struct {
	MaxEntries int   // files in the archive
	MaxTotal   int64 // bytes of all files together (each file's declared size counts)
}

// DefaultLimits fit an alert: the EBDB, its signature and a few recordings.
var DefaultLimits = Limits{MaxEntries: 16, MaxTotal: 64 << 20}

// File is one entry of a packet tar: a flat name and its bytes.
type File struct {
	Name string
	Data []byte
}

// ReadTar reads a packet tar. It accepts only regular files with flat,
// plain names, each at most once, within lim; anything else (a path with
// "/" or "..", an absolute path, a link, a device, a folder, a size past the
// limit, a truncated entry) is refused with an error that names the entry.
// Nothing is written anywhere: entries are returned in memory.
func ReadTar(r io.Reader, lim Limits) ([]File, error) {
	tr := tar.NewReader(r)
	var files []File
	seen := map[string]bool{}
	var total int64
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("tar: after %d entries: %v", len(files), err)
		}
		if len(files) >= lim.MaxEntries {
			return nil, fmt.Errorf("tar: more than %d entries", lim.MaxEntries)
		}
		if err := checkEntry(hdr); err != nil {
			return nil, err
		}
		key := strings.ToLower(hdr.Name)
		if seen[key] {
			return nil, fmt.Errorf("tar entry %q: the name appears twice", hdr.Name)
		}
		seen[key] = true
		if hdr.Size < 0 || hdr.Size > lim.MaxTotal-total {
			return nil, fmt.Errorf("tar entry %q: declared size %d bytes passes the packet limit of %d bytes", hdr.Name, hdr.Size, lim.MaxTotal)
		}
		total += hdr.Size
		data := make([]byte, hdr.Size)
		if _, err := io.ReadFull(tr, data); err != nil {
			return nil, fmt.Errorf("tar entry %q: truncated: %v", hdr.Name, err)
		}
		files = append(files, File{Name: hdr.Name, Data: data})
	}
	if len(files) == 0 {
		return nil, errors.New("tar: the archive holds no files")
	}
	return files, nil
}

func checkEntry(hdr *tar.Header) error {
	name := hdr.Name
	switch hdr.Typeflag {
	case tar.TypeReg: // the reader reports old-style regular files (TypeRegA) as TypeReg
	case tar.TypeSymlink:
		return fmt.Errorf("tar entry %q: symbolic links are not accepted (to %q)", name, hdr.Linkname)
	case tar.TypeLink:
		return fmt.Errorf("tar entry %q: hard links are not accepted (to %q)", name, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return fmt.Errorf("tar entry %q: devices and pipes are not accepted", name)
	case tar.TypeDir:
		return fmt.Errorf("tar entry %q: folders are not accepted; a packet's files are flat", name)
	default:
		return fmt.Errorf("tar entry %q: type %q is not a regular file", name, hdr.Typeflag)
	}
	switch {
	case strings.HasPrefix(name, "/"):
		return fmt.Errorf("tar entry %q: absolute paths are not accepted", name)
	case name == ".." || strings.HasPrefix(name, "../") || strings.Contains(name, "/../") || strings.HasSuffix(name, "/.."):
		return fmt.Errorf("tar entry %q: paths with .. are not accepted", name)
	case strings.ContainsAny(name, "/\\"):
		return fmt.Errorf("tar entry %q: a packet's files are flat; folders are not accepted", name)
	}
	if err := checkName(name); err != nil {
		return fmt.Errorf("tar entry %q: %v", name, err)
	}
	return nil
}

// checkName accepts plain file names: letters, digits, "_", "-", ".", not
// starting with a dot, at most 128 bytes.
func checkName(name string) error {
	if name == "" || len(name) > 128 || name[0] == '.' || path.Clean(name) != name {
		return errors.New("a file name must be 1..128 characters and not start with a dot")
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return fmt.Errorf("character %q is not allowed in a file name (letters, digits, _ - .)", c)
		}
	}
	return nil
}

// WriteTar writes files as a ustar archive, in order.
func WriteTar(files []File, mod time.Time) ([]byte, error) {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		if err := checkName(f.Name); err != nil {
			return nil, fmt.Errorf("tar entry %q: %v", f.Name, err)
		}
		hdr := &tar.Header{Name: f.Name, Mode: 0o644, Size: int64(len(f.Data)), ModTime: mod.Truncate(time.Second),
			Typeflag: tar.TypeReg, Format: tar.FormatUSTAR}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.Data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}
