package cap

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"strings"
	"testing"
	"time"
)

var testNow = time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)

// testCert makes a self-signed certificate valid around testNow.
func testCert(t testing.TB, key crypto.Signer, name string, from, until time.Time) *x509.Certificate {
	t.Helper()
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: from, NotAfter: until, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func rsaKey(t testing.TB) *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestVerify: an enveloped signature by a trusted RSA or ECDSA certificate
// verifies and yields the signed alert; tampering, another key, an
// untrusted or expired certificate, and no signature are refused.
func TestVerify(t *testing.T) {
	doc := sample(t, "oasis-a2-thunderstorm.xml")
	rk := rsaKey(t)
	ek, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	valid := func(k crypto.Signer, name string) *x509.Certificate {
		return testCert(t, k, name, testNow.Add(-time.Hour), testNow.Add(365*24*time.Hour))
	}
	rc, ec := valid(rk, "weather-rsa"), valid(ek, "weather-ec")
	for name, c := range map[string]struct {
		key  crypto.Signer
		cert *x509.Certificate
	}{"RSA": {rk, rc}, "ECDSA": {ek, ec}} {
		signed, err := Sign(doc, c.key, c.cert.Raw)
		if err != nil {
			t.Fatal(err)
		}
		if !HasSignature(signed) || HasSignature(doc) {
			t.Fatal("HasSignature")
		}
		content, who, err := Verify(signed, []*x509.Certificate{rc, ec}, testNow)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if who == nil || !who.Equal(c.cert) {
			t.Fatalf("%s: signer %v", name, who)
		}
		a, err := Parse(content)
		if err != nil || a.Identifier != "KSTO1055887203" || bytes.Contains(content, []byte("Signature")) {
			t.Fatalf("%s: signed content %v:\n%s", name, err, content)
		}
	}

	signed, _ := Sign(doc, rk, rc.Raw)
	other := rsaKey(t)
	otherSigned, _ := Sign(doc, other, valid(other, "intruder").Raw)
	expired := testCert(t, rk, "old", testNow.Add(-48*time.Hour), testNow.Add(-time.Hour))
	expiredSigned, _ := Sign(doc, rk, expired.Raw)
	for name, c := range map[string]struct {
		doc     []byte
		trusted []*x509.Certificate
	}{
		"headline changed":  {bytes.Replace(signed, []byte("SEVERE THUNDERSTORM WARNING"), []byte("ALL CLEAR"), 1), []*x509.Certificate{rc}},
		"severity changed":  {bytes.Replace(signed, []byte("<severity>Severe"), []byte("<severity>Extreme"), 1), []*x509.Certificate{rc}},
		"element added":     {bytes.Replace(signed, []byte("<info>"), []byte("<info><category>Fire</category>"), 1), []*x509.Certificate{rc}},
		"signature flipped": {flipSignatureValue(t, signed), []*x509.Certificate{rc}},
		"untrusted signer":  {otherSigned, []*x509.Certificate{rc}},
		"expired cert":      {expiredSigned, []*x509.Certificate{expired}},
		"no trust list":     {signed, nil},
		"unsigned":          {doc, []*x509.Certificate{rc}},
		"real placeholder":  {sample(t, "google-PAAQ-4-tsunami-cancel-update.xml"), []*x509.Certificate{rc}},
	} {
		if _, _, err := Verify(c.doc, c.trusted, testNow); !errors.Is(err, ErrSignature) {
			t.Errorf("%s: %v, want ErrSignature", name, err)
		}
	}
}

// flipSignatureValue changes one character of the base64 signature value.
func flipSignatureValue(t *testing.T, signed []byte) []byte {
	s := string(signed)
	i := strings.Index(s, "SignatureValue>") + len("SignatureValue>") + 10
	b := []byte(s)
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return b
}
