// Package console serves the operators' web console: one page with its
// script, style and translations, embedded in the binary so that a county
// network without internet serves it whole. The page talks only to the JSON
// API (docs/api.md), with the session cookie and the X-CSRF-Token header;
// the server decides what each operator may see and do.
package console

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"strings"
	"time"
)

//go:embed assets
var assets embed.FS

// Prefix is where the console's files are served; the page itself is "/".
const Prefix = "/console/"

// csp allows only this origin: no CDN, no inline script, no framing. Audio
// is previewed from the operator's own file (blob:) before it is uploaded.
const csp = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; media-src 'self' blob:; " +
	"connect-src 'self'; font-src 'self'; manifest-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"

// file is one asset, read once at start.
type file struct {
	name  string
	data  []byte
	ctype string
	etag  string
}

// Handler serves the page at "/" and its files under Prefix.
type Handler struct {
	files map[string]file // by path under Prefix; "" is the page
}

// New reads the embedded assets.
func New() *Handler {
	h := &Handler{files: map[string]file{}}
	fs.WalkDir(assets, "assets", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := assets.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(data)
		ctype := mime.TypeByExtension(path.Ext(p))
		switch path.Ext(p) {
		case ".js":
			ctype = "text/javascript; charset=utf-8"
		case ".json":
			ctype = "application/json; charset=utf-8"
		}
		rel := strings.TrimPrefix(p, "assets/")
		h.files[rel] = file{name: rel, data: data, ctype: ctype, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
		return nil
	})
	h.files[""] = h.files["index.html"]
	return h
}

func (h *Handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	name, ok := strings.CutPrefix(r.URL.Path, Prefix)
	if !ok {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		name = ""
	}
	f, ok := h.files[name]
	if !ok || name == "index.html" {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", f.ctype)
	hd.Set("Content-Security-Policy", csp)
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "same-origin")
	// Revalidate every time: an upgraded controller serves its own console
	// at once, and an unchanged file costs a 304.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("ETag", f.etag)
	http.ServeContent(w, r, f.name, time.Time{}, bytes.NewReader(f.data))
}
