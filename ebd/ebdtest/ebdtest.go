// Package ebdtest makes real SM2 platform identities for tests: a key, a
// self-signed certificate with a 6-byte serial, and their PEM files.
package ebdtest

import (
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm2"
	"github.com/emmansun/gmsm/smx509"

	"dalaba/ebd"
)

// Platform is a test platform's identity.
type Platform struct {
	EBRID   string
	SN      string // 12 hex digits
	Key     *sm2.PrivateKey
	KeyPEM  []byte // PKCS#8
	CertPEM []byte
	Signer  *ebd.Signer
}

// New makes a platform with a certificate valid from notBefore to notAfter.
func New(t testing.TB, ebrid string, serial int64, notBefore, notAfter time.Time) *Platform {
	t.Helper()
	key, err := sm2.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &smx509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "platform " + ebrid, Organization: []string{"Dalaba test"}},
		NotBefore:    notBefore, NotAfter: notAfter,
		KeyUsage:           smx509.KeyUsageDigitalSignature,
		SignatureAlgorithm: smx509.SM2WithSM3,
	}
	der, err := smx509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	p8, err := smx509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	p := &Platform{EBRID: ebrid, Key: key,
		KeyPEM:  pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: p8}),
		CertPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	if p.Signer, err = ebd.ParseSigner(p.KeyPEM, p.CertPEM); err != nil {
		t.Fatal(err)
	}
	p.SN = big.NewInt(serial).Text(16)
	for len(p.SN) < 12 {
		p.SN = "0" + p.SN
	}
	return p
}

// Trust returns a trust list of the platforms' certificates.
func Trust(t testing.TB, ps ...*Platform) *ebd.Trust {
	t.Helper()
	var all []byte
	for _, p := range ps {
		all = append(all, p.CertPEM...)
	}
	tr, err := ebd.ParseTrust(all)
	if err != nil {
		t.Fatal(err)
	}
	return tr
}
