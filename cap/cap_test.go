package cap

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func sample(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestRealSamples: the public samples of several countries and languages
// parse and validate (testdata/SOURCES.md says where each comes from).
func TestRealSamples(t *testing.T) {
	for name, want := range map[string]struct {
		id, msgType string
		infos       int
		refs        int
	}{
		"oasis-a1-homeland-security.xml":          {"43b080713727", "Alert", 1, 0},
		"oasis-a2-thunderstorm.xml":               {"KSTO1055887203", "Alert", 1, 0},
		"oasis-a3-earthquake-update.xml":          {"TRI13970876.2", "Update", 1, 1},
		"oasis-a4-amber-en-es.xml":                {"KAR0-0306112239-SW", "Alert", 2, 0},
		"ipaws-adr-test.xml":                      {"309104501346800", "Alert", 1, 0},
		"google-PAAQ-4-tsunami-cancel-update.xml": {"PAAQ-4-mg5a94", "Update", 1, 3},
		"cma-flash-flood-en-zh.xml":               {"13013241600000_20260826160913", "Alert", 2, 0},
	} {
		a, err := Parse(sample(t, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		refs, _ := ParseReferences(a.References)
		if a.Identifier != want.id || a.MsgType != want.msgType || len(a.Infos) != want.infos || len(refs) != want.refs {
			t.Errorf("%s: id %s type %s, %d infos, %d references", name, a.Identifier, a.MsgType, len(a.Infos), len(refs))
		}
	}
	a, _ := Parse(sample(t, "cma-flash-flood-en-zh.xml"))
	if a.Infos[1].Language != "zh-CN" || a.Infos[1].Areas[0].Geocodes[0].Value != "130132000000" {
		t.Fatalf("Chinese info: %+v", a.Infos[1])
	}
}

// TestMalformed: each broken message is refused with an error naming the
// element that is wrong.
func TestMalformed(t *testing.T) {
	base := string(sample(t, "oasis-a2-thunderstorm.xml"))
	edit := func(old, new string) []byte {
		if !strings.Contains(base, old) {
			t.Fatalf("sample lacks %q", old)
		}
		return []byte(strings.Replace(base, old, new, 1))
	}
	for name, c := range map[string]struct {
		data    []byte
		element string
	}{
		"real DWD without scope":     {sample(t, "dwd-frost-missing-scope.xml"), "alert/scope"},
		"no identifier":              {edit("<identifier>KSTO1055887203</identifier>", ""), "alert/identifier"},
		"identifier with space":      {edit("KSTO1055887203", "KSTO 1055887203"), "alert/identifier"},
		"sender with comma":          {edit("KSTO@NWS.NOAA.GOV", "KSTO,NWS"), "alert/sender"},
		"no sent":                    {edit("<sent>2003-06-17T14:57:00-07:00</sent>", ""), "alert/sent"},
		"sent without offset":        {edit("2003-06-17T14:57:00-07:00</sent>", "2003-06-17T14:57:00</sent>"), "alert/sent"},
		"bad status":                 {edit("<status>Actual</status>", "<status>Real</status>"), "alert/status"},
		"bad msgType":                {edit("<msgType>Alert</msgType>", "<msgType>Warning</msgType>"), "alert/msgType"},
		"bad scope":                  {edit("<scope>Public</scope>", "<scope>Everyone</scope>"), "alert/scope"},
		"restricted, no restriction": {edit("<scope>Public</scope>", "<scope>Restricted</scope>"), "alert/restriction"},
		"private, no addresses":      {edit("<scope>Public</scope>", "<scope>Private</scope>"), "alert/addresses"},
		"update, no references":      {edit("<msgType>Alert</msgType>", "<msgType>Update</msgType>"), "alert/references"},
		"cancel, no references":      {edit("<msgType>Alert</msgType>", "<msgType>Cancel</msgType>"), "alert/references"},
		"malformed references":       {edit("<scope>Public</scope>", "<scope>Public</scope><references>KSTO@NWS.NOAA.GOV,only-two</references>"), "alert/references"},
		"reference sent bad":         {edit("<scope>Public</scope>", "<scope>Public</scope><references>a,b,yesterday</references>"), "alert/references"},
		"no category":                {edit("<category>Met</category>", ""), "alert/info[0]/category"},
		"bad category":               {edit("<category>Met</category>", "<category>Weather</category>"), "alert/info[0]/category"},
		"no event":                   {edit("<event>SEVERE THUNDERSTORM</event>", ""), "alert/info[0]/event"},
		"bad urgency":                {edit("<urgency>Immediate</urgency>", "<urgency>Now</urgency>"), "alert/info[0]/urgency"},
		"no severity":                {edit("<severity>Severe</severity>", ""), "alert/info[0]/severity"},
		"bad certainty":              {edit("<certainty>Observed</certainty>", "<certainty>Very Likely</certainty>"), "alert/info[0]/certainty"},
		"bad responseType":           {edit("<responseType>Shelter</responseType>", "<responseType>Run</responseType>"), "alert/info[0]/responseType"},
		"bad expires":                {edit("<expires>2003-06-17T16:00:00-07:00</expires>", "<expires>4pm</expires>"), "alert/info[0]/expires"},
		"area without areaDesc":      {[]byte(strings.Replace(base, base[strings.Index(base, "<areaDesc>"):strings.Index(base, "</areaDesc>")+len("</areaDesc>")], "", 1)), "alert/info[0]/area[0]/areaDesc"},
		"CAP 1.1 namespace":          {edit("cap:1.2", "cap:1.1"), "alert"},
		"not an alert":               {[]byte(`<feed xmlns="http://www.w3.org/2005/Atom"/>`), "feed"},
		"truncated":                  {[]byte(base[:len(base)/2]), ""},
		"empty":                      {nil, "document"},
	} {
		before := bytes.Clone(c.data)
		_, err := Parse(c.data)
		var ce *Error
		if !errors.As(err, &ce) || (c.element != "" && ce.Element != c.element) {
			t.Errorf("%s: %v, want an error naming %s", name, err, c.element)
		}
		if !bytes.Equal(before, c.data) {
			t.Errorf("%s: input changed", name)
		}
	}
}

func TestReferences(t *testing.T) {
	refs, err := ParseReferences(" a@b,ID-1,2026-07-01T08:00:00+08:00\n c@d,ID-2,2026-07-01T09:00:00-00:00 ")
	if err != nil || len(refs) != 2 || refs[1] != (Reference{"c@d", "ID-2", "2026-07-01T09:00:00-00:00"}) {
		t.Fatalf("%+v, %v", refs, err)
	}
	for _, bad := range []string{"a,b", "a,b,c,d", ",b,2026-07-01T08:00:00+08:00", "a,,2026-07-01T08:00:00+08:00"} {
		if _, err := ParseReferences(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// TestMarshalRoundTrip: every sample written back out parses to the same
// alert.
func TestMarshalRoundTrip(t *testing.T) {
	for _, name := range []string{"oasis-a2-thunderstorm.xml", "oasis-a4-amber-en-es.xml", "cma-flash-flood-en-zh.xml"} {
		a, err := Parse(sample(t, name))
		if err != nil {
			t.Fatal(err)
		}
		out, err := Marshal(a)
		if err != nil {
			t.Fatal(err)
		}
		b, err := Parse(out)
		if err != nil {
			t.Fatalf("%s: written form does not parse: %v\n%s", name, err, out)
		}
		if !equalAlerts(a, b) {
			t.Fatalf("%s: round trip changed the alert", name)
		}
	}
	if _, err := Marshal(&Alert{Identifier: "x"}); err == nil {
		t.Fatal("an invalid alert was written")
	}
}

func equalAlerts(a, b *Alert) bool {
	x, _ := Marshal(a)
	y, _ := Marshal(b)
	return bytes.Equal(x, y)
}

func TestDocument(t *testing.T) {
	isAlert, _, err := Document(sample(t, "oasis-a1-homeland-security.xml"))
	if err != nil || !isAlert {
		t.Fatalf("alert: %v %v", isAlert, err)
	}
	feed := []byte(`<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <id>urn:feed</id>
  <entry><id>e1</id><updated>2026-07-01T08:00:00+08:00</updated>
    <link rel="alternate" type="text/html" href="https://example.org/e1.html"/>
    <link rel="related" type="application/cap+xml" href="/cap/e1.xml"/></entry>
  <entry><id>e2</id><link href="e2.xml"/></entry>
</feed>`)
	isAlert, entries, err := Document(feed)
	if err != nil || isAlert || len(entries) != 2 || entries[0].Link != "/cap/e1.xml" || entries[1].Link != "e2.xml" {
		t.Fatalf("feed: %v %+v %v", isAlert, entries, err)
	}
	if _, _, err := Document([]byte(`<feed xmlns="http://www.w3.org/2005/Atom"><entry><id>x</id></entry></feed>`)); err == nil {
		t.Fatal("an entry without a link was accepted")
	}
	if _, _, err := Document([]byte(`<rss/>`)); err == nil {
		t.Fatal("RSS was taken for CAP")
	}
}

// BenchmarkParse: the hostile-XML check, decode and validation of a
// two-language CAP message.
func BenchmarkParse(b *testing.B) {
	data := sample(b, "oasis-a4-amber-en-es.xml")
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse(data); err != nil {
			b.Fatal(err)
		}
	}
}
