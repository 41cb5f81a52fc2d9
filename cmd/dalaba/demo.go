package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	"dalaba/audio"
	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/protocol"
	"dalaba/terminal"
)

// demoAreas are a few townships and villages of Rong'an county (融安县,
// 450224). Township codes follow the county's; the village codes are
// illustrative.
var demoAreas = []store.Area{
	{Code: "450224100000", Name: "长安镇", Parent: "450224000000"},
	{Code: "450224100201", Name: "大巷村", Parent: "450224100000"},
	{Code: "450224104000", Name: "大将镇", Parent: "450224000000"},
	{Code: "450224104201", Name: "大将村", Parent: "450224104000"},
}

var demoTerminals = []struct{ area, name string }{
	{"450224100201", "大巷村1号"},
	{"450224100201", "大巷村2号"},
	{"450224104201", "大将村1号"},
}

func cmdDemo(ctx context.Context, args []string) error {
	fs := newFlags("demo")
	once := fs.Bool("once", false, "send one signed test alert, print the deliveries, exit 0 only if every terminal played it")
	listen := fs.String("listen", "127.0.0.1:8440", "controller address (127.0.0.1:0 picks a free port)")
	dir := fs.String("data", "", "folder for the demo's data (default: a new temporary folder)")
	verbose := fs.Bool("v", false, "print the controller's and terminals' logs")
	if _, err := parse(fs, args); err != nil {
		return err
	}
	if *dir == "" {
		d, err := os.MkdirTemp("", "dalaba-demo-")
		if err != nil {
			return err
		}
		*dir = d
	}
	logFile, err := os.Create(filepath.Join(*dir, "demo.log"))
	if err != nil {
		return err
	}
	defer logFile.Close()
	var logOut io.Writer = logFile
	if *verbose {
		logOut = io.MultiWriter(logFile, os.Stderr)
	}
	log := slog.New(slog.NewTextHandler(logOut, &slog.HandlerOptions{Level: slog.LevelInfo}))

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ctrl, token, err := startDemoController(ctx, *dir, *listen, log)
	if err != nil {
		return err
	}
	addr, err := ctrl.Addr(ctx)
	if err != nil {
		return err
	}
	base := "http://" + addr.String()
	audioOut, err := startDemoTerminals(ctx, ctrl, *dir, "ws://"+addr.String()+"/v1/terminal", log)
	if err != nil {
		return err
	}
	if err := waitOnline(ctx, ctrl.Store(), len(demoTerminals), 20*time.Second); err != nil {
		return err
	}
	people, err := demoPeople(ctx, ctrl)
	if err != nil {
		return err
	}
	fmt.Printf("Dalaba demo is running (data and logs in %s)\n  API:       %s   (e.g. curl -H \"Authorization: Bearer %s\" %s/api/v1/terminals)\n",
		*dir, base, token, base)
	fmt.Printf("  console:   %s/   (web console in a browser; sign in as one of the people below)\n", base)
	fmt.Printf("  terminals: %d online, relay boards simulated, audio → %s\n  sign in as (passwords made for this demo, shown once):\n", len(demoTerminals), audioOut)
	for _, p := range people {
		fmt.Printf("    %-8s %-22s %-11s %s\n", p.name, p.password, strings.Join(p.roles, ","), p.what)
	}
	fmt.Printf("  try:       dalaba login --url %s --user zhang   then   dalaba alert send --url %s --area 450224000000 --audio FILE.mp3\n", base, base)
	fmt.Printf("             dalaba login --url %s --user li      then   dalaba approvals --url %s ; dalaba alert approve ID --comment 同意 --url %s\n", base, base, base)
	if !*once {
		fmt.Println("Press Ctrl-C to stop.")
		<-ctx.Done()
		return nil
	}
	return demoAlert(ctx, ctrl, &client{base: base, token: token, http: httpClient()})
}

// startDemoController initialises a fresh installation and runs it.
func startDemoController(ctx context.Context, dir, listen string, log *slog.Logger) (*controller.Controller, string, error) {
	data := filepath.Join(dir, "controller")
	res, err := controller.Init(ctx, controller.InitOptions{DataDir: data, CountyCode: "450224000000", CountyName: "融安县", Listen: listen}, time.Now())
	if err != nil {
		return nil, "", err
	}
	cfg, err := controller.LoadConfig(res.ConfigPath)
	if err != nil {
		return nil, "", err
	}
	ctrl, err := controller.New(cfg, log.With("component", "controller"))
	if err != nil {
		return nil, "", err
	}
	for _, a := range demoAreas {
		if err := ctrl.Store().PutArea(ctx, a); err != nil {
			return nil, "", err
		}
	}
	errc := make(chan error, 1)
	go func() { errc <- ctrl.Run(ctx) }()
	select {
	case err := <-errc:
		if err != nil && strings.Contains(err.Error(), "address already in use") {
			return nil, "", fmt.Errorf("%w (another demo running? use --listen 127.0.0.1:0)", err)
		}
		return nil, "", err
	case <-readyOrTimeout(ctx, ctrl):
	}
	return ctrl, res.AdminToken, nil
}

func readyOrTimeout(ctx context.Context, ctrl *controller.Controller) <-chan struct{} {
	ch := make(chan struct{})
	go func() {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		ctrl.Addr(c)
		close(ch)
	}()
	return ch
}

// startDemoTerminals enrolls and runs the demo's terminal daemons, each with
// its own key, data folder and simulated relay board. Audio goes to the
// sound system when one answers, else to WAV files.
func startDemoTerminals(ctx context.Context, ctrl *controller.Controller, dir, url string, log *slog.Logger) (string, error) {
	output, where := "wav", filepath.Join(dir, "terminal-N", "audio", "*.wav")
	if soundServer() {
		output, where = "oto", "the sound server (terminal 1), WAV files (the others)"
	}
	for i, dt := range demoTerminals {
		res, err := ctrl.Enroll(ctx, "demo", controller.EnrollRequest{AreaCode: dt.area, Name: dt.name})
		if err != nil {
			return "", err
		}
		tdir := filepath.Join(dir, fmt.Sprintf("terminal-%d", i+1))
		cfg := terminal.DefaultConfig()
		cfg.Controllers = []string{url}
		cfg.DataDir = tdir
		cfg.EnrollToken = res.EnrollToken
		cfg.Name = dt.name
		cfg.Relay.Protocol = "sim"
		cfg.Audio.Output = output
		cfg.Audio.Dir = filepath.Join(tdir, "audio")
		cfg.WarmupMS, cfg.TailMS = 1000, 500
		if output == "oto" && i > 0 {
			cfg.Audio.Output = "wav" // one process has one sound card context
		}
		if err := cfg.Validate(); err != nil {
			return "", err
		}
		t := terminal.New(cfg, log.With("component", "terminal", "name", dt.name))
		go func() {
			if err := t.Run(ctx); err != nil {
				log.Error("terminal stopped", "name", dt.name, "err", err)
			}
		}()
	}
	return where, nil
}

// soundServer reports whether a PulseAudio server is there to play to.
// Probing the sound card itself would print ALSA's complaints when there is
// none, and a process may open the audio context only once.
func soundServer() bool {
	if os.Getenv("PULSE_SERVER") != "" {
		return true
	}
	_, err := os.Stat(filepath.Join(os.Getenv("XDG_RUNTIME_DIR"), "pulse", "native"))
	return os.Getenv("XDG_RUNTIME_DIR") != "" && err == nil
}

func waitOnline(ctx context.Context, st *store.Store, n int, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		ts, err := st.Terminals(ctx, "")
		if err != nil {
			return err
		}
		online := 0
		for _, t := range ts {
			if t.State != "offline" && t.Status == store.TerminalActive {
				online++
			}
		}
		if online >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("only %d of %d demo terminals came online within %s; see demo.log", online, n, limit)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// demoPerson is an operator the demo creates, with a password made for it.
type demoPerson struct {
	name, password, what string
	roles, areas         []string
}

// demoPeople creates the demo's operators: an officer and an approver for
// the county, a cadre for one village, a technician.
func demoPeople(ctx context.Context, ctrl *controller.Controller) ([]demoPerson, error) {
	people := []demoPerson{
		{name: "zhang", roles: []string{"officer"}, areas: []string{"450224000000"}, what: "县应急局 officer: sends alerts"},
		{name: "li", roles: []string{"approver"}, areas: []string{"450224000000"}, what: "approver: the second person"},
		{name: "wang", roles: []string{"cadre"}, areas: []string{"450224100201"}, what: "大巷村 cadre: daily notices to that village"},
		{name: "chen", roles: []string{"technician"}, areas: []string{"450224000000"}, what: "technician: terminals"},
	}
	for i, p := range people {
		nu, err := ctrl.CreateUser(ctx, controller.UserRequest{Name: p.name, Roles: p.roles, Areas: p.areas})
		if err != nil {
			return nil, err
		}
		// Demo users sign in with the one-time password as their own, so a
		// newcomer is not asked to change it first.
		if err := ctrl.SetUserPassword(ctx, nu.User.Name, nu.Password); err != nil {
			return nil, err
		}
		people[i].password = nu.Password
	}
	return people, nil
}

// demoAlert sends a signed test alert (a 2 s tone) to the whole county, as
// the officer, has the approver approve it, and watches it to the end.
func demoAlert(ctx context.Context, ctrl *controller.Controller, c *client) error {
	m, err := ctrl.AddMedia(ctx, "demo-tone.wav", audio.ToneWAV(880, 2*time.Second, 22050, 0.5))
	if err != nil {
		return err
	}
	a, err := ctrl.CreateAlert(ctx, "zhang", controller.AlertRequest{Level: 4, Title: "演示：测试音", Areas: []string{"450224000000"},
		Media: []string{m.SHA256}, ValidMinutes: 5, MsgType: protocol.MsgTerminalDrill, EventType: "00000"})
	if err != nil {
		return err
	}
	fmt.Printf("\nzhang (officer) composed alert %s; it waits for a second person.\n", a.ID)
	if _, err := ctrl.Decide(ctx, "li", a.ID, true, "演示：同意播发"); err != nil {
		return err
	}
	fmt.Println("li (approver) approved it; it is signed and sent.")
	wctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	ok, err := watchAlert(wctx, c, a.ID, os.Stdout)
	if err != nil {
		return fmt.Errorf("watch alert %s: %w", a.ID, err)
	}
	if !ok {
		return errors.New("not every terminal reported done")
	}
	fmt.Println("\nEvery terminal switched its relay on, played the alert and reported done.")
	return nil
}
