package e2e

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/protocol"
)

// netLink is a network namespace joined to the root namespace by a veth
// pair, its two ends on a /30 of their own: a terminal started in it
// reaches the controller only over this link, which the test can cut and
// restore without touching any process.
type netLink struct {
	t          *testing.T
	ns, host   string // the namespace, and the veth end in the root namespace
	hostIP, IP string // the root end's address, the namespace end's address
}

// newNetLink makes namespace number i (0..63) of this test process.
func newNetLink(t *testing.T, i int) *netLink {
	t.Helper()
	needRoot(t, "create network namespaces")
	if _, err := exec.LookPath("ip"); err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("iproute2 is required (scripts/test-deps.sh installs it): ip not found")
		}
		t.Skip("iproute2 is required: apt-get install iproute2")
	}
	tag := fmt.Sprintf("%d%d", os.Getpid()%100000, i)
	l := &netLink{t: t, ns: "dalaba" + tag, host: "dlh" + tag,
		hostIP: fmt.Sprintf("10.231.%d.1", (os.Getpid()%4)*64+i), IP: fmt.Sprintf("10.231.%d.2", (os.Getpid()%4)*64+i)}
	peer := "dlp" + tag
	t.Cleanup(func() {
		exec.Command("ip", "link", "del", l.host).Run() // takes the peer with it
		exec.Command("ip", "netns", "del", l.ns).Run()
	})
	for _, args := range [][]string{
		{"netns", "add", l.ns},
		{"link", "add", l.host, "type", "veth", "peer", "name", peer},
		{"link", "set", peer, "netns", l.ns},
		{"addr", "add", l.hostIP + "/30", "dev", l.host},
		{"link", "set", l.host, "up"},
		{"-n", l.ns, "addr", "add", l.IP + "/30", "dev", peer},
		{"-n", l.ns, "link", "set", peer, "up"},
		{"-n", l.ns, "link", "set", "lo", "up"},
	} {
		l.ip(args...)
	}
	return l
}

func (l *netLink) ip(args ...string) {
	l.t.Helper()
	if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
		l.t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
}

// cut brings the root end of the link down: packets stop both ways.
func (l *netLink) cut() { l.ip("link", "set", l.host, "down") }

// restore brings it up again.
func (l *netLink) restore() { l.ip("link", "set", l.host, "up") }

// inNamespace makes ft's process start inside l's namespace, dialling the
// controller at the root end of the link.
func (ft *faultTerminal) inNamespace(l *netLink) {
	port := ft.f.addr[strings.LastIndex(ft.f.addr, ":")+1:]
	ft.cfg["controllers"] = []string{"ws://" + l.hostIP + ":" + port + "/v1/terminal"}
	ft.netns = l.ns
}

// linkCut is how long the link is down in TestFaultLinkCut.
const linkCut = 60 * time.Second

// TestFaultLinkCut (scenario 3): a terminal in its own network namespace
// plays an alert; its link is cut (veth down) while the alert plays and
// stays down for 60 s, across a scheduled program's start. The alert plays
// to its end and the program plays on its minute, both locally; when the
// link returns the terminal reconnects and its receipts arrive, in the
// order they happened, none lost or duplicated: the alert is done, the
// program's occurrence played.
func TestFaultLinkCut(t *testing.T) {
	t.Parallel() // mostly waiting: overlaps the other waiting tests
	l := newNetLink(t, 0)
	f := newCtlField(t, true).field
	f.noApproval()
	officer := f.person("zhao", "officer", county)
	cadre := f.person("qian", "cadre", village)
	ft := f.newFaultTerminal("大巷村1号", "netcut", nil, map[string]any{"heartbeat_seconds": 5})
	ft.inNamespace(l)
	ft.restart()
	waitOnline(t, f.admin, ft.fieldTerminal)

	// A program on a minute at least 25 s away; the alert plays before it.
	tone := audio.ToneWAV(faultShortHz, 3*time.Second, 44100, 0.5)
	news := filepath.Join(f.dir, "news.wav")
	if err := os.WriteFile(news, tone, 0o644); err != nil {
		t.Fatal(err)
	}
	loc, _ := time.LoadLocation("Asia/Shanghai")
	slot := time.Now().Truncate(time.Minute).Add(time.Minute)
	if time.Until(slot) < 25*time.Second {
		slot = slot.Add(time.Minute)
	}
	cadre.run("program", "add", "--title", "午间新闻", "--audio", news, "--terminal", ft.id, "--once", slot.In(loc).Format("2006-01-02 15:04"))
	alertTone := officer.upload(t, "alert.wav", audio.ToneWAV(faultLongHz, 8*time.Second, 44100, 0.5))
	time.Sleep(time.Until(slot.Add(-20 * time.Second)))
	alert := sendAlert(t, officer.api, "断网测试", alertTone, ft)
	waitDelivery(t, officer.api, alert, ft.id, protocol.DeliveryPlaying, 10*time.Second)

	l.cut()
	cutAt := time.Now()
	t.Logf("link cut at %s; program at %s", cutAt.Format(time.TimeOnly), slot.Format(time.TimeOnly))
	// The alert plays on and ends; the program starts on its minute.
	eventually(t, 15*time.Second, "the alert to end locally (relay OFF)", func() bool { return !ft.board.On(1) })
	eventually(t, time.Until(slot)+10*time.Second, "the program to switch the relay ON", func() bool {
		return slices.Contains(ft.opsSince(slot.Add(-5*time.Second)), "on")
	})
	if d := delivery(t, officer.api, alert, ft.id); d.State != protocol.DeliveryPlaying {
		t.Errorf("during the cut the controller shows the alert %s, want still playing (nothing heard since)", d.State)
	}
	time.Sleep(time.Until(cutAt.Add(linkCut)))
	l.restore()
	restored := time.Now()

	// The reconnect backoff is capped at 60 s; a report queued in the
	// socket before the cut may arrive by TCP retransmission even sooner.
	waitDelivery(t, officer.api, alert, ft.id, protocol.DeliveryDone, 90*time.Second)
	var occ []protocol.Occurrence
	eventually(t, 90*time.Second, "the program's occurrence report", func() bool {
		occ = occ[:0]
		for _, r := range reports(t, f.admin, ft.id, protocol.ReportOccurrence) {
			occ = append(occ, *r.Report.Occurrence)
		}
		return len(occ) > 0
	})
	t.Logf("every report back %s after the link returned", time.Since(restored).Round(time.Second))
	if len(occ) != 1 || occ[0].State != protocol.OccurrencePlayed {
		t.Errorf("program occurrences %+v, want one played", occ)
	}
	if got := receiptStates(t, officer.api, ft.id, alert); !slices.Equal(got, []string{"accepted", "fetching", "playing", "done"}) {
		t.Errorf("alert receipts %v, want accepted, fetching, playing, done: once each, in order", got)
	}
	// Every report once, in the order the terminal made them.
	all := reports(t, f.admin, ft.id, "")
	for i := 1; i < len(all); i++ {
		a, b := all[i-1].Report, all[i].Report
		if a.Seq == b.Seq {
			t.Errorf("report %d stored twice", a.Seq)
		}
		if b.At.Before(a.At) {
			t.Errorf("report %d (%s at %s) is stored after report %d (%s at %s)", b.Seq, b.Kind, b.At, a.Seq, a.Kind, a.At)
		}
	}
	var during int
	for _, r := range all {
		if r.Report.At.After(cutAt) && r.Report.At.Before(restored) {
			during++
		}
	}
	if during == 0 {
		t.Error("no report made during the cut reached the controller")
	}
	t.Logf("%d reports made during the cut arrived after it", during)
}
