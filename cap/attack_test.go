package cap

import (
	"errors"
	"fmt"
	"net"
	"strings"
	"sync/atomic"
	"testing"
)

// hostile is a CAP alert a hostile sender could send, and what the refusal
// must name.
type hostile struct {
	name, doc, element, says string
}

func hostileDocs(t *testing.T, remote string) []hostile {
	good := string(sample(t, "oasis-a2-thunderstorm.xml"))
	body := good[strings.Index(good, "<alert"):]
	var laughs strings.Builder
	laughs.WriteString(`<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY lol0 "lol">`)
	for i := 1; i < 10; i++ {
		fmt.Fprintf(&laughs, `<!ENTITY lol%d "%s">`, i, strings.Repeat(fmt.Sprintf("&lol%d;", i-1), 10))
	}
	laughs.WriteString(`]>` + strings.Replace(body, "SEVERE THUNDERSTORM WARNING", "&lol9;", 1))
	deep := `<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">` + strings.Repeat("<x>", 100) + strings.Repeat("</x>", 100) + `</alert>`
	return []hostile{
		{"billion laughs", laughs.String(), "document", "<!DOCTYPE"},
		{"external entity", `<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>` +
			strings.Replace(body, "SEVERE THUNDERSTORM WARNING", "&xxe;", 1), "document", "<!DOCTYPE"},
		{"remote DTD", `<?xml version="1.0"?><!DOCTYPE alert SYSTEM "` + remote + `/evil.dtd">` + body, "document", "<!DOCTYPE"},
		{"parameter entity", `<!DOCTYPE alert [<!ENTITY % p SYSTEM "` + remote + `/p.dtd"> %p;]>` + body, "document", "<!DOCTYPE"},
		{"entity declared after root", body + `<!ENTITY x "y">`, "document", "<!ENTITY"},
		{"XInclude", strings.Replace(body, "<info>", `<info><xi:include xmlns:xi="http://www.w3.org/2001/XInclude" href="`+remote+`/x.xml"/>`, 1),
			"alert/info/include", "XInclude"},
		{"XInclude prefix on root", strings.Replace(body, `<alert xmlns`, `<alert xmlns:xi="http://www.w3.org/2001/XInclude" xmlns`, 1), "alert", "XInclude"},
		{"stylesheet PI", `<?xml version="1.0"?><?xml-stylesheet href="` + remote + `/s.xsl"?>` + body, "document", "xml-stylesheet"},
		{"PI inside", strings.Replace(body, "<info>", "<info><?php system('id'); ?>", 1), "alert/info", "php"},
		{"oversize", body[:len(body)-len("</alert>")] + "<note>" + strings.Repeat("A", MaxSize) + "</note></alert>", "document", "larger than the limit"},
		{"deep nesting", deep, "alert" + strings.Repeat("/x", MaxDepth), "deeper than"},
		{"other encoding", `<?xml version="1.0" encoding="ISO-8859-1"?>` + body, "document", "UTF-8"},
		{"second root", body + body, "alert", "second root"},
	}
}

// TestHostileXML: the named attacks on an XML parser are refused before
// any CAP parsing, with an error naming the construct, and nothing is
// fetched from the network.
func TestHostileXML(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var fetched atomic.Int32
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			fetched.Add(1)
			c.Close()
		}
	}()
	for _, h := range hostileDocs(t, "http://"+ln.Addr().String()) {
		_, err := Parse([]byte(h.doc))
		var ce *Error
		if !errors.As(err, &ce) || ce.Element != h.element || !strings.Contains(err.Error(), h.says) {
			t.Errorf("%s: %v, want an error at %s saying %q", h.name, err, h.element, h.says)
		}
		if _, _, err := Document([]byte(h.doc)); err == nil {
			t.Errorf("%s: accepted as a feed document", h.name)
		}
		if _, _, err := Verify([]byte(h.doc), nil, testNow); err == nil || errors.Is(err, ErrSignature) {
			t.Errorf("%s: Verify did not refuse the XML itself: %v", h.name, err)
		}
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("the parser connected %d times to the attacker's server", n)
	}
}

// TestMismatchedTags: the raw scan checks end tags itself (a fuzzing find:
// a lone end tag crashed it).
func TestMismatchedTags(t *testing.T) {
	for _, doc := range []string{"</A>", "<a></b>", "<x:a xmlns:x='u'></y:a>", "<a>"} {
		if err := CheckXML([]byte(doc)); err == nil {
			t.Errorf("%q accepted", doc)
		}
	}
}
