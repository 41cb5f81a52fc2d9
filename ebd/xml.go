package ebd

import (
	"bytes"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
)

// Bounds of an XML document this package reads.
const (
	MaxXMLSize  = 1 << 20 // bytes
	MaxXMLDepth = 16      // nested elements
	maxXMLToken = 100_000 // tokens of any kind
)

const xincludeNS = "http://www.w3.org/2001/XInclude"

// decodeXML checks data is plain, bounded XML and decodes it into v. It
// refuses a DOCTYPE or any other declaration (so no entity can be defined,
// expanded or fetched), processing instructions other than the XML
// declaration, XInclude, an encoding other than UTF-8, documents past
// MaxXMLSize or MaxXMLDepth, and anything after the root element.
func decodeXML(data []byte, v any) error {
	if err := checkXML(data); err != nil {
		return err
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	if err := d.Decode(v); err != nil {
		return fmt.Errorf("xml: %v", err)
	}
	return nil
}

func checkXML(data []byte) error {
	if len(data) > MaxXMLSize {
		return fmt.Errorf("xml: %d bytes is larger than the limit of %d", len(data), MaxXMLSize)
	}
	d := xml.NewDecoder(bytes.NewReader(data))
	d.Strict = true
	d.CharsetReader = func(label string, _ io.Reader) (io.Reader, error) {
		return nil, fmt.Errorf("encoding %q is not accepted; send UTF-8", label)
	}
	depth, roots := 0, 0
	for n := 0; ; n++ {
		if n > maxXMLToken {
			return fmt.Errorf("xml: more than %d tokens", maxXMLToken)
		}
		tok, err := d.RawToken()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("xml: %v", err)
		}
		switch t := tok.(type) {
		case xml.Directive:
			return errors.New("xml: DOCTYPE and ENTITY declarations are not accepted")
		case xml.ProcInst:
			if t.Target != "xml" {
				return fmt.Errorf("xml: processing instruction <?%s?> is not accepted", t.Target)
			}
		case xml.StartElement:
			if depth == 0 {
				roots++
				if roots > 1 {
					return errors.New("xml: more than one root element")
				}
			}
			depth++
			if depth > MaxXMLDepth {
				return fmt.Errorf("xml: elements nested deeper than %d", MaxXMLDepth)
			}
			if isXInclude(t.Name, t.Attr) {
				return errors.New("xml: XInclude is not accepted")
			}
		case xml.EndElement:
			depth--
		case xml.CharData:
			if depth == 0 && len(bytes.TrimSpace(t)) > 0 {
				return errors.New("xml: text outside the root element")
			}
		}
	}
	if roots == 0 {
		return errors.New("xml: no root element")
	}
	return nil
}

// isXInclude spots an element in the XInclude namespace, by its prefix's
// declaration on the element or by the conventional "xi" prefix.
func isXInclude(name xml.Name, attrs []xml.Attr) bool {
	for _, a := range attrs {
		if (a.Name.Space == "xmlns" || a.Name.Local == "xmlns") && a.Value == xincludeNS {
			return true
		}
	}
	return name.Space == "xi" || name.Space == xincludeNS
}

// Marshal renders an EBD as an EBDB file.
func Marshal(e *EBD) ([]byte, error) { return encodeXML(e) }

// encodeXML renders v with the XML declaration, UTF-8.
func encodeXML(v any) ([]byte, error) {
	var buf bytes.Buffer
	buf.WriteString(xml.Header)
	enc := xml.NewEncoder(&buf)
	enc.Indent("", "  ")
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	buf.WriteByte('\n')
	return buf.Bytes(), nil
}

// ParseEBD decodes an EBDB file under the rules of decodeXML. Callers
// verify its signature first (Open does).
func ParseEBD(data []byte) (*EBD, error) {
	var e EBD
	if err := decodeXML(data, &e); err != nil {
		return nil, err
	}
	return &e, nil
}
