package ebd_test

import (
	"archive/tar"
	"bytes"
	"testing"
	"time"

	"dalaba/ebd"
	"dalaba/ebd/ebdtest"
)

// FuzzReadTar: no input panics, and every accepted archive is flat,
// regular files within the limits.
func FuzzReadTar(f *testing.F) {
	f.Add(tarOf(f, reg("EBDB_1.xml", 10), reg("EBDS_EBDB_1.xml", 10)))
	f.Add(tarOf(f, reg("../x", 3)))
	f.Add(tarOf(f, tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: "/"}))
	f.Add([]byte{})
	lim := ebd.Limits{MaxEntries: 8, MaxTotal: 1 << 16}
	f.Fuzz(func(t *testing.T, data []byte) {
		files, err := ebd.ReadTar(bytes.NewReader(data), lim)
		if err != nil {
			return
		}
		var total int
		for _, fl := range files {
			if bytes.ContainsAny([]byte(fl.Name), "/\\") || fl.Name == "" || fl.Name[0] == '.' {
				t.Fatalf("accepted entry name %q", fl.Name)
			}
			total += len(fl.Data)
		}
		if len(files) > lim.MaxEntries || int64(total) > lim.MaxTotal {
			t.Fatalf("accepted %d files, %d bytes", len(files), total)
		}
	})
}

// FuzzParseEBD: no input panics; an accepted EBM checks without panicking.
func FuzzParseEBD(f *testing.F) {
	b, err := ebd.Marshal(alertEBD(ebdID))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(b)
	f.Add([]byte(`<?xml version="1.0"?><!DOCTYPE EBD [<!ENTITY a "b">]><EBD>&a;</EBD>`))
	f.Add([]byte(`<EBD><EBM><MsgContent><AreaCode>450224102003;4502</AreaCode></MsgContent></EBM></EBD>`))
	f.Fuzz(func(t *testing.T, data []byte) {
		e, err := ebd.ParseEBD(data)
		if err != nil {
			return
		}
		if e.EBM != nil {
			e.EBM.Check(map[string][]byte{"EBDR_alert.mp3": mp3})
		}
	})
}

// FuzzVerify: no signature file panics or verifies for a changed EBDB.
func FuzzVerify(f *testing.F) {
	city := ebdtest.New(f, cityEBRID, 0x0102030405, now.Add(-time.Hour), now.Add(time.Hour))
	trust := ebdtest.Trust(f, city)
	ebdb := []byte("<EBD><EBDID>" + ebdID + "</EBDID></EBD>")
	sig, err := city.Signer.Sign(ebdb, ebdID, now)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(sig)
	f.Add([]byte(`<Signature><RelatedEBD><EBDID>` + ebdID + `</EBDID></RelatedEBD><CertSN>0001020304050</CertSN><SignatureAlgorithm>SM2-SM3</SignatureAlgorithm><SignatureValue>MAYCAQECAQE=</SignatureValue></Signature>`))
	changed := append([]byte("<!-- -->"), ebdb...)
	f.Fuzz(func(t *testing.T, sigFile []byte) {
		if _, err := trust.Verify(changed, sigFile, ebdID, now); err == nil {
			t.Fatalf("a signature verified for bytes never signed: %q", sigFile)
		}
		trust.Verify(ebdb, sigFile, ebdID, now)
	})
}
