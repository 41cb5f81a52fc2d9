package ebd_test

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"dalaba/ebd"
)

// TestOpenSSLVector verifies a packet signed by OpenSSL (testdata/openssl),
// and refuses it with one byte changed.
func TestOpenSSLVector(t *testing.T) {
	const id = "10345020000000000000000012026070100000001"
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join("testdata", "openssl", name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	trust, err := ebd.ParseTrust(read("city.pem"))
	if err != nil {
		t.Fatal(err)
	}
	at := trust.Certs()[0].NotAfter.Add(-time.Hour)
	files := []ebd.File{{Name: "EBDB_" + id + ".xml", Data: read("EBDB_" + id + ".xml")}, {Name: "EBDS_EBDB_" + id + ".xml", Data: read("EBDS_EBDB_" + id + ".xml")}}
	p, err := ebd.Open(files, trust, at)
	if err != nil {
		t.Fatal(err)
	}
	if p.Cert == nil || p.Cert.SN != "010203040506" || p.EBD.Type != ebd.TypeConnectionCheck {
		t.Fatalf("packet %+v signed by %+v", p.EBD, p.Cert)
	}
	files[0].Data[60] ^= 0x01
	var e *ebd.Error
	if _, err := ebd.Open(files, trust, at); !errors.As(err, &e) || e.Code != ebd.ResultSignature {
		t.Fatalf("tampered: %v, want result 4", err)
	}
}
