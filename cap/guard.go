package cap

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"strings"
)

// Limits on any XML this package reads (a CAP message or a feed).
const (
	MaxSize  = 2 << 20 // bytes; a CAP message with an embedded recording fits
	MaxDepth = 16      // element nesting; CAP needs 4 (alert/info/area/geocode/value is 5)
)

// xincludeNS is the XInclude namespace: an element in it asks a processor
// to fetch and splice in another document.
const xincludeNS = "http://www.w3.org/2001/XInclude"

// CheckXML refuses XML that a hostile sender could use against a parser or
// the network, before anything else reads it: larger than MaxSize, nested
// deeper than MaxDepth, any DOCTYPE or other <!...> declaration (entities,
// billion laughs, external and remote DTDs), any processing instruction
// but the leading XML declaration, any XInclude element, character data
// outside the root, malformed XML, and a document that is not UTF-8. The
// error names the construct and, for elements, the element.
func CheckXML(data []byte) error {
	if len(data) > MaxSize {
		return &Error{Element: "document", Msg: fmt.Sprintf("%d bytes is larger than the limit of %d", len(data), MaxSize)}
	}
	if len(bytes.TrimSpace(data)) == 0 {
		return &Error{Element: "document", Msg: "empty"}
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, r io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("encoding %q is not supported; send UTF-8", label)
	}
	var path, prefixes []string
	roots := 0
	first := true
	for {
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return &Error{Element: where(path), Msg: "not well-formed XML: " + strings.TrimPrefix(err.Error(), "XML syntax error on ")}
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if len(path) == 0 {
				roots++
				if roots > 1 {
					return &Error{Element: t.Name.Local, Msg: "a second root element"}
				}
			}
			path, prefixes = append(path, t.Name.Local), append(prefixes, t.Name.Space)
			if len(path) > MaxDepth {
				return &Error{Element: where(path), Msg: fmt.Sprintf("nested deeper than %d elements", MaxDepth)}
			}
			if isXInclude(t) {
				return &Error{Element: where(path), Msg: "XInclude is refused (it would fetch another document)"}
			}
		case xml.EndElement: // RawToken leaves matching to its caller
			if len(path) == 0 || path[len(path)-1] != t.Name.Local || prefixes[len(path)-1] != t.Name.Space {
				return &Error{Element: where(path), Msg: fmt.Sprintf("not well-formed XML: unexpected end tag </%s>", t.Name.Local)}
			}
			path, prefixes = path[:len(path)-1], prefixes[:len(path)-1]
		case xml.Directive:
			kind := strings.ToUpper(strings.Fields(string(t) + " x")[0])
			return &Error{Element: where(path), Msg: fmt.Sprintf("<!%s ...> is refused: no DTD, entity or other declaration may appear", kind)}
		case xml.ProcInst:
			if t.Target == "xml" && first {
				break
			}
			return &Error{Element: where(path), Msg: fmt.Sprintf("processing instruction <?%s ...?> is refused", t.Target)}
		case xml.CharData:
			if len(path) == 0 && len(bytes.TrimSpace(t)) > 0 {
				return &Error{Element: "document", Msg: "text outside the root element"}
			}
		}
		first = false
	}
	if len(path) > 0 {
		return &Error{Element: where(path), Msg: "not well-formed XML: the document ends inside this element"}
	}
	if roots == 0 {
		return &Error{Element: "document", Msg: "no root element"}
	}
	return nil
}

// isXInclude reports whether an element declares the XInclude namespace
// (as its default or for a prefix). Any XInclude element needs such a
// declaration on itself or an ancestor, so refusing it refuses them all.
func isXInclude(t xml.StartElement) bool {
	for _, a := range t.Attr {
		if strings.TrimSpace(a.Value) == xincludeNS && (a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns")) {
			return true
		}
	}
	return false
}

func where(path []string) string {
	if len(path) == 0 {
		return "document"
	}
	return strings.Join(path, "/")
}

// Error is a CAP or XML problem; Element names where it is (a path such as
// "alert/info[0]/urgency", or "document").
type Error struct {
	Element string
	Msg     string
}

func (e *Error) Error() string { return "cap: " + e.Element + ": " + e.Msg }

// ErrSignature marks a signature that is missing where required, or fails.
var ErrSignature = errors.New("signature")
