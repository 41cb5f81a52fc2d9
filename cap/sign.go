package cap

import (
	"bytes"
	"crypto"
	"crypto/x509"
	"encoding/base64"
	"encoding/xml"
	"fmt"
	"strings"
	"time"

	"github.com/beevik/etree"
	"github.com/jonboulle/clockwork"
	dsig "github.com/russellhaering/goxmldsig"
)

// dsigNS is the XML Signature namespace.
const dsigNS = "http://www.w3.org/2000/09/xmldsig#"

// HasSignature reports whether the root element of data has an XML
// Signature child (data must have passed CheckXML).
func HasSignature(data []byte) bool {
	d := xml.NewDecoder(bytes.NewReader(data))
	depth := 0
	for {
		tok, err := d.Token()
		if err != nil {
			return false
		}
		switch t := tok.(type) {
		case xml.StartElement:
			depth++
			if depth == 2 && t.Name.Space == dsigNS && t.Name.Local == "Signature" {
				return true
			}
		case xml.EndElement:
			depth--
		}
	}
}

// Verify checks the enveloped XML signature of a CAP document against
// trusted certificates, at time now, and returns the bytes the signature
// covers (the document without its Signature, canonicalised) with the
// certificate that signed them. Only those bytes may be acted on: parse
// them with Parse. A document without a signature, one signed by a
// certificate outside trusted (or outside its validity), or one changed
// after signing is refused with an error wrapping ErrSignature.
//
// The XML Signature processing is github.com/russellhaering/goxmldsig
// (RSA and ECDSA with SHA-1/256/512, exclusive and inclusive C14N): a
// widely used, maintained implementation with its own fuzzing, rather
// than canonicalisation written here.
func Verify(data []byte, trusted []*x509.Certificate, now time.Time) ([]byte, *x509.Certificate, error) {
	if err := CheckXML(data); err != nil {
		return nil, nil, err
	}
	if !HasSignature(data) {
		return nil, nil, fmt.Errorf("%w: the message is not signed (no enveloped <Signature> in alert)", ErrSignature)
	}
	if len(trusted) == 0 {
		return nil, nil, fmt.Errorf("%w: no trusted certificate is configured for this sender", ErrSignature)
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, nil, &Error{Element: "document", Msg: err.Error()}
	}
	ctx := dsig.NewDefaultValidationContext(&dsig.MemoryX509CertificateStore{Roots: trusted})
	ctx.Clock = dsig.NewFakeClock(clockwork.NewFakeClockAt(now))
	signed, err := ctx.Validate(doc.Root())
	if err != nil {
		return nil, nil, fmt.Errorf("%w: verification failed: %v", ErrSignature, err)
	}
	out := etree.NewDocument()
	out.SetRoot(signed)
	b, err := out.WriteToBytes()
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrSignature, err)
	}
	return b, signer(data, trusted), nil
}

// signer finds which trusted certificate signed: the one in KeyInfo, or
// the only one.
func signer(data []byte, trusted []*x509.Certificate) *x509.Certificate {
	if len(trusted) == 1 {
		return trusted[0]
	}
	doc := etree.NewDocument()
	if doc.ReadFromBytes(data) != nil {
		return nil
	}
	for _, el := range doc.FindElements("//X509Certificate") {
		der, err := decodeBase64(el.Text())
		if err != nil {
			continue
		}
		for _, c := range trusted {
			if bytes.Equal(c.Raw, der) {
				return c
			}
		}
	}
	return nil
}

// Sign adds an enveloped XML signature (RSA or ECDSA with SHA-256,
// exclusive C14N, the certificate in KeyInfo) to a CAP document. Counties
// use it for the alerts they export; tests use it to make signed samples.
func Sign(data []byte, key crypto.Signer, certDER []byte) ([]byte, error) {
	if err := CheckXML(data); err != nil {
		return nil, err
	}
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(data); err != nil {
		return nil, err
	}
	ctx, err := dsig.NewSigningContext(key, [][]byte{certDER})
	if err != nil {
		return nil, err
	}
	ctx.Canonicalizer = dsig.MakeC14N10ExclusiveCanonicalizerWithPrefixList("")
	signed, err := ctx.SignEnveloped(doc.Root())
	if err != nil {
		return nil, fmt.Errorf("sign: %w", err)
	}
	out := etree.NewDocument()
	out.CreateProcInst("xml", `version="1.0" encoding="UTF-8"`)
	out.SetRoot(signed)
	return out.WriteToBytes()
}

func decodeBase64(s string) ([]byte, error) {
	return base64.StdEncoding.DecodeString(strings.Join(strings.Fields(s), ""))
}
