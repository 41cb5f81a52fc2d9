package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"dalaba/controller"
	"dalaba/controller/store"
	"dalaba/protocol"
	"dalaba/terminal/relay/relaysim"
)

// faultTerminal is a terminal process whose relay line can be pulled and
// plugged back: its config names a symbolic link that points at the
// current pty, and the board (with its frame log) outlives the line.
type faultTerminal struct {
	*fieldTerminal
	f       *field
	env     []string
	port    string // the link the terminal opens
	line    *relaysim.Line
	serving context.CancelFunc
	netns   string // the network namespace it runs in; "": the root one
}

// faultTerminal enrolls a terminal into the village on an LCUS board and
// starts it with env; extra overrides config keys.
func (f *field) faultTerminal(name, proto string, env []string, extra map[string]any) *faultTerminal {
	ft := f.newFaultTerminal(name, proto, env, extra)
	ft.restart()
	return ft
}

// newFaultTerminal is faultTerminal without the start.
func (f *field) newFaultTerminal(name, proto string, env []string, extra map[string]any) *faultTerminal {
	t := f.t
	t.Helper()
	out := f.cli("terminal", "enroll", "--area", village, "--name", name)
	ft := &faultTerminal{f: f, env: env, port: filepath.Join(f.dir, proto+".tty"), fieldTerminal: &fieldTerminal{
		name: name, proto: proto, id: enrolledRe.FindStringSubmatch(out)[1], cfgPath: filepath.Join(f.dir, proto+".json"),
		board: relaysim.New("lcus", 1),
	}}
	ft.plugIn()
	ft.cfg = map[string]any{
		"controllers":  []string{"ws://" + f.addr + "/v1/terminal"},
		"data_dir":     filepath.Join(f.dir, "terminal-"+proto),
		"enroll_token": enrollTok.FindStringSubmatch(out)[1],
		"name":         name,
		"relay":        map[string]any{"protocol": "lcus", "port": ft.port, "channel": 1},
		"audio":        map[string]any{"output": "silent"},
		"warmup_ms":    warmup.Milliseconds(),
		"tail_ms":      tailTime.Milliseconds(),
	}
	maps.Copy(ft.cfg, extra)
	return ft
}

// restart starts the terminal process (again) with its config, in its
// network namespace if it has one.
func (ft *faultTerminal) restart() {
	if ft.netns == "" {
		ft.start(ft.f.t, ft.f.bin, ft.env)
		return
	}
	writeJSON(ft.f.t, ft.cfgPath, ft.cfg)
	ft.proc = start(ft.f.t, "terminal-"+ft.proto, ft.env, "ip", "netns", "exec", ft.netns, filepath.Join(ft.f.bin, "dalaba-terminal"), "-config", ft.cfgPath)
}

// kill ends the terminal process with SIGKILL, as a power cut would.
func (ft *faultTerminal) kill() {
	ft.proc.cmd.Process.Signal(syscall.SIGKILL)
	<-ft.proc.done
}

// pull kills the pty pair (the USB cable is pulled): the terminal's line
// hangs up and the board hears nothing more.
func (ft *faultTerminal) pull() {
	ft.serving()
	ft.line.Cut()
	os.Remove(ft.port)
}

// plugIn gives the board a new pty pair and points the terminal's port at it.
func (ft *faultTerminal) plugIn() {
	t := ft.f.t
	ft.line = relaysim.StartLine(t)
	ctx, cancel := context.WithCancel(ft.f.ctx)
	ft.serving = cancel
	go relaysim.ServeSerial(ctx, ft.line.Board, ft.board)
	tmp := ft.port + ".new"
	os.Remove(tmp)
	if err := os.Symlink(ft.line.Device, tmp); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, ft.port); err != nil {
		t.Fatal(err)
	}
}

// opsSince returns the on/off frames the board received after at.
func (ft *faultTerminal) opsSince(at time.Time) []string {
	var out []string
	for _, e := range ft.ops() {
		if e.At.After(at) {
			out = append(out, e.Op)
		}
	}
	return out
}

// sendAlert issues an emergency alert of level 4 to the given terminals
// with one uploaded media file and returns its id.
func sendAlert(t testing.TB, a api, title, media string, terms ...*faultTerminal) string {
	t.Helper()
	ids := make([]string, len(terms))
	for i, ft := range terms {
		ids[i] = ft.id
	}
	var v controller.AlertView
	a.do(t, http.MethodPost, "/api/v1/alerts", map[string]any{
		"class": protocol.ClassEmergency, "level": 4, "title": title, "terminals": ids, "media": []string{media},
	}, &v)
	return v.ID
}

// delivery returns the alert's delivery to one terminal.
func delivery(t testing.TB, a api, alertID, terminalID string) store.Delivery {
	t.Helper()
	var v controller.AlertView
	a.get(t, "/api/v1/alerts/"+alertID, &v)
	for _, d := range v.Deliveries {
		if d.TerminalID == terminalID {
			return d
		}
	}
	t.Fatalf("alert %s has no delivery to %s", alertID, terminalID)
	return store.Delivery{}
}

// waitDelivery waits until the delivery reaches state (and fails the test
// if it ends in another final state).
func waitDelivery(t testing.TB, a api, alertID, terminalID, state string, limit time.Duration) store.Delivery {
	t.Helper()
	var d store.Delivery
	eventually(t, limit, fmt.Sprintf("alert %s on %s to be %s", alertID, terminalID, state), func() bool {
		d = delivery(t, a, alertID, terminalID)
		if d.State != state && protocol.DeliveryFinal(d.State) {
			t.Fatalf("alert %s on %s ended %s (%s: %s), want %s", alertID, terminalID, d.State, d.Reason, d.Detail, state)
		}
		return d.State == state
	})
	return d
}

// reports returns the terminal's stored reports of kind, in the order
// the terminal spooled them.
func reports(t testing.TB, a api, terminalID, kind string) []store.StoredReport {
	t.Helper()
	var reps []store.StoredReport
	a.get(t, "/api/v1/terminals/"+terminalID+"/reports?limit=10000&kind="+kind, &reps)
	slices.SortFunc(reps, func(x, y store.StoredReport) int { return cmp.Compare(x.Report.Seq, y.Report.Seq) })
	return reps
}

// receiptStates lists the states the terminal reported for one alert, in
// the order it spooled them.
func receiptStates(t testing.TB, a api, terminalID, ebmID string) []string {
	t.Helper()
	var out []string
	for _, r := range reports(t, a, terminalID, protocol.ReportReceipt) {
		if r.Report.Receipt != nil && r.Report.Receipt.EBMID == ebmID {
			out = append(out, r.Report.Receipt.State)
		}
	}
	return out
}

// faultChanges lists the terminal's reported changes of one fault code, in
// order: true raised, false cleared, with the messages.
func faultChanges(t testing.TB, a api, terminalID, code string) (changes []bool, msgs []string) {
	t.Helper()
	for _, r := range reports(t, a, terminalID, protocol.ReportFault) {
		if f := r.Report.Fault; f != nil && f.Code == code {
			changes, msgs = append(changes, f.Active), append(msgs, f.Message)
		}
	}
	return changes, msgs
}

// ctlField is a field whose controller the test can kill and restart.
type ctlField struct {
	*field
	ctl *proc
}

// newCtlField is newField keeping the controller's process; with wide the
// controller listens on every address, so that terminals in network
// namespaces reach it over their links (the test still calls it on
// 127.0.0.1).
func newCtlField(t *testing.T, wide bool) *ctlField {
	t.Helper()
	bin := binaries(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &field{t: t, ctx: ctx, bin: bin, dalaba: filepath.Join(bin, "dalaba"), dir: t.TempDir()}
	f.data = filepath.Join(f.dir, "controller")
	c := &ctlField{field: f}
	// A port probed free can be taken before the controller binds it (tests
	// run in parallel): try another.
	for attempt := 0; ; attempt++ {
		f.addr = fixedFreePort(t)
		listen := f.addr
		if wide {
			listen = "0.0.0.0" + f.addr[strings.LastIndex(f.addr, ":"):]
		}
		if attempt == 0 {
			run(t, f.dalaba, "init", "--data", f.data, "--listen", listen)
		} else {
			var conf map[string]any
			b, err := os.ReadFile(filepath.Join(f.data, "controller.json"))
			if err != nil || json.Unmarshal(b, &conf) != nil {
				t.Fatalf("read controller.json: %v", err)
			}
			conf["listen"] = listen
			writeJSON(t, filepath.Join(f.data, "controller.json"), conf)
		}
		if c.start() || attempt == 2 {
			break
		}
	}
	c.restart()
	f.admin = api{base: "http://" + f.addr, token: readToken(t, f.data)}
	f.cli("area", "add", township, "长安镇", "--parent", county)
	f.cli("area", "add", village, "大巷村", "--parent", township)
	return c
}

// start starts the controller and waits until it is healthy; it reports
// false if the process exited first.
func (c *ctlField) start() bool {
	t := c.t
	t.Helper()
	c.ctl = start(t, "controller", nil, filepath.Join(c.bin, "dalaba-controller"), "-config", filepath.Join(c.data, "controller.json"))
	deadline := time.Now().Add(10 * time.Second)
	for {
		var h map[string]any
		b, err := httpGet("http://" + c.addr + "/api/v1/health")
		if err == nil && json.Unmarshal(b, &h) == nil && h["ok"] == true {
			return true
		}
		select {
		case <-c.ctl.done:
			return false
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatal("timed out after 10s waiting for controller health")
		}
	}
}

// restart starts the controller again, unless it runs, and waits until it
// is healthy.
func (c *ctlField) restart() {
	c.t.Helper()
	select {
	case <-c.ctl.done:
	default:
		return
	}
	if !c.start() {
		c.t.Fatal("the controller exited at start")
	}
}

// kill ends the controller with SIGKILL.
func (c *ctlField) kill() {
	c.ctl.cmd.Process.Signal(syscall.SIGKILL)
	<-c.ctl.done
}

// fixedFreePort returns 127.0.0.1:port for a port below the kernel's
// ephemeral range that is free on every address: an outgoing connection
// never takes it between the probe and the controller's bind, as it can
// take a port from freePort.
func fixedFreePort(t *testing.T) string {
	t.Helper()
	for range 100 {
		port := 20000 + rand.IntN(12000)
		ln, err := net.Listen("tcp", fmt.Sprintf("0.0.0.0:%d", port))
		if err != nil {
			continue
		}
		ln.Close()
		return fmt.Sprintf("127.0.0.1:%d", port)
	}
	t.Fatal("no free port in 20000..31999")
	return ""
}
