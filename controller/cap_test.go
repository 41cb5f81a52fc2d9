package controller

import (
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/cap"
	"dalaba/controller/store"
	"dalaba/tts/ttstest"
)

const weatherSender = "gx-weather@cma.gov.cn"

// capMsg is a Chinese CAP message from the county weather service.
type capMsg struct {
	sender, id, msgType, refs, status string
	severity, urgency, expires, code  string
}

func (m capMsg) xml() []byte {
	if m.sender == "" {
		m.sender = weatherSender
	}
	if m.msgType == "" {
		m.msgType = "Alert"
	}
	if m.status == "" {
		m.status = "Actual"
	}
	if m.severity == "" {
		m.severity, m.urgency = "Severe", "Immediate"
	}
	if m.expires == "" {
		m.expires = cap.FormatTime(time.Now().Add(2 * time.Hour))
	}
	if m.code == "" {
		m.code = township
	}
	refs := ""
	if m.refs != "" {
		refs = "<references>" + m.refs + "</references>"
	}
	return []byte(fmt.Sprintf(`<?xml version="1.0" encoding="UTF-8"?>
<alert xmlns="urn:oasis:names:tc:emergency:cap:1.2">
  <identifier>%s</identifier>
  <sender>%s</sender>
  <sent>%s</sent>
  <status>%s</status>
  <msgType>%s</msgType>
  <scope>Public</scope>%s
  <info>
    <language>zh-CN</language>
    <category>Met</category>
    <event>暴雨</event>
    <urgency>%s</urgency>
    <severity>%s</severity>
    <certainty>Likely</certainty>
    <expires>%s</expires>
    <senderName>融安县气象台</senderName>
    <headline>融安县气象台发布暴雨橙色预警</headline>
    <description>预计未来三小时长安镇将出现一百毫米以上降雨。</description>
    <instruction>请村民远离河道，注意防范山洪。</instruction>
    <area>
      <areaDesc>长安镇</areaDesc>
      <geocode><valueName>CPEAS Geographic Code</valueName><value>%s</value></geocode>
    </area>
  </info>
</alert>
`, m.id, m.sender, cap.FormatTime(time.Now()), m.status, m.msgType, refs, m.urgency, m.severity, m.expires, m.code))
}

func capRef(id string) string {
	return weatherSender + "," + id + ",2026-07-01T08:00:00+08:00"
}

// postCAP posts a CAP document as cl and decodes a 2xx answer.
func postCAP(t *testing.T, cl *client, doc []byte) (int, CAPResult, []byte) {
	t.Helper()
	var res CAPResult
	status, raw := cl.call(t, "POST", "/api/v1/cap", doc, &res)
	return status, res, raw
}

func capMessages(t *testing.T, h *testController) int {
	t.Helper()
	n, err := h.c.store.CAPMessageCount(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCAPIngest: a Chinese CAP alert from a configured sender becomes a
// draft alert for the mapped area with its text spoken; received twice it
// is processed once; an Update replaces it and a Cancel withdraws it; real
// samples map through the configured geocodes; malformed, hostile and
// unknown input is refused naming the element, and nothing is stored.
func TestCAPIngest(t *testing.T) {
	t.Parallel()
	ttstest.RequireEncoder(t)
	h := startController(t, func(c *Config) {
		c.Sources = []SourceConfig{{Kind: SourceCAP, Sender: weatherSender, Name: "融安县气象台"},
			{Kind: SourceCAP, Sender: "KARO@CLETS.DOJ.CA.GOV"}, {Kind: SourceCAP, Sender: "KSTO@NWS.NOAA.GOV"}}
		c.CAP.Areas = map[string][]string{"SAME=006037": {villageA}, "SAME=006109": {villageA}}
		c.CAP.Events = map[string]string{"暴雨": "11B03"}
	})
	_, termA := h.enrolledTerminal(t, villageA, "大巷村一号")
	officer, approver := h.officer(t), h.approver(t)

	status, res, raw := postCAP(t, officer, capMsg{id: "GX-1"}.xml())
	if status != http.StatusCreated || res.AlertID == "" || res.Status != store.AlertPending || res.Duplicate {
		t.Fatalf("first alert: %d %s", status, raw)
	}
	v := h.view(t, res.AlertID)
	if v.Level != 2 || v.EventType != "11B03" || v.CreatedBy != "cap:"+weatherSender || v.Title != "融安县气象台发布暴雨橙色预警" ||
		len(v.Targets.Areas) != 1 || v.Targets.Areas[0] != township {
		t.Fatalf("alert from CAP: %+v", v.Alert)
	}
	speech := spokenMedia(t, h, v.ID)
	if speech.Duration < 5*time.Second {
		t.Fatalf("the spoken alert lasts %s: the text was not read", speech.Duration)
	}

	// The same message again: answered from the record, nothing new.
	before := h.alertCount(t)
	status, dup, raw := postCAP(t, officer, capMsg{id: "GX-1"}.xml())
	if status != http.StatusOK || !dup.Duplicate || dup.AlertID != res.AlertID || h.alertCount(t) != before {
		t.Fatalf("duplicate: %d %s", status, raw)
	}
	approver.mustCall(t, http.StatusOK, "POST", "/api/v1/alerts/"+res.AlertID+"/approve", decision{Comment: "核实无误"}, nil)
	h.waitDelivery(t, res.AlertID, termA, "playing") // the speech lasts longer than a test waits

	// Update: the first is cancelled, a new one replaces it.
	status, upd, raw := postCAP(t, officer, capMsg{id: "GX-2", msgType: "Update", refs: capRef("GX-1"), severity: "Extreme", urgency: "Immediate"}.xml())
	if status != http.StatusCreated || len(upd.Cancelled) != 1 || upd.Cancelled[0] != res.AlertID {
		t.Fatalf("update: %d %s", status, raw)
	}
	if h.view(t, upd.AlertID).Level != 1 {
		t.Fatal("Extreme/Immediate is not level 1")
	}
	// Cancel the update's draft: it is withdrawn (cancelled).
	status, cnl, raw := postCAP(t, officer, capMsg{id: "GX-3", msgType: "Cancel", refs: capRef("GX-2")}.xml())
	if status != http.StatusOK || len(cnl.Cancelled) != 1 || h.view(t, upd.AlertID).Status != store.AlertCancelled {
		t.Fatalf("cancel: %d %s", status, raw)
	}
	es := h.auditEntries(t, "")
	if !hasAudit(es, "alert.create", "cap:"+weatherSender, res.AlertID) || !hasAudit(es, "cap.receive", officer.name, weatherSender+"/GX-1") ||
		!hasAudit(es, "alert.cancel", "cap:"+weatherSender, upd.AlertID) {
		t.Fatal("audit lacks the CAP entries")
	}

	// A real sample in English, its SAME geocode mapped to a village.
	status, amber, raw := postCAP(t, officer, readSample(t, "oasis-a4-amber-en-es.xml"))
	if status != http.StatusCreated || h.view(t, amber.AlertID).Targets.Areas[0] != villageA || h.view(t, amber.AlertID).Level != 2 {
		t.Fatalf("amber sample: %d %s", status, raw)
	}

	// A Test message is recorded and ignored.
	if status, res, raw := postCAP(t, officer, capMsg{id: "T-1", status: "Test"}.xml()); status != http.StatusOK ||
		res.AlertID != "" || !strings.HasPrefix(res.Outcome, "ignored") {
		t.Fatalf("Test status: %d %s", status, raw)
	}

	records := capMessages(t, h)
	alerts := h.alertCount(t)
	for name, c := range map[string]struct {
		doc    []byte
		status int
		field  string
	}{
		"bad urgency":      {[]byte(strings.Replace(string(capMsg{id: "B1"}.xml()), "<urgency>Immediate", "<urgency>Soon", 1)), 400, "alert/info[0]/urgency"},
		"update, no refs":  {capMsg{id: "B2", msgType: "Update"}.xml(), 400, "alert/references"},
		"cancel unknown":   {capMsg{id: "B3", msgType: "Cancel", refs: capRef("NEVER")}.xml(), 400, "alert/references"},
		"outside county":   {capMsg{id: "B4", code: "450225000000"}.xml(), 400, "alert/info[0]/area"},
		"expired":          {capMsg{id: "B5", expires: "2020-01-01T00:00:00+08:00"}.xml(), 400, "alert/info[0]/expires"},
		"real, expired":    {readSample(t, "oasis-a2-thunderstorm.xml"), 400, "alert/info[0]/expires"},
		"real, no scope":   {readSample(t, "dwd-frost-missing-scope.xml"), 400, "alert/scope"},
		"unknown sender":   {capMsg{id: "B6", sender: "someone@example.org"}.xml(), 403, ""},
		"another's update": {capMsg{id: "B9", sender: "KARO@CLETS.DOJ.CA.GOV", msgType: "Update", refs: capRef("GX-1")}.xml(), 403, ""},
		"billion laughs":   {[]byte(`<!DOCTYPE alert [<!ENTITY a "aaaa"><!ENTITY b "&a;&a;&a;&a;">]>` + string(capMsg{id: "B7"}.xml()[38:])), 400, "document"},
		"external entity":  {[]byte(`<!DOCTYPE alert [<!ENTITY x SYSTEM "file:///etc/passwd">]><alert>&x;</alert>`), 400, "document"},
		"not XML":          {[]byte(`{"alert": true}`), 400, "document"},
		"oversize":         {append(capMsg{id: "B8"}.xml(), make([]byte, cap.MaxSize)...), 413, ""},
	} {
		status, raw := officer.call(t, "POST", "/api/v1/cap", c.doc, nil)
		if status != c.status || (c.field != "" && !strings.Contains(string(raw), `"field": "`+c.field+`"`)) {
			t.Errorf("%s: %d %s, want %d naming %s", name, status, raw, c.status, c.field)
		}
	}
	if capMessages(t, h) != records || h.alertCount(t) != alerts {
		t.Fatal("refused messages left records or alerts behind")
	}
	if !hasAudit(h.auditEntries(t, ""), "cap.refuse", officer.name, "") {
		t.Fatal("refusals are not audited")
	}
}

// spokenMedia reads the first media of an alert and checks it is real audio.
func spokenMedia(t *testing.T, h *testController, id string) audio.Info {
	t.Helper()
	a, err := h.c.store.Alert(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	var cmd struct {
		Alert struct {
			Media []store.Media `json:"media"`
		} `json:"alert"`
	}
	if err := json.Unmarshal(a.Draft, &cmd); err != nil || len(cmd.Alert.Media) == 0 {
		t.Fatalf("alert %s has no media: %v", a.ID, err)
	}
	data, err := os.ReadFile(h.c.media.path(cmd.Alert.Media[0].SHA256))
	if err != nil {
		t.Fatal(err)
	}
	info, err := audio.Probe(data)
	if err != nil {
		t.Fatal(err)
	}
	return info
}

func readSample(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "cap", "testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestCAPSigned: a sender whose policy is "auto" must sign; a message
// signed by its trusted certificate is issued at once, and unsigned,
// tampered or foreign-signed ones are refused and leave nothing behind.
func TestCAPSigned(t *testing.T) {
	t.Parallel()
	ttstest.RequireEncoder(t)
	key, cert := capKeyPair(t, "融安县气象台")
	intruderKey, intruderCert := capKeyPair(t, "intruder")
	certFile := filepath.Join(t.TempDir(), "weather.pem")
	os.WriteFile(certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: cert.Raw}), 0o600)
	h := startController(t, func(c *Config) {
		c.Sources = []SourceConfig{{Kind: SourceCAP, Sender: weatherSender, Issue: IssueAuto, RequireSignature: true}}
		c.CAP.Trust = []CAPTrust{{Sender: weatherSender, CertFile: certFile}}
	})
	_, termA := h.enrolledTerminal(t, villageA, "大巷村一号")
	officer := h.officer(t)
	sign := func(doc []byte, k *rsa.PrivateKey, c *x509.Certificate) []byte {
		s, err := cap.Sign(doc, k, c.Raw)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	signed := sign(capMsg{id: "S-1"}.xml(), key, cert)
	status, res, raw := postCAP(t, officer, signed)
	if status != http.StatusCreated || res.Status != store.AlertActive || !strings.Contains(res.SignedBy, "融安县气象台") {
		t.Fatalf("signed: %d %s", status, raw)
	}
	h.waitDelivery(t, res.AlertID, termA, "playing") // the speech lasts longer than a test waits

	alerts, records := h.alertCount(t), capMessages(t, h)
	for name, doc := range map[string][]byte{
		"unsigned":       capMsg{id: "S-2"}.xml(),
		"tampered":       []byte(strings.Replace(string(sign(capMsg{id: "S-3"}.xml(), key, cert)), "<severity>Severe", "<severity>Extreme", 1)),
		"foreign signer": sign(capMsg{id: "S-4"}.xml(), intruderKey, intruderCert),
	} {
		status, raw := officer.call(t, "POST", "/api/v1/cap", doc, nil)
		if status != http.StatusForbidden || !strings.Contains(string(raw), "signature") {
			t.Errorf("%s: %d %s, want 403 naming the signature", name, status, raw)
		}
	}
	if h.alertCount(t) != alerts || capMessages(t, h) != records {
		t.Fatal("a refused message left something behind")
	}
}

func capKeyPair(t *testing.T, name string) (*rsa.PrivateKey, *x509.Certificate) {
	t.Helper()
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return k, c
}

// TestCAPFeed: a polled Atom feed's messages become alerts once each, however
// often the feed is read.
func TestCAPFeed(t *testing.T) {
	t.Parallel()
	ttstest.RequireEncoder(t)
	var reads atomic.Int32
	mux := http.NewServeMux()
	mux.HandleFunc("/feed.atom", func(w http.ResponseWriter, r *http.Request) {
		reads.Add(1)
		fmt.Fprint(w, `<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom"><id>urn:gx</id><title>融安县预警</title>
  <entry><id>F-1</id><link type="application/cap+xml" href="/cap/F-1.xml"/></entry>
  <entry><id>F-2</id><link href="cap/F-2.xml"/></entry>
</feed>`)
	})
	mux.HandleFunc("/cap/", func(w http.ResponseWriter, r *http.Request) {
		id := strings.TrimSuffix(filepath.Base(r.URL.Path), ".xml")
		w.Write(capMsg{id: id, code: villageA}.xml())
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	h := startController(t, func(c *Config) {
		c.Sources = []SourceConfig{{Kind: SourceCAP, Sender: weatherSender}}
		c.CAP.Feeds = []CAPFeed{{URL: srv.URL + "/feed.atom", IntervalSeconds: 1}}
	})
	h.enrolledTerminal(t, villageA, "大巷村一号")
	waitFor(t, "two alerts from the feed", func() bool { return h.alertCount(t) == 2 })
	seen := reads.Load()
	waitFor(t, "two more reads of the feed", func() bool { return reads.Load() >= seen+2 })
	if n := h.alertCount(t); n != 2 {
		t.Fatalf("%d alerts after reading the feed again, want 2", n)
	}
	es := h.auditEntries(t, "")
	if !hasAudit(es, "cap.receive", "system", weatherSender+"/F-1") || !hasAudit(es, "alert.create", "cap:"+weatherSender, "") {
		t.Fatal("feed ingest not audited")
	}
}

// TestCAPExport: an issued alert exports as valid CAP 1.2 that says what it
// is; one never issued has no export.
func TestCAPExport(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	h.enrolledTerminal(t, villageA, "大巷村一号")
	m := h.upload(t, tone(300*time.Millisecond))
	v := h.send(t, AlertRequest{Level: 2, Title: "山洪预警", EventType: "11B03", Areas: []string{villageA}, Media: []string{m.SHA256}})
	resp, doc := request(t, apiClient, "GET", h.base+"/api/v1/alerts/"+v.ID+"/cap", http.Header{"Authorization": {"Bearer " + h.token}}, nil)
	if resp.StatusCode != http.StatusOK || !strings.HasPrefix(resp.Header.Get("Content-Type"), "application/cap+xml") {
		t.Fatalf("export: %d %s", resp.StatusCode, doc)
	}
	a, err := cap.Parse(doc)
	if err != nil {
		t.Fatalf("export is not valid CAP: %v\n%s", err, doc)
	}
	in := a.Infos[0]
	if a.Identifier != v.ID || a.Status != "Actual" || in.Severity != "Severe" || in.Headline != "山洪预警" ||
		in.Areas[0].AreaDesc != "大巷村" || in.Areas[0].Geocodes[0].Value != villageA || in.EventCodes[0].Value != "11B03" ||
		len(in.Resources) != 1 || !strings.HasSuffix(in.Resources[0].URI, m.SHA256) {
		t.Fatalf("export says: %s", doc)
	}
	var pending AlertView
	h.officer(t).mustCall(t, http.StatusCreated, "POST", "/api/v1/alerts", AlertRequest{Level: 3, Title: "待批", Areas: []string{villageA}, Media: []string{m.SHA256}}, &pending)
	h.admin.refused(t, http.StatusNotFound, "", "GET", "/api/v1/alerts/"+pending.ID+"/cap", nil)
}

func TestCAPLevel(t *testing.T) {
	for _, c := range []struct {
		severity, urgency string
		level             int
	}{
		{"Extreme", "Immediate", 1}, {"Extreme", "Expected", 1}, {"Extreme", "Future", 2},
		{"Severe", "Immediate", 2}, {"Severe", "Past", 3}, {"Moderate", "Expected", 3},
		{"Moderate", "Unknown", 4}, {"Minor", "Immediate", 4}, {"Unknown", "Unknown", 4},
	} {
		if got := CAPLevel(c.severity, c.urgency); got != c.level {
			t.Errorf("%s/%s: level %d, want %d", c.severity, c.urgency, got, c.level)
		}
	}
}
