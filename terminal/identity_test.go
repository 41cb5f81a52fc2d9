package terminal

import (
	"crypto/ed25519"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"dalaba/protocol"
)

func TestEnrollment(t *testing.T) {
	cases := []struct {
		name       string
		decoyFirst bool // the welcome offers a decoy key before the real one
		onlyDecoy  bool // the welcome offers only a decoy key
		byConfig   bool // controller_fingerprint instead of an enrollment token
	}{
		{name: "pins only the fingerprinted key", decoyFirst: true},
		{name: "fingerprint from controller_fingerprint", byConfig: true},
		{name: "mismatched key refused", onlyDecoy: true},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ctl := newFakeController(t)
			decoy := newKey(t)
			switch {
			case c.onlyDecoy:
				ctl.offer = []protocol.PublicKey{pubKey(decoy)}
			case c.decoyFirst:
				ctl.offer = []protocol.PublicKey{pubKey(decoy), pubKey(ctl.issuer)}
			}
			r := newRig(t, ctl)
			if c.byConfig {
				r.cfg.EnrollToken, r.cfg.ControllerFingerprint = "", ctl.fingerprint()
			}
			if c.onlyDecoy {
				term := r.startNoWait(func(term *Terminal) { term.backoffMin, term.backoffMax = 10*time.Millisecond, 20*time.Millisecond })
				ctl.waitFor("a retry", func() bool { return len(ctl.hellos) >= 2 })
				st := term.Status()
				if st.Enrolled || st.Connected {
					t.Fatalf("status %+v: enrolled with a key that does not match", st)
				}
				if msg := st.Faults[protocol.FaultConfig]; msg != "controller key does not match the enrollment fingerprint" {
					t.Fatalf("config fault %q", msg)
				}
				if _, err := os.Stat(filepath.Join(r.dir, trustFile)); !os.IsNotExist(err) {
					t.Fatalf("trust file written: %v", err)
				}
				return
			}
			r.start()
			ctl.mu.Lock()
			first := ctl.hellos[0]
			ctl.mu.Unlock()
			wantCode := "123456"
			if c.byConfig {
				wantCode = ""
			}
			if first.EnrollCode != wantCode || first.TerminalID != "" {
				t.Fatalf("first hello has code %q, id %q; want code %q, no id", first.EnrollCode, first.TerminalID, wantCode)
			}
			tr, err := loadTrust(r.dir)
			if err != nil || tr == nil {
				t.Fatalf("trust: %v %v", tr, err)
			}
			want := ctl.issuer.Public().(ed25519.PublicKey)
			if len(tr.Keys) != 1 || !tr.Keys[0].PublicKey.Equal(want) || tr.TerminalID != testTerminalID || tr.AreaCode != testArea {
				t.Fatalf("trust %+v, want exactly the issuing key for %s", tr, testTerminalID)
			}
			if fi, _ := os.Stat(filepath.Join(r.dir, keyFile)); fi.Mode().Perm() != 0o600 {
				t.Fatalf("key file mode %v", fi.Mode())
			}
			// A command signed with the decoy is refused: it was not pinned.
			sc, _ := protocol.Sign(ctl.alert([]protocol.Media{tone(ctl, 100*time.Millisecond)}, nil), decoy)
			ctl.send(sc)
			if rej := ctl.waitRejections(sc, 1); rej.Reason != protocol.RejectUnknownKey {
				t.Fatalf("decoy-signed command: %+v", rej)
			}

			// After a restart the hello names the terminal, without a code,
			// with the same key; a welcome offering other keys changes nothing.
			r.stop()
			ctl.set(func(c *fakeController) { c.offer = []protocol.PublicKey{pubKey(decoy)} })
			r.start()
			ctl.mu.Lock()
			last := ctl.hellos[len(ctl.hellos)-1]
			ctl.mu.Unlock()
			if last.EnrollCode != "" || last.TerminalID != testTerminalID || !last.PublicKey.Equal(first.PublicKey) {
				t.Fatalf("hello after restart: code %q id %q same key %v", last.EnrollCode, last.TerminalID, last.PublicKey.Equal(first.PublicKey))
			}
			after, _ := loadTrust(r.dir)
			if !slices.EqualFunc(after.Keys, tr.Keys, func(a, b protocol.PublicKey) bool { return a.PublicKey.Equal(b.PublicKey) }) {
				t.Fatal("a later welcome changed the pinned keys")
			}
		})
	}
}

func TestNotEnrolledNeedsFingerprint(t *testing.T) {
	cfg := DefaultConfig()
	cfg.Controllers = []string{"ws://127.0.0.1:1/v1/terminal"}
	cfg.DataDir = t.TempDir()
	cfg.Relay.Protocol = "none"
	cfg.Audio.Output = "silent"
	err := New(cfg, nil).Run(t.Context())
	if err == nil || !contains(err.Error(), "enroll_token") {
		t.Fatalf("Run = %v, want an error naming enroll_token", err)
	}
}
