package ebd

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

// Packet is a received packet whose signature checked out (or an unsigned
// ConnectionCheck) and whose EBDB parsed.
type Packet struct {
	ID    string            // EBDID, from the file names and the EBDB
	EBD   EBD               // the decoded EBDB
	Raw   []byte            // the EBDB's exact bytes, as signed
	Files map[string][]byte // the other entries (recordings), by name
	Cert  *Cert             // who signed it; nil for an unsigned ConnectionCheck
}

// Names of a packet's files.
func tarName(id string) string  { return "EBDT_" + id + ".tar" }
func ebdbName(id string) string { return "EBDB_" + id + ".xml" }
func ebdsName(id string) string { return "EBDS_EBDB_" + id + ".xml" }

// PacketID finds the EBD id a packet's files name, for answering a packet
// that could not be opened. It returns "" when there is none.
func PacketID(files []File) string {
	for _, f := range files {
		if id, ok := strings.CutPrefix(f.Name, "EBDB_"); ok {
			if id, ok = strings.CutSuffix(id, ".xml"); ok && validID(id) == nil {
				return id
			}
		}
	}
	return ""
}

// Open checks a packet's tar: its EBDB and EBDS files are found by name,
// the signature is verified over the EBDB's raw bytes before anything is
// decoded, and then the EBDB is parsed. Only a ConnectionCheck may come
// unsigned. The error is an *Error carrying the result code.
func Open(files []File, trust *Trust, now time.Time) (*Packet, error) {
	id := PacketID(files)
	if id == "" {
		return nil, fail(ResultMissing, "the packet holds no EBDB_<EBDID>.xml file")
	}
	byName := map[string][]byte{}
	for _, f := range files {
		byName[f.Name] = f.Data
	}
	p := &Packet{ID: id, Raw: byName[ebdbName(id)], Files: map[string][]byte{}}
	for _, f := range files {
		if f.Name != ebdbName(id) && f.Name != ebdsName(id) {
			if strings.HasPrefix(f.Name, "EBDB_") {
				return nil, fail(ResultParse, "the packet holds more than one EBDB file (%s)", f.Name)
			}
			p.Files[f.Name] = f.Data
		}
	}
	sig, signed := byName[ebdsName(id)]
	if signed {
		if trust == nil {
			return nil, fail(ResultSignature, "no platform certificates are configured; nothing can be verified")
		}
		c, err := trust.Verify(p.Raw, sig, id, now)
		if err != nil {
			return nil, err
		}
		p.Cert = c
	}
	e, err := ParseEBD(p.Raw)
	if err != nil {
		return nil, fail(ResultParse, "%s: %v", ebdbName(id), err)
	}
	p.EBD = *e
	if !signed && e.Type != TypeConnectionCheck {
		return nil, fail(ResultSignature, "the packet has no signature file %s", ebdsName(id))
	}
	if got := strings.TrimSpace(e.ID); got != id {
		return nil, fail(ResultParse, "EBDID %q is not the id in the file name %q", got, id)
	}
	if e.SRC.Code() == "" {
		return nil, fail(ResultMissing, "SRC/EBRID is missing")
	}
	if strings.TrimSpace(e.Type) == "" {
		return nil, fail(ResultMissing, "EBDType is missing")
	}
	return p, nil
}

// ReadRequest takes the packet tar from an HTTP multipart request's part
// "file" and reads it within lim; maxBody bounds the whole request.
func ReadRequest(w http.ResponseWriter, r *http.Request, lim Limits) ([]byte, []File, error) {
	ct, _, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || ct != "multipart/form-data" {
		return nil, nil, fail(ResultParse, "send the packet as multipart/form-data with a part named \"file\"")
	}
	r.Body = http.MaxBytesReader(w, r.Body, lim.MaxTotal+1<<20)
	mr, err := r.MultipartReader()
	if err != nil {
		return nil, nil, fail(ResultParse, "multipart: %v", err)
	}
	for {
		part, err := mr.NextPart()
		if errors.Is(err, io.EOF) {
			return nil, nil, fail(ResultMissing, "the request has no part named \"file\"")
		}
		if err != nil {
			return nil, nil, fail(ResultParse, "multipart: %v", err)
		}
		if part.FormName() != "file" {
			continue
		}
		var buf bytes.Buffer
		if _, err := io.Copy(&buf, io.LimitReader(part, lim.MaxTotal+1<<20)); err != nil {
			return nil, nil, fail(ResultParse, "reading part \"file\": %v", err)
		}
		raw := buf.Bytes()
		files, err := ReadTar(bytes.NewReader(raw), lim)
		if err != nil {
			return raw, nil, fail(ResultParse, "%v", err)
		}
		return raw, files, nil
	}
}

// Build makes a signed packet tar of e (its ID set) and extra files.
// A ConnectionCheck goes unsigned.
func (s *Signer) Build(e *EBD, now time.Time, extra ...File) ([]byte, error) {
	if err := validID(e.ID); err != nil {
		return nil, err
	}
	raw, err := encodeXML(e)
	if err != nil {
		return nil, fmt.Errorf("encode EBD %s: %w", e.ID, err)
	}
	files := []File{{Name: ebdbName(e.ID), Data: raw}}
	if e.Type != TypeConnectionCheck {
		sig, err := s.Sign(raw, e.ID, now)
		if err != nil {
			return nil, err
		}
		files = append(files, File{Name: ebdsName(e.ID), Data: sig})
	}
	return WriteTar(append(files, extra...), now)
}

// TarName is the name a packet tar travels under.
func TarName(id string) string { return tarName(id) }

// Header starts an EBD of type typ from platform src to dest at now.
func Header(id, typ, src, dest string, now time.Time) *EBD {
	e := &EBD{Version: "1.0", ID: id, Type: typ, SRC: Resource{EBRID: src}, Time: FormatTime(now)}
	if dest != "" {
		e.DEST = &Resource{EBRID: dest}
	}
	return e
}
