package sim

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"dalaba/controller"
	"dalaba/protocol"
)

// workerEnv makes the test binary a fleet worker, as `dalaba sim worker` is.
const workerEnv = "DALABA_SIM_TEST_WORKER"

func TestMain(m *testing.M) {
	if os.Getenv(workerEnv) == "1" {
		if err := RunWorker(context.Background(), os.Stdin, os.Stdout); err != nil {
			fmt.Fprintln(os.Stderr, "sim worker:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// testController runs a real controller in a temporary folder and returns
// its address, an admin token and an officer's token.
func testController(t *testing.T) (ctrl *controller.Controller, base, admin, officer string) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	dir := t.TempDir()
	res, err := controller.Init(ctx, controller.InitOptions{DataDir: dir, CountyCode: "450224000000", CountyName: "融安县", Listen: "127.0.0.1:0"}, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := controller.LoadConfig(res.ConfigPath)
	if err != nil {
		t.Fatal(err)
	}
	ctrl, err = controller.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- ctrl.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("controller: %v", err)
		}
	})
	actx, acancel := context.WithTimeout(ctx, 10*time.Second)
	defer acancel()
	addr, err := ctrl.Addr(actx)
	if err != nil {
		t.Fatal(err)
	}
	nu, err := ctrl.CreateUser(ctx, controller.UserRequest{Name: "zhang", Roles: []string{"officer"}, Areas: []string{"450224000000"}})
	if err != nil {
		t.Fatal(err)
	}
	officer, _ = controller.NewSecret()
	if err := ctrl.Store().AddUserToken(ctx, controller.HashSecret(officer), "sim", nu.User.ID, time.Now()); err != nil {
		t.Fatal(err)
	}
	return ctrl, "http://" + addr.String(), res.AdminToken, officer
}

// twoSecondMP3 is a 2 s MP3: a tagless 1 s test file twice over.
func twoSecondMP3(t *testing.T) []byte {
	b, err := os.ReadFile(filepath.Join("..", "audio", "testdata", "tone1k_mono_44k1_notag.mp3"))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Repeat(b, 2)
}

// TestFleet runs 200 simulated terminals in two worker processes against a
// real controller: every terminal comes online, one alert reaches every
// one of them, and each receipt is stored exactly once.
func TestFleet(t *testing.T) {
	ctrl, base, admin, officer := testController(t)
	const n = 200
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	var progress bytes.Buffer
	sum, err := Run(context.Background(), Options{
		API: base, Token: admin, AlertToken: officer, County: "450224000000",
		N: n, Townships: 2, Villages: 5, PerProcess: n / 2, RampPerSec: 1000,
		Audio: twoSecondMP3(t), AudioName: "sim.mp3", Bound: 2 * time.Minute,
		Spawn: func() *exec.Cmd {
			cmd := exec.Command(exe, "-test.run=^$")
			cmd.Env = append(os.Environ(), workerEnv+"=1")
			return cmd
		},
		Progress: &progress,
	})
	var table bytes.Buffer
	if sum != nil {
		sum.Print(&table)
	}
	t.Logf("progress:\n%s\nsummary:\n%s", progress.String(), table.String())
	if err != nil {
		t.Fatal(err)
	}
	if sum.Processes != 2 || sum.Online != n || len(sum.Failed) != 0 {
		t.Fatalf("processes %d, online %d of %d, failed %v", sum.Processes, sum.Online, n, sum.Failed)
	}
	if len(sum.Playing) != n || sum.Counts[protocol.DeliveryDone] != n {
		t.Fatalf("%d of %d terminals played the alert; deliveries %v", len(sum.Playing), n, sum.Counts)
	}
	if len(sum.Paused) != 0 || !strings.Contains(table.String(), "audio paused waiting for media  none") {
		t.Errorf("a 2 s file plays only once whole, so none can pause: %d paused; summary:\n%s", len(sum.Paused), table.String())
	}

	// Every terminal sent each receipt of the alert once, and the
	// controller stored each once.
	reports, err := ctrl.Store().Reports(context.Background(), "", "receipt", 10000)
	if err != nil {
		t.Fatal(err)
	}
	perTerminal := map[string]map[string]int{}
	for _, r := range reports {
		if r.Report.Receipt == nil || r.Report.Receipt.EBMID != sum.AlertID {
			continue
		}
		if perTerminal[r.TerminalID] == nil {
			perTerminal[r.TerminalID] = map[string]int{}
		}
		perTerminal[r.TerminalID][r.Report.Receipt.State]++
	}
	if len(perTerminal) != n {
		t.Fatalf("receipts from %d terminals, want %d", len(perTerminal), n)
	}
	for id, states := range perTerminal {
		for _, st := range []string{protocol.DeliveryAccepted, protocol.DeliveryFetching, protocol.DeliveryPlaying, protocol.DeliveryDone} {
			if states[st] != 1 {
				t.Fatalf("terminal %s: %d %q receipts, want exactly 1 (all: %v)", id, states[st], st, states)
			}
		}
	}
	// Nothing is left running: Run stopped its workers, so the
	// controller sees every connection close.
	deadline := time.Now().Add(15 * time.Second)
	for {
		var h struct {
			Online int `json:"online"`
		}
		if err := newAPI(base, admin).do(context.Background(), "GET", "/api/v1/health", nil, &h); err != nil {
			t.Fatal(err)
		}
		if h.Online == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d terminals still connected 15 s after the run ended", h.Online)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// firstUps fires once, when every member has been up, however often each
// comes and goes.
func TestFirstUps(t *testing.T) {
	fired := make(chan struct{}, 4)
	f := newFirstUps(3, func() { fired <- struct{}{} })
	for _, i := range []int{0, 0, 1, 1, 0} {
		f.saw(i)
	}
	select {
	case <-fired:
		t.Fatal("fired with two of three members seen")
	case <-time.After(50 * time.Millisecond):
	}
	f.saw(2)
	select {
	case <-fired:
	case <-time.After(5 * time.Second):
		t.Fatal("did not fire once all three were seen")
	}
	f.saw(2)
	f.saw(0)
	select {
	case <-fired:
		t.Fatal("fired twice")
	case <-time.After(50 * time.Millisecond):
	}
}

// The summary says how many terminals' audio paused waiting for media
// (the fleet's link or the controller not keeping up), and the longest,
// and the deliveries by state.
func TestSummaryNamesPausedAudio(t *testing.T) {
	s := Summary{Terminals: 3, AlertID: "x", Playing: []time.Duration{time.Second, time.Second, 2 * time.Second},
		Paused: []time.Duration{300 * time.Millisecond, 1520 * time.Millisecond},
		Counts: map[string]int{"playing": 1, "done": 2}}
	var out bytes.Buffer
	s.Print(&out)
	for _, want := range []string{"audio paused waiting for media  2 terminals, the longest 1.52s in all", "deliveries by state             done 2, playing 1"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("summary:\n%s\nwant a line %q", out.String(), want)
		}
	}
	s.Paused = s.Paused[1:]
	out.Reset()
	s.Print(&out)
	if want := "audio paused waiting for media  1 terminal, the longest 1.52s in all"; !strings.Contains(out.String(), want) {
		t.Errorf("summary:\n%s\nwant a line %q", out.String(), want)
	}
}
