package controller

import (
	"bytes"
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"mime/multipart"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emmansun/gmsm/sm3"

	"dalaba/controller/store"
	"dalaba/ebd"
	"dalaba/ebd/ebdtest"
	"dalaba/protocol"
	"dalaba/tts/ttstest"
)

const cityEBRID = "34502000000000000000001" // Liuzhou city platform, the superior

// superior is a real HTTP server standing in for the city platform: it
// verifies every packet the county posts against the county's certificate
// and answers with a receipt signed by the city's key.
type superior struct {
	srv   *httptest.Server
	city  *ebdtest.Platform
	trust *ebd.Trust

	mu      sync.Mutex
	fail    int // answer the next fail requests with HTTP 503
	posts   int
	bad     []string // packets that did not verify
	reports []ebd.StateResponse
}

func newSuperior(t *testing.T, city *ebdtest.Platform, county *ebd.Trust) *superior {
	s := &superior{city: city, trust: county}
	s.srv = httptest.NewServer(http.HandlerFunc(s.serve))
	t.Cleanup(s.srv.Close)
	return s
}

func (s *superior) serve(w http.ResponseWriter, r *http.Request) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.posts++
	if s.fail > 0 {
		s.fail--
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	_, files, err := ebd.ReadRequest(w, r, ebd.DefaultLimits)
	var p *ebd.Packet
	if err == nil {
		p, err = ebd.Open(files, s.trust, time.Now())
	}
	code := ebd.ResultOK
	if err != nil {
		s.bad = append(s.bad, err.Error())
		code = ebd.ResultSignature
	} else if p.EBD.StateResponse != nil {
		s.reports = append(s.reports, *p.EBD.StateResponse)
	}
	id, _ := ebd.NewEBDID(cityEBRID, time.Now(), s.posts)
	e := ebd.Header(id, ebd.TypeResponse, cityEBRID, "", time.Now())
	e.Response = &ebd.Response{ResultCode: code, ResultDesc: "ok"}
	tar, _ := s.city.Signer.Build(e, time.Now())
	w.Write(tar)
}

func (s *superior) states(ebmID string) []int {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []int
	for _, r := range s.reports {
		if r.EBM.EBMID == ebmID {
			out = append(out, r.BrdStateCode)
		}
	}
	return out
}

// ebdRig is a controller configured for the exchange, two villages with a
// terminal each, and the city platform above it.
type ebdRig struct {
	h        *testController
	city     *ebdtest.Platform
	up       *superior
	trust    *ebd.Trust // the county's certificate, to check its answers
	termA    string
	termB    string
	seq      int
	recorded []byte
}

func newEBDRig(t *testing.T) *ebdRig {
	now := time.Now()
	city := ebdtest.New(t, cityEBRID, 0x010203040506, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	county := ebdtest.New(t, "44502240000000000000001", 0x0a0b0c0d0e0f, now.Add(-time.Hour), now.Add(90*24*time.Hour))
	r := &ebdRig{city: city, trust: ebdtest.Trust(t, county)}
	r.up = newSuperior(t, city, r.trust)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	cfg := EBDConfig{TrustCerts: write("superior.pem", city.CertPEM), Key: write("own.key", county.KeyPEM),
		Cert: write("own.pem", county.CertPEM), SuperiorURL: r.up.srv.URL + "/ebd"}
	r.h = startController(t, func(c *Config) {
		c.EBD = cfg
		c.Sources = []SourceConfig{{Kind: SourceEBD, Sender: cityEBRID, Issue: IssueAuto}}
	})
	_, r.termA = r.h.enrolledTerminal(t, villageA, "大巷村一号")
	_, r.termB = r.h.enrolledTerminal(t, villageB, "大将村一号")
	var err error
	if r.recorded, err = os.ReadFile("../audio/testdata/tone1k_at200ms_mono_22k05.mp3"); err != nil {
		t.Fatal(err)
	}
	return r
}

// ebm makes a city EBM of msgType for areas, with the recording.
func (r *ebdRig) ebm(msgType string, seq int, areas ...string) (*ebd.EBD, []ebd.File) {
	r.seq++
	now := time.Now()
	id, _ := ebd.NewEBDID(cityEBRID, now, r.seq)
	e := ebd.Header(id, ebd.TypeEBM, cityEBRID, "44502240000000000000001", now)
	sum := sm3.Sum(r.recorded)
	e.EBM = &ebd.EBM{Version: "1", ID: ebmID(seq),
		Basic: ebd.MsgBasicInfo{MsgType: msgType, SenderName: "柳州市应急广播平台", SenderCode: cityEBRID, SendTime: ebd.FormatTime(now),
			EventType: "11B03", Severity: "2", StartTime: ebd.FormatTime(now.Add(-time.Minute)), EndTime: ebd.FormatTime(now.Add(time.Hour))},
		Content: ebd.MsgContent{LanguageCode: "zho", MsgTitle: "暴雨橙色预警", MsgDesc: "请注意防范山洪地质灾害。", AreaCode: areas,
			Auxiliary: []ebd.Auxiliary{{Type: "2", Desc: "EBDR_rain.mp3", Size: strconv.Itoa(len(r.recorded)), Digest: hex.EncodeToString(sum[:])}}}}
	return e, []ebd.File{{Name: "EBDR_rain.mp3", Data: r.recorded}}
}

func ebmID(seq int) string {
	id, _ := protocol.NewEBMID(cityEBRID, time.Now(), seq)
	return id
}

// post sends a packet tar as the superior platform does and returns the
// county's answer, after checking its signature.
func (r *ebdRig) post(t *testing.T, tar []byte) ebd.EBD {
	t.Helper()
	var body bytes.Buffer
	mw := multipart.NewWriter(&body)
	fw, _ := mw.CreateFormFile("file", "EBDT_x.tar")
	fw.Write(tar)
	mw.Close()
	return r.postBody(t, mw.FormDataContentType(), &body)
}

// postBody posts any body and returns the county's verified answer.
func (r *ebdRig) postBody(t *testing.T, contentType string, body io.Reader) ebd.EBD {
	t.Helper()
	resp, err := http.Post(r.h.base+"/ebd/packets", contentType, body)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "application/x-tar" {
		t.Fatalf("HTTP %d %s: %s", resp.StatusCode, resp.Header.Get("Content-Type"), raw)
	}
	files, err := ebd.ReadTar(bytes.NewReader(raw), ebd.DefaultLimits)
	if err != nil {
		t.Fatal(err)
	}
	p, err := ebd.Open(files, r.trust, time.Now())
	if err != nil {
		t.Fatalf("the county's answer does not verify: %v", err)
	}
	if p.EBD.Response == nil || p.EBD.Type != ebd.TypeResponse {
		t.Fatalf("answer %s without EBDResponse", p.EBD.Type)
	}
	return p.EBD
}

func (r *ebdRig) send(t *testing.T, e *ebd.EBD, files ...ebd.File) ebd.EBD {
	t.Helper()
	tar, err := r.city.Signer.Build(e, time.Now(), files...)
	if err != nil {
		t.Fatal(err)
	}
	return r.post(t, tar)
}

func wantResult(t *testing.T, ans ebd.EBD, code int, related string) {
	t.Helper()
	if ans.Response.ResultCode != code || (related != "" && (ans.RelatedEBD == nil || ans.RelatedEBD.EBDID != related)) {
		t.Fatalf("answer %+v related %+v, want result %d for %s", ans.Response, ans.RelatedEBD, code, related)
	}
}

// TestEBDAlertEndToEnd: a signed EBM from the city becomes an alert that
// plays on the county's terminals; the broadcast state goes upward as it
// changes, signed, retried when the city is unreachable; the same packet
// again is processed once.
func TestEBDAlertEndToEnd(t *testing.T) {
	t.Parallel()
	r := newEBDRig(t)
	r.up.mu.Lock()
	r.up.fail = 1 // the first report meets a busy city platform
	r.up.mu.Unlock()
	e, files := r.ebm("1", 1, "450224102003", "450224102004")
	tar, err := r.city.Signer.Build(e, time.Now(), files...)
	if err != nil {
		t.Fatal(err)
	}
	ans := r.post(t, tar)
	wantResult(t, ans, ebd.ResultOK, e.ID)
	if ans.SRC.EBRID != r.h.c.cfg.PlatformEBRID || ans.DEST == nil || ans.DEST.EBRID != cityEBRID {
		t.Fatalf("answer from %+v to %+v", ans.SRC, ans.DEST)
	}
	link, err := r.h.c.store.EBDAlertByEBM(context.Background(), e.EBM.ID)
	if err != nil {
		t.Fatal(err)
	}
	v := r.h.view(t, link.AlertID)
	if v.Class != protocol.ClassEmergency || v.Level != 2 || v.EventType != "11B03" || v.Title != "暴雨橙色预警" ||
		v.CreatedBy != "ebd:"+cityEBRID || len(v.Targets.Areas) != 2 {
		t.Fatalf("alert %+v", v.Alert)
	}
	r.h.waitDelivery(t, link.AlertID, r.termA, protocol.DeliveryDone)
	r.h.waitDelivery(t, link.AlertID, r.termB, protocol.DeliveryDone)

	// The first report failed; the retry waits its backoff (the clock moves).
	waitFor(t, "a failed state report", func() bool {
		l, _ := r.h.c.store.EBDAlertByEBM(context.Background(), e.EBM.ID)
		return l.Attempts > 0 && l.LastError != ""
	})
	r.h.clock.advance(10 * time.Second)
	waitFor(t, "state 3 (success) reported upward", func() bool {
		s := r.up.states(e.EBM.ID)
		return len(s) > 0 && s[len(s)-1] == 3
	})
	states := r.up.states(e.EBM.ID)
	for i := 1; i < len(states); i++ {
		if states[i] <= states[i-1] {
			t.Fatalf("states went %v, want each report to be a new, later state", states)
		}
	}
	r.up.mu.Lock()
	bad := r.up.bad
	last := r.up.reports[len(r.up.reports)-1]
	r.up.mu.Unlock()
	if len(bad) > 0 {
		t.Fatalf("the city platform could not verify: %v", bad)
	}
	if last.Coverage == nil || last.Coverage.CoverageRate != "1.00" || last.Coverage.ResBrdStat != "2/2" {
		t.Fatalf("final report coverage %+v", last.Coverage)
	}

	// The same packet again (a replay or a resend): answered, not re-run.
	n := r.h.alertCount(t)
	again := r.post(t, tar)
	wantResult(t, again, ebd.ResultOK, e.ID)
	if !strings.Contains(again.Response.ResultDesc, "already received") || r.h.alertCount(t) != n {
		t.Fatalf("replay: %+v, alerts %d → %d", again.Response, n, r.h.alertCount(t))
	}
	var pv ebdPacketsView
	r.h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/ebd/packets", nil, &pv)
	if len(pv.Packets) != 1 || pv.Packets[0].ID != e.ID || pv.Packets[0].ResultCode != ebd.ResultOK {
		t.Fatalf("packets %+v, want the one packet once", pv.Packets)
	}
	es := r.h.auditEntries(t, "")
	if !hasAudit(es, "ebd.receive", "ebd:"+cityEBRID, e.ID) || !hasAudit(es, "alert.send", "ebd:"+cityEBRID, link.AlertID) {
		t.Fatal("audit lacks ebd.receive or alert.send by the city platform")
	}
}

// TestEBDTamperedKept: a packet whose signature fails is answered with
// result 4, kept with its reason under data/ebd/rejected, audited, and
// makes no alert.
func TestEBDTamperedKept(t *testing.T) {
	t.Parallel()
	r := newEBDRig(t)
	e, files := r.ebm("1", 2, "450224102003")
	raw, _ := r.city.Signer.Build(e, time.Now(), files...)
	tampered := bytes.Replace(raw, []byte("暴雨橙色预警"), []byte("暴雨红色预警"), 1)
	if bytes.Equal(tampered, raw) {
		t.Fatal("nothing tampered")
	}
	n := r.h.alertCount(t)
	wantResult(t, r.post(t, tampered), ebd.ResultSignature, e.ID)
	// Not multipart, or a part that is not a tar: parse failure (2), nothing kept.
	if ans := r.postBody(t, "application/x-tar", bytes.NewReader(raw)); ans.Response.ResultCode != ebd.ResultParse || ans.RelatedEBD != nil {
		t.Fatalf("raw tar body: %+v", ans.Response)
	}
	if ans := r.post(t, []byte("not a tar at all")); ans.Response.ResultCode != ebd.ResultParse {
		t.Fatalf("not a tar: %+v", ans.Response)
	}
	if r.h.alertCount(t) != n {
		t.Fatal("a tampered packet made an alert")
	}
	kept, _ := filepath.Glob(filepath.Join(r.h.dir, "ebd", "rejected", "*_"+e.ID+".tar"))
	if len(kept) != 1 {
		t.Fatalf("kept %v, want one tar", kept)
	}
	if b, _ := os.ReadFile(kept[0]); !bytes.Equal(b, tampered) {
		t.Fatal("the kept packet is not the one received")
	}
	note, err := os.ReadFile(strings.TrimSuffix(kept[0], ".tar") + ".txt")
	if err != nil || !strings.Contains(string(note), "signature does not match") {
		t.Fatalf("reason file: %q %v", note, err)
	}
	if !hasAudit(r.h.auditEntries(t, ""), "ebd.reject", "ebd:unverified", e.ID) {
		t.Fatal("no ebd.reject audit entry")
	}
	var v ebdPacketsView
	r.h.admin.mustCall(t, http.StatusOK, "GET", "/api/v1/ebd/packets", nil, &v)
	if !v.Configured || len(v.Rejected) != 1 || v.Rejected[0] != filepath.Base(kept[0]) || len(v.Packets) != 0 {
		t.Fatalf("packets view %+v", v)
	}
	// The folder keeps the newest maxRejectedKept packets.
	dir := filepath.Dir(kept[0])
	for i := range maxRejectedKept + 5 {
		name := fmt.Sprintf("20990101T000000.%03dZ_%d", i, i)
		os.WriteFile(filepath.Join(dir, name+".tar"), []byte("x"), 0o600)
		os.WriteFile(filepath.Join(dir, name+".txt"), []byte("x"), 0o600)
	}
	r.h.c.pruneRejected()
	tars, _ := filepath.Glob(filepath.Join(dir, "*.tar"))
	notes, _ := filepath.Glob(filepath.Join(dir, "*.txt"))
	if len(tars) != maxRejectedKept || len(notes) != maxRejectedKept || slices.Contains(tars, kept[0]) {
		t.Fatalf("after pruning: %d tars, %d notes, oldest kept: %v", len(tars), len(notes), slices.Contains(tars, kept[0]))
	}
	// Both certificates are valid for 90 days: inside the warning window.
	ws := strings.Join(r.h.c.ExpiryWarnings(), "\n")
	if !strings.Contains(ws, "superior platform certificate 010203040506") || !strings.Contains(ws, "this platform's EBD certificate 0a0b0c0d0e0f") {
		t.Fatalf("expiry warnings:\n%s", ws)
	}
}

// TestEBDMessages: cancel, drill, areas, senders and the unsigned
// connection check, each with its result code.
func TestEBDMessages(t *testing.T) {
	t.Parallel()
	r := newEBDRig(t)
	ctx := context.Background()

	// An alert, then its cancel: the alert ends cancelled, state 5 upward.
	e, files := r.ebm("1", 3, "450224102003")
	wantResult(t, r.send(t, e, files...), ebd.ResultOK, e.ID)
	link, err := r.h.c.store.EBDAlertByEBM(ctx, e.EBM.ID)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := r.ebm("2", 4, "450224102003")
	c.EBM.RelatedInfo = &ebd.RelatedEBM{EBMID: e.EBM.ID}
	wantResult(t, r.send(t, c), ebd.ResultOK, c.ID)
	r.h.waitStatus(t, link.AlertID, store.AlertCancelled)
	waitFor(t, "state 5 (cancelled) reported upward", func() bool {
		s := r.up.states(e.EBM.ID)
		return len(s) > 0 && s[len(s)-1] == 5
	})

	// A drill (front-end drill, 4) for the whole city: the county's part plays as a drill.
	d, files := r.ebm("4", 5, "450200000000")
	wantResult(t, r.send(t, d, files...), ebd.ResultOK, d.ID)
	link, _ = r.h.c.store.EBDAlertByEBM(ctx, d.EBM.ID)
	v := r.h.view(t, link.AlertID)
	if !v.Drill || v.MsgType != 4 || len(v.Targets.Areas) != 1 || v.Targets.Areas[0] != county {
		t.Fatalf("drill alert %+v", v.Alert)
	}
	r.h.waitDelivery(t, link.AlertID, r.termA, protocol.DeliveryDone)

	cases := []struct {
		name string
		edit func(e *ebd.EBD)
		want int
		desc string
	}{
		{"area of another county", func(e *ebd.EBD) { e.EBM.Content.AreaCode = []string{"450225000000"} }, ebd.ResultOther, "lies in this county"},
		{"sender not configured", func(e *ebd.EBD) { e.SRC.EBRID = "34501000000000000000001" }, ebd.ResultOther, "not configured"},
		{"cancel of an unknown alert", func(e *ebd.EBD) {
			e.EBM.Basic.MsgType = "2"
			e.EBM.RelatedInfo = &ebd.RelatedEBM{EBMID: ebmID(99)}
		}, ebd.ResultOther, "no alert here"},
		{"missing area", func(e *ebd.EBD) { e.EBM.Content.AreaCode = nil }, ebd.ResultMissing, "AreaCode"},
		{"bad severity", func(e *ebd.EBD) { e.EBM.Basic.Severity = "7" }, ebd.ResultParse, "Severity"},
		{"unhandled type", func(e *ebd.EBD) { e.Type = "EBRDTInfo"; e.EBM = nil }, ebd.ResultOther, "not handled"},
	}
	for i, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e, files := r.ebm("1", 10+i, "450224102003")
			tc.edit(e)
			ans := r.send(t, e, files...)
			wantResult(t, ans, tc.want, e.ID)
			if !strings.Contains(ans.Response.ResultDesc, tc.desc) {
				t.Fatalf("desc %q, want it to say %q", ans.Response.ResultDesc, tc.desc)
			}
		})
	}

	check := ebd.Header("01"+cityEBRID+strings.Repeat("0", 16), ebd.TypeConnectionCheck, cityEBRID, "", time.Now())
	check.Check = &ebd.ConnectionCheck{RptTime: ebd.FormatTime(time.Now())}
	wantResult(t, r.send(t, check), ebd.ResultOK, check.ID)
}

// TestEBDSpokenText: an EBM with no recording is spoken by TTS and plays.
func TestEBDSpokenText(t *testing.T) {
	t.Parallel()
	ttstest.RequireEncoder(t)
	r := newEBDRig(t)
	e, _ := r.ebm("1", 20, "450224102003")
	e.EBM.Content.Auxiliary = nil
	wantResult(t, r.send(t, e), ebd.ResultOK, e.ID)
	link, err := r.h.c.store.EBDAlertByEBM(context.Background(), e.EBM.ID)
	if err != nil {
		t.Fatal(err)
	}
	v := r.h.view(t, link.AlertID)
	if len(v.Targets.Areas) != 1 {
		t.Fatalf("alert %+v", v.Alert)
	}
	r.h.waitDelivery(t, link.AlertID, r.termA, protocol.DeliveryDone)
}

// TestEBDNotConfigured: without platform certificates the endpoint is off.
func TestEBDNotConfigured(t *testing.T) {
	t.Parallel()
	h := startController(t, nil)
	resp, err := http.Post(h.base+"/ebd/packets", "multipart/form-data; boundary=x", strings.NewReader("--x--"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Fatalf("HTTP %d, want 404", resp.StatusCode)
	}
}

func TestEBDConfigValidate(t *testing.T) {
	cases := map[string]struct {
		cfg  EBDConfig
		want string
	}{
		"key without trust":  {EBDConfig{Key: "k.pem"}, "ebd.trust_certs"},
		"trust without key":  {EBDConfig{TrustCerts: "t.pem"}, "ebd.key and ebd.cert"},
		"bad superior url":   {EBDConfig{TrustCerts: "t", Key: "k", Cert: "c", SuperiorURL: "ftp://x"}, "ebd.superior_url"},
		"packet size":        {EBDConfig{MaxPacketMB: -1}, "ebd.max_packet_mb"},
		"superior url alone": {EBDConfig{SuperiorURL: "https://city.example/ebd"}, "ebd.trust_certs"},
	}
	for name, tc := range cases {
		err := tc.cfg.validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error naming %s", name, err, tc.want)
		}
	}
	if err := (EBDConfig{}).validate(); err != nil {
		t.Errorf("empty: %v", err)
	}
}
