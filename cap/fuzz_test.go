package cap

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// FuzzParse: no input makes Parse panic or hang, and whatever it accepts
// is valid and writes back out to something it accepts again.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob(filepath.Join("testdata", "*.xml"))
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Add([]byte(`<!DOCTYPE a [<!ENTITY x "y">]><alert xmlns="urn:oasis:names:tc:emergency:cap:1.2"/>`))
	f.Add([]byte(`<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">` + strings.Repeat("<a>", 20)))
	f.Fuzz(func(t *testing.T, data []byte) {
		a, err := Parse(data)
		if err != nil {
			return
		}
		if err := a.Validate(); err != nil {
			t.Fatalf("accepted an invalid alert: %v", err)
		}
		out, err := Marshal(a)
		if err != nil {
			t.Fatalf("accepted alert does not write: %v", err)
		}
		if _, err := Parse(out); err != nil {
			t.Fatalf("written alert does not parse: %v\n%s", err, out)
		}
	})
}

// FuzzDocument: feed and alert detection never panics.
func FuzzDocument(f *testing.F) {
	f.Add([]byte(`<feed xmlns="http://www.w3.org/2005/Atom"><entry><link href="a.xml"/></entry></feed>`))
	b, _ := os.ReadFile(filepath.Join("testdata", "oasis-a1-homeland-security.xml"))
	f.Add(b)
	f.Fuzz(func(t *testing.T, data []byte) {
		Document(data)
		CheckXML(data)
	})
}
