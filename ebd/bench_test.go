package ebd_test

import (
	"bytes"
	"testing"
	"time"

	"dalaba/ebd"
	"dalaba/ebd/ebdtest"
)

// BenchmarkOpenAlert: read, verify (SM2/SM3) and parse a signed EBM packet
// with a 1 KiB recording, as the controller does for each packet received.
func BenchmarkOpenAlert(b *testing.B) {
	city := ebdtest.New(b, cityEBRID, 0x0102030405, now.Add(-time.Hour), now.Add(time.Hour))
	trust := ebdtest.Trust(b, city)
	raw, err := city.Signer.Build(alertEBD(ebdID), now, ebd.File{Name: "EBDR_alert.mp3", Data: mp3})
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(raw)))
	for b.Loop() {
		files, err := ebd.ReadTar(bytes.NewReader(raw), ebd.DefaultLimits)
		if err != nil {
			b.Fatal(err)
		}
		p, err := ebd.Open(files, trust, now)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := p.EBD.EBM.Check(p.Files); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkBuildResponse: build and sign an EBDResponse receipt tar.
func BenchmarkBuildResponse(b *testing.B) {
	county := ebdtest.New(b, countyEBRID, 0x0a0b0c0d0e, now.Add(-time.Hour), now.Add(time.Hour))
	for b.Loop() {
		e := ebd.Header(ebdID, ebd.TypeResponse, countyEBRID, cityEBRID, now)
		e.Response = &ebd.Response{ResultCode: 1, ResultDesc: "ok"}
		if _, err := county.Signer.Build(e, now); err != nil {
			b.Fatal(err)
		}
	}
}
