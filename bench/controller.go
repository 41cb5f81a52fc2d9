package bench

import (
	"bufio"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/internal/sigprof"
)

// County is the county every benchmark installation is made for.
const County = "450224000000"

// ctrlProc is a controller in its own process, so that its memory and CPU
// can be read from /proc.
type ctrlProc struct {
	self    string // this program, which runs the controller with "controller CONFIG"
	cfgPath string
	base    string // http://127.0.0.1:port
	admin   string
	officer string
	cmd     *exec.Cmd
	out     *bufio.Reader // answers to SIGUSR1
	done    chan error
}

// sent asks the controller how many bytes it has written to terminals.
func (c *ctrlProc) sent() (int64, error) {
	if err := c.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return 0, err
	}
	line, err := c.out.ReadString('\n')
	if err != nil {
		return 0, err
	}
	return strconv.ParseInt(strings.TrimSpace(line), 10, 64)
}

// newController initialises an installation in dir with an officer's token.
func newController(ctx context.Context, self, dir string) (*ctrlProc, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	res, err := controller.Init(ctx, controller.InitOptions{DataDir: dir, CountyCode: County, CountyName: "融安县", Listen: addr}, time.Now())
	if err != nil {
		return nil, err
	}
	st, err := store.Open(filepath.Join(dir, controller.DatabaseFile))
	if err != nil {
		return nil, err
	}
	defer st.Close()
	u, err := st.CreateUser(ctx, store.User{Name: "bench", Display: "bench", Roles: []string{"officer"}, Areas: []string{County}, Password: "!"}, time.Now())
	if err != nil {
		return nil, err
	}
	officer, _ := controller.NewSecret()
	if err := st.AddUserToken(ctx, controller.HashSecret(officer), "bench", u.ID, time.Now()); err != nil {
		return nil, err
	}
	return &ctrlProc{self: self, cfgPath: res.ConfigPath, base: "http://" + addr, admin: res.AdminToken, officer: officer}, nil
}

// start runs the controller and waits until it answers.
func (c *ctrlProc) start(ctx context.Context) error {
	c.cmd = exec.Command(c.self, "controller", c.cfgPath)
	c.cmd.Stderr = os.Stderr
	out, err := c.cmd.StdoutPipe()
	if err != nil {
		return err
	}
	c.out = bufio.NewReader(out)
	if err := c.cmd.Start(); err != nil {
		return err
	}
	c.done = make(chan error, 1)
	go func() { c.done <- c.cmd.Wait() }()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if resp, err := http.Get(c.base + "/api/v1/health"); err == nil {
			resp.Body.Close()
			return nil
		}
		select {
		case err := <-c.done:
			return fmt.Errorf("controller exited: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	return fmt.Errorf("controller did not answer within 30 s")
}

func (c *ctrlProc) pid() int { return c.cmd.Process.Pid }

// stop ends the controller: SIGTERM, then a kill after 20 s.
func (c *ctrlProc) stop() {
	if c.cmd == nil || c.cmd.Process == nil {
		return
	}
	c.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-c.done:
	case <-time.After(20 * time.Second):
		c.cmd.Process.Kill()
		<-c.done
	}
	c.cmd = nil
}

// RunController is the child: a controller from the config at path, until
// SIGTERM or SIGINT.
func RunController(path string) error {
	cfg, err := controller.LoadConfig(path)
	if err != nil {
		return err
	}
	ctrl, err := controller.New(cfg, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError})))
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	sigprof.Listen(os.Getenv("DALABA_BENCH_PROFILE"))
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	go func() { // the parent asks how many bytes went to terminals
		for range usr1 {
			fmt.Println(ctrl.BytesSent())
		}
	}()
	return ctrl.Run(ctx)
}
