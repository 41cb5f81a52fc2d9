package ebd_test

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"dalaba/ebd"
	"dalaba/ebd/ebdtest"
)

const (
	cityEBRID   = "34502000000000000000001" // Liuzhou city platform
	countyEBRID = "44502240000000000000001" // Rong'an county platform
)

var now = time.Date(2026, 7, 1, 8, 0, 0, 0, time.UTC)

func platforms(t *testing.T) (city, county *ebdtest.Platform, trust *ebd.Trust) {
	city = ebdtest.New(t, cityEBRID, 0x0102030405, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	county = ebdtest.New(t, countyEBRID, 0x0a0b0c0d0e, now.Add(-time.Hour), now.Add(365*24*time.Hour))
	return city, county, ebdtest.Trust(t, city)
}

var mp3 = bytes.Repeat([]byte{0xff, 0xfb, 0x90, 0x64}, 256)

// alertEBD is a typical city alert for two villages of Rong'an with a
// recording.
func alertEBD(id string) *ebd.EBD {
	e := ebd.Header(id, ebd.TypeEBM, cityEBRID, countyEBRID, now)
	sum := sm3.Sum(mp3)
	e.EBM = &ebd.EBM{Version: "1", ID: cityEBRID + "202607010001",
		Basic: ebd.MsgBasicInfo{MsgType: "1", SenderName: "柳州市应急广播平台", SenderCode: cityEBRID, SendTime: ebd.FormatTime(now),
			EventType: "11000", Severity: "2", StartTime: ebd.FormatTime(now), EndTime: ebd.FormatTime(now.Add(time.Hour))},
		Content: ebd.MsgContent{LanguageCode: "zho", MsgTitle: "暴雨橙色预警", MsgDesc: "请注意防范山洪地质灾害。",
			AreaCode:  []string{"450224102003,450224102004"},
			Auxiliary: []ebd.Auxiliary{{Type: "2", Desc: "EBDR_alert.mp3", Size: "1024", Digest: hex.EncodeToString(sum[:])}}}}
	return e
}

const ebdID = "10" + cityEBRID + "20260701" + "00000001"

func build(t *testing.T, s *ebd.Signer, e *ebd.EBD, extra ...ebd.File) []ebd.File {
	t.Helper()
	raw, err := s.Build(e, now, extra...)
	if err != nil {
		t.Fatal(err)
	}
	files, err := ebd.ReadTar(bytes.NewReader(raw), ebd.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	return files
}

func TestOpenSignedAlert(t *testing.T) {
	city, _, trust := platforms(t)
	files := build(t, city.Signer, alertEBD(ebdID), ebd.File{Name: "EBDR_alert.mp3", Data: mp3})
	names := []string{files[0].Name, files[1].Name, files[2].Name}
	if want := []string{"EBDB_" + ebdID + ".xml", "EBDS_EBDB_" + ebdID + ".xml", "EBDR_alert.mp3"}; strings.Join(names, " ") != strings.Join(want, " ") {
		t.Fatalf("tar entries %v, want %v", names, want)
	}
	p, err := ebd.Open(files, trust, now)
	if err != nil {
		t.Fatal(err)
	}
	if p.ID != ebdID || p.Cert.SN != city.SN || p.EBD.Type != ebd.TypeEBM {
		t.Fatalf("packet %s signed by %v type %s", p.ID, p.Cert, p.EBD.Type)
	}
	a, err := p.EBD.EBM.Check(p.Files)
	if err != nil {
		t.Fatal(err)
	}
	if a.MsgType != 1 || a.Severity != 2 || a.EventType != "11000" || len(a.Areas) != 2 || a.Areas[1] != "450224102004" ||
		len(a.Audio) != 1 || !a.Start.Equal(now) || a.Title != "暴雨橙色预警" {
		t.Fatalf("alert %+v", a)
	}
}

// TestTamperedPacket flips one byte in each part of a signed packet and
// expects the result code that names what is wrong.
func TestTamperedPacket(t *testing.T) {
	city, _, trust := platforms(t)
	flip := func(b []byte, at int) []byte { c := bytes.Clone(b); c[at] ^= 0x01; return c }
	cases := []struct {
		name   string
		tamper func(files []ebd.File)
		want   int
	}{
		{"EBDB title byte", func(f []ebd.File) { f[0].Data = flip(f[0].Data, bytes.Index(f[0].Data, []byte("暴雨"))) }, ebd.ResultSignature},
		{"EBDB last byte", func(f []ebd.File) { f[0].Data = flip(f[0].Data, len(f[0].Data)-2) }, ebd.ResultSignature},
		{"signature value", func(f []ebd.File) {
			f[1].Data = retag(t, f[1].Data, "SignatureValue", func(v string) string {
				b, _ := base64.StdEncoding.DecodeString(v)
				return base64.StdEncoding.EncodeToString(flip(b, 40))
			})
		}, ebd.ResultSignature},
		{"signature cert serial", func(f []ebd.File) {
			f[1].Data = retag(t, f[1].Data, "CertSN", func(string) string { return "000102030406" })
		}, ebd.ResultSignature},
		{"signature related id", func(f []ebd.File) {
			f[1].Data = retag(t, f[1].Data, "EBDID", func(v string) string { return v[:len(v)-1] + "2" })
		}, ebd.ResultSignature},
		{"recording byte", func(f []ebd.File) { f[2].Data = flip(f[2].Data, 100) }, ebd.ResultSignature},
		{"signature removed", func(f []ebd.File) { f[1].Name = "EBDR_other.xml" }, ebd.ResultSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files := build(t, city.Signer, alertEBD(ebdID), ebd.File{Name: "EBDR_alert.mp3", Data: mp3})
			tc.tamper(files)
			p, err := ebd.Open(files, trust, now)
			if err == nil {
				_, err = p.EBD.EBM.Check(p.Files)
			}
			var e *ebd.Error
			if !errors.As(err, &e) || e.Code != tc.want {
				t.Fatalf("got %v, want result code %d", err, tc.want)
			}
		})
	}
}

// retag rewrites the text of the first <tag> element.
func retag(t *testing.T, doc []byte, tag string, fn func(string) string) []byte {
	t.Helper()
	s := string(doc)
	i := strings.Index(s, "<"+tag+">")
	j := strings.Index(s, "</"+tag+">")
	if i < 0 || j < i {
		t.Fatalf("no <%s> in %s", tag, s)
	}
	i += len(tag) + 2
	return []byte(s[:i] + fn(s[i:j]) + s[j:])
}

func TestSignatureRefusals(t *testing.T) {
	city, county, trust := platforms(t)
	cases := []struct {
		name  string
		files func() []ebd.File
		trust *ebd.Trust
		at    time.Time
	}{
		{"unknown platform", func() []ebd.File { return build(t, county.Signer, alertEBD(ebdID)) }, trust, now},
		{"certificate expired", func() []ebd.File { return build(t, city.Signer, alertEBD(ebdID)) }, trust, now.Add(400 * 24 * time.Hour)},
		{"certificate not yet valid", func() []ebd.File { return build(t, city.Signer, alertEBD(ebdID)) }, trust, now.Add(-2 * time.Hour)},
		{"no certificates configured", func() []ebd.File { return build(t, city.Signer, alertEBD(ebdID)) }, nil, now},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ebd.Open(tc.files(), tc.trust, tc.at)
			var e *ebd.Error
			if !errors.As(err, &e) || e.Code != ebd.ResultSignature {
				t.Fatalf("got %v, want result code 4", err)
			}
		})
	}
}

// TestSignatureVariants: the simple signature file and r‖s or DER values.
func TestSignatureVariants(t *testing.T) {
	city, _, trust := platforms(t)
	e := alertEBD(ebdID)
	e.EBM.Content.Auxiliary = nil
	files := build(t, city.Signer, e)
	full := string(files[1].Data)
	i, j := strings.Index(full, "<SignatureValue>")+16, strings.Index(full, "</SignatureValue>")
	raw, _ := base64.StdEncoding.DecodeString(full[i:j])
	simple := `<?xml version="1.0" encoding="UTF-8"?><Signature><Version>1</Version><RelatedEBD><EBDID>` + ebdID +
		`</EBDID></RelatedEBD><CertSN>` + strings.ToUpper(city.SN) + `</CertSN><SignatureAlgorithm>SM2-SM3</SignatureAlgorithm><SignatureValue>` +
		base64.StdEncoding.EncodeToString(raw[10:]) + `</SignatureValue></Signature>`
	files[1].Data = []byte(simple)
	if _, err := ebd.Open(files, trust, now); err != nil {
		t.Fatalf("simple variant with r‖s: %v", err)
	}
}

func TestConnectionCheckUnsigned(t *testing.T) {
	city, _, trust := platforms(t)
	e := ebd.Header("01"+cityEBRID+strings.Repeat("0", 16), ebd.TypeConnectionCheck, cityEBRID, "", now)
	e.Check = &ebd.ConnectionCheck{RptTime: ebd.FormatTime(now)}
	files := build(t, city.Signer, e)
	if len(files) != 1 {
		t.Fatalf("a ConnectionCheck travels unsigned, got %d files", len(files))
	}
	if _, err := ebd.Open(files, trust, now); err != nil {
		t.Fatal(err)
	}
}

func TestEBMCheck(t *testing.T) {
	cases := []struct {
		name string
		edit func(m *ebd.EBM)
		want int
	}{
		{"no EBMID", func(m *ebd.EBM) { m.ID = "" }, ebd.ResultMissing},
		{"bad EBMID", func(m *ebd.EBM) { m.ID = "123" }, ebd.ResultParse},
		{"msg type 9", func(m *ebd.EBM) { m.Basic.MsgType = "9" }, ebd.ResultParse},
		{"no severity", func(m *ebd.EBM) { m.Basic.Severity = "" }, ebd.ResultMissing},
		{"event type short", func(m *ebd.EBM) { m.Basic.EventType = "110" }, ebd.ResultParse},
		{"bad time", func(m *ebd.EBM) { m.Basic.StartTime = "2026/07/01" }, ebd.ResultParse},
		{"end before start", func(m *ebd.EBM) { m.Basic.EndTime = m.Basic.StartTime }, ebd.ResultParse},
		{"no area", func(m *ebd.EBM) { m.Content.AreaCode = nil }, ebd.ResultMissing},
		{"bad area", func(m *ebd.EBM) { m.Content.AreaCode = []string{"4502"} }, ebd.ResultParse},
		{"audio not in packet", func(m *ebd.EBM) { m.Content.Auxiliary[0].Desc = "EBDR_x.mp3" }, ebd.ResultMissing},
		{"audio size wrong", func(m *ebd.EBM) { m.Content.Auxiliary[0].Size = "99" }, ebd.ResultParse},
		{"cancel without reference", func(m *ebd.EBM) { m.Basic.MsgType = "2" }, ebd.ResultMissing},
	}
	files := map[string][]byte{"EBDR_alert.mp3": mp3}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := alertEBD(ebdID).EBM
			tc.edit(m)
			_, err := m.Check(files)
			var e *ebd.Error
			if !errors.As(err, &e) || e.Code != tc.want {
				t.Fatalf("got %v, want result code %d", err, tc.want)
			}
		})
	}
	m := alertEBD(ebdID).EBM
	m.Basic.MsgType = "2"
	m.RelatedInfo = &ebd.RelatedEBM{EBMID: cityEBRID + "202606300007"}
	if a, err := m.Check(files); err != nil || a.Related != m.RelatedInfo.EBMID {
		t.Fatalf("cancel: %+v %v", a, err)
	}
}

func TestNewEBDID(t *testing.T) {
	id, err := ebd.NewEBDID(countyEBRID, now, 42)
	if err != nil || id != "10"+countyEBRID+"20260701"+"00000042" || len(id) != 41 {
		t.Fatalf("%s %v", id, err)
	}
	if _, err := ebd.NewEBDID("123", now, 1); err == nil {
		t.Fatal("a bad EBRID was accepted")
	}
}
