package e2e

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"dalaba/controller/store"
	"dalaba/terminal/relay/relaysim"
)

// The county the field tests run in, and the usual amplifier timing.
const (
	county   = "450224000000"
	township = "450224100000"
	village  = "450224100201"
	warmup   = 300 * time.Millisecond
	tailTime = 300 * time.Millisecond
)

// field is the setup most end-to-end tests share: a controller made by
// `dalaba init` and running, its admin, the areas county → township →
// village, and terminals enrolled into the village on pty relay lines.
type field struct {
	t      testing.TB
	ctx    context.Context
	bin    string // the built binaries
	dalaba string // the CLI
	dir    string
	addr   string // the controller's host:port
	data   string // the controller's data folder
	admin  api
}

// newField initialises and starts a controller and adds the areas. The
// controller's environment gets env.
func newField(t testing.TB, env ...string) *field {
	t.Helper()
	bin := binaries(t)
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	f := &field{t: t, ctx: ctx, bin: bin, dalaba: filepath.Join(bin, "dalaba"), dir: t.TempDir(), addr: freePort(t)}
	f.data = filepath.Join(f.dir, "controller")
	run(t, f.dalaba, "init", "--data", f.data, "--listen", f.addr)
	start(t, "controller", env, filepath.Join(bin, "dalaba-controller"), "-config", filepath.Join(f.data, "controller.json"))
	f.admin = api{base: "http://" + f.addr, token: readToken(t, f.data)}
	eventually(t, 10*time.Second, "controller health", func() bool {
		var h map[string]any
		b, err := httpGet(f.admin.base + "/api/v1/health")
		return err == nil && json.Unmarshal(b, &h) == nil && h["ok"] == true
	})
	f.cli("area", "add", township, "长安镇", "--parent", county)
	f.cli("area", "add", village, "大巷村", "--parent", township)
	return f
}

// cli runs the CLI as the admin on the controller's machine.
func (f *field) cli(args ...string) string {
	f.t.Helper()
	return run(f.t, f.dalaba, append(args, "--url", f.admin.base, "--data", f.data)...)
}

// noApproval lets each alert go at once, without a second person.
func (f *field) noApproval() {
	f.t.Helper()
	f.admin.do(f.t, http.MethodPut, "/api/v1/settings/policy", map[string]any{"approval": map[string]any{}, "drill_roles": []string{"officer"}}, nil)
}

// operator is a signed-in person: their API token, and the CLI run as them.
type operator struct {
	api
	run func(args ...string) string
}

// person creates an operator with the admin's CLI and signs them in with
// the CLI, replacing the one-time password.
func (f *field) person(name, roles, areas string) operator {
	t := f.t
	t.Helper()
	out := f.cli("user", "add", name, "--roles", roles, "--areas", areas)
	m := regexp.MustCompile(`one-time password: (\S+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no one-time password in:\n%s", out)
	}
	d := t.TempDir()
	once, fresh, tokFile := filepath.Join(d, "once"), filepath.Join(d, "new"), filepath.Join(d, "token")
	os.WriteFile(once, []byte(m[1]+"\n"), 0o600)
	os.WriteFile(fresh, []byte("Flood-Watch-2026!\n"), 0o600)
	run(t, f.dalaba, "login", "--url", f.admin.base, "--user", name, "--password-file", once, "--new-password-file", fresh, "--save", tokFile)
	tok, err := os.ReadFile(tokFile)
	if err != nil {
		t.Fatal(err)
	}
	a := api{base: f.admin.base, token: strings.TrimSpace(string(tok))}
	return operator{api: a, run: func(args ...string) string {
		t.Helper()
		return run(t, f.dalaba, append(args, "--url", a.base, "--token", a.token)...)
	}}
}

// fieldTerminal is a terminal process on a pty serial line to a simulated
// relay board.
type fieldTerminal struct {
	name, proto string // proto also names its files: unique per test
	id          string
	board       *relaysim.Board
	cfgPath     string
	cfg         map[string]any
	proc        *proc
}

var (
	enrolledRe = regexp.MustCompile(`terminal (\d{23})`)
	enrollTok  = regexp.MustCompile(`enroll_token: (\S+)`)
)

// terminal enrolls a terminal into the village and starts it with env
// (pulse.Env() for sound): its relay board speaks board ("lcus" or
// "modbus"), its audio goes through oto, with the usual warm-up and tail;
// extra overrides or adds config keys.
func (f *field) terminal(name, proto, board string, env []string, extra map[string]any) *fieldTerminal {
	t := f.t
	t.Helper()
	out := f.cli("terminal", "enroll", "--area", village, "--name", name)
	ft := &fieldTerminal{name: name, proto: proto, id: enrolledRe.FindStringSubmatch(out)[1], cfgPath: filepath.Join(f.dir, proto+".json")}
	line := relaysim.StartLine(t)
	ft.board = relaysim.New(board, 1)
	go relaysim.ServeSerial(f.ctx, line.Board, ft.board)
	ft.cfg = map[string]any{
		"controllers":  []string{"ws://" + f.addr + "/v1/terminal"},
		"data_dir":     filepath.Join(f.dir, "terminal-"+proto),
		"enroll_token": enrollTok.FindStringSubmatch(out)[1],
		"name":         name,
		"relay":        map[string]any{"protocol": board, "port": line.Device, "channel": 1, "slave": 1},
		"audio":        map[string]any{"output": "oto"},
		"warmup_ms":    warmup.Milliseconds(),
		"tail_ms":      tailTime.Milliseconds(),
	}
	maps.Copy(ft.cfg, extra)
	ft.start(t, f.bin, env)
	return ft
}

func (ft *fieldTerminal) start(t testing.TB, bin string, env []string) {
	writeJSON(t, ft.cfgPath, ft.cfg)
	ft.proc = start(t, "terminal-"+ft.proto, env, filepath.Join(bin, "dalaba-terminal"), "-config", ft.cfgPath)
}

// ops returns the board's on/off frames in order.
func (ft *fieldTerminal) ops() []relaysim.Event {
	var out []relaysim.Event
	for _, e := range ft.board.Log() {
		if e.Op == "on" || e.Op == "off" {
			out = append(out, e)
		}
	}
	return out
}

func countOn(evs []relaysim.Event) int {
	n := 0
	for _, e := range evs {
		if e.Op == "on" {
			n++
		}
	}
	return n
}

func opNames(evs []relaysim.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, e.Op)
	}
	return out
}

func waitOnline(t testing.TB, a api, terms ...*fieldTerminal) {
	t.Helper()
	eventually(t, 20*time.Second, "the terminals to come online", func() bool {
		var ts []store.Terminal
		a.get(t, "/api/v1/terminals", &ts)
		online := 0
		for _, term := range ts {
			for _, ft := range terms {
				if term.ID == ft.id && term.State != "offline" {
					online++
				}
			}
		}
		return online == len(terms)
	})
}
