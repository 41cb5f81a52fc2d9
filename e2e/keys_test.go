package e2e

import (
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"dalaba/audio"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// TestKeyRotation: the issuing key is rotated while one terminal is
// connected and another is switched off. Both keep playing alerts signed by
// the new key: the connected one gets the new key set at once, the other
// when it connects. The old key can be retired only once both confirmed.
func TestKeyRotation(t *testing.T) {
	f := newField(t)
	bin, dir, addr, base, admin := f.bin, f.dir, f.addr, f.admin.base, f.cli
	type term struct {
		id, cfg string
		p       *proc
	}
	newTerminal := func(name string) *term {
		out := admin("terminal", "enroll", "--area", village, "--name", name)
		tm := &term{id: enrolledRe.FindStringSubmatch(out)[1], cfg: filepath.Join(dir, name+".json")}
		writeJSON(t, tm.cfg, map[string]any{
			"controllers": []string{"ws://" + addr + "/v1/terminal"}, "data_dir": filepath.Join(dir, name),
			"enroll_token": enrollTok.FindStringSubmatch(out)[1], "relay": map[string]any{"protocol": "sim"},
			"audio": map[string]any{"output": "silent"}, "warmup_ms": 50, "tail_ms": 50,
		})
		tm.p = start(t, name, nil, filepath.Join(bin, "dalaba-terminal"), "-config", tm.cfg)
		return tm
	}
	a := f.admin
	online := func(ids ...string) func() bool {
		return func() bool {
			var ts []store.Terminal
			a.get(t, "/api/v1/terminals", &ts)
			n := 0
			for _, tm := range ts {
				for _, id := range ids {
					if tm.ID == id && tm.State != "offline" {
						n++
					}
				}
			}
			return n == len(ids)
		}
	}
	connected, sleeper := newTerminal("connected"), newTerminal("sleeper")
	eventually(t, 20*time.Second, "both terminals online", online(connected.id, sleeper.id))
	sleeper.p.stop()
	eventually(t, 10*time.Second, "the sleeper offline", func() bool { return !online(sleeper.id)() })

	officer := f.person("zhang", "officer", county).run
	approver := f.person("li", "approver", county).run
	tone := filepath.Join(dir, "tone.wav")
	os.WriteFile(tone, audio.ToneWAV(1000, 300*time.Millisecond, 22050, 0.5), 0o644)
	alertTo := func(target string) string {
		out := officer("alert", "send", "--terminal", target, "--audio", tone, "--level", "4", "--title", "换钥后测试")
		id := regexp.MustCompile(`alert (\d{35}) waits`).FindStringSubmatch(out)[1]
		approver("alert", "approve", id, "--comment", "同意")
		officer("alert", "watch", id) // exits non-zero unless the terminal reported done
		return id
	}

	oldKid := strings.Fields(regexp.MustCompile(`(?m)^(\w{16})\s+ACTIVE`).FindString(admin("keys")))[0]
	out := admin("key", "rotate")
	newKid := regexp.MustCompile(`new issuing key (\w{16})`).FindStringSubmatch(out)[1]
	id := alertTo(connected.id)
	var sc protocol.SignedCommand
	a.getJSON(t, "/api/v1/alerts/"+id+"/command", &sc)
	if sc.KeyID != newKid {
		t.Fatalf("the alert after rotation is signed by %s, want the new key %s", sc.KeyID, newKid)
	}

	// The sleeper still trusts only the old key: retiring it now would
	// leave the sleeper deaf, so it is refused.
	if out, err := runErr(f.dalaba, "key", "retire", oldKid, "--url", base, "--data", f.data); err == nil || !strings.Contains(out, "have not yet confirmed") {
		t.Fatalf("retire with a terminal lacking the new key: %v\n%s", err, out)
	}
	sleeper.p = start(t, "sleeper-again", nil, filepath.Join(bin, "dalaba-terminal"), "-config", sleeper.cfg)
	eventually(t, 20*time.Second, "the sleeper back", online(sleeper.id))
	alertTo(sleeper.id)

	eventually(t, 10*time.Second, "every terminal to confirm the new key", func() bool {
		return strings.Contains(admin("keys"), "active key: 0")
	})
	admin("key", "retire", oldKid)
	alertTo(connected.id)
	alertTo(sleeper.id)

	// Everything above is in the sealed audit log, and it verifies.
	if out := admin("audit", "verify"); !strings.Contains(out, "audit log intact") {
		t.Fatalf("audit verify: %s", out)
	}
	log := admin("audit", "--action", "key.")
	for _, want := range []string{"key.rotate", "key.retire"} {
		if !strings.Contains(log, want) {
			t.Errorf("audit log lacks %s:\n%s", want, log)
		}
	}
}
