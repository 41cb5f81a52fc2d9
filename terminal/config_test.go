package terminal

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func contains(s, sub string) bool { return strings.Contains(s, sub) }

func TestConfigErrorsNameTheKey(t *testing.T) {
	good := `"controllers": ["ws://127.0.0.1:8440/v1/terminal"], "data_dir": "/tmp/x", "relay": {"protocol": "sim"}`
	cases := []struct {
		name, json string
		env        map[string]string
		want       string
	}{
		{"unknown key", `{` + good + `, "controler": "x"}`, nil, "controler: unknown key"},
		{"unknown nested key", `{"controllers": ["ws://a/v1/terminal"], "data_dir": "/d", "relay": {"protocol": "sim", "chanel": 2}}`, nil, "relay.chanel: unknown key"},
		{"unknown key across lines", `{"relay": {"\n0": 1}}`, nil, `"relay.\n0": unknown key`},
		{"bad channel", `{"controllers": ["ws://a/v1/terminal"], "data_dir": "/d", "relay": {"protocol": "lcus", "port": "/dev/ttyUSB0", "channel": 9}}`, nil, "relay.channel: 9 is outside 1..8"},
		{"bad URL", `{"controllers": ["http://a/v1/terminal"], "data_dir": "/d", "relay": {"protocol": "sim"}}`, nil, `controllers[0]: "http://a/v1/terminal" must be a ws:// or wss:// URL`},
		{"missing data_dir", `{"controllers": ["ws://a/v1/terminal"], "relay": {"protocol": "sim"}}`, nil, "data_dir: is required"},
		{"missing relay protocol", `{"controllers": ["ws://a/v1/terminal"], "data_dir": "/d"}`, nil, "relay.protocol: is required"},
		{"serial relay without port", `{"controllers": ["ws://a/v1/terminal"], "data_dir": "/d", "relay": {"protocol": "modbus"}}`, nil, "relay.port: is required"},
		{"wrong type", `{` + good + `, "volume": "loud"}`, nil, "volume: got a JSON string, want a whole number"},
		{"bad token", `{` + good + `, "enroll_token": "nofingerprint"}`, nil, "enroll_token: must look like <code>.<fingerprint>"},
		{"wav without dir", `{` + good + `, "audio": {"output": "wav"}}`, nil, "audio.dir: is required"},
		{"syntax", `{` + good + `,}`, nil, "line 1:"},
		{"not an object", "\n[\"ws://a/v1/terminal\"]", nil, "line 2: got a JSON array, want an object of config keys"},
		{"env channel", `{` + good + `}`, map[string]string{"DALABA_RELAY_CHANNEL": "12"}, "relay.channel: 12 is outside 1..8"},
		{"env not a number", `{` + good + `}`, map[string]string{"DALABA_VOLUME": "loud"}, `volume (from DALABA_VOLUME): "loud" is not a whole number`},
		{"env bad URL", `{` + good + `}`, map[string]string{"DALABA_CONTROLLERS": "ws://a/v1/terminal,tcp://b"}, `controllers[1]: "tcp://b"`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for k, v := range c.env {
				t.Setenv(k, v)
			}
			path := filepath.Join(t.TempDir(), "terminal.json")
			os.WriteFile(path, []byte(c.json), 0o600)
			_, err := LoadConfig(path)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("LoadConfig = %v, want an error containing %q", err, c.want)
			}
			if strings.Contains(err.Error(), "\n") {
				t.Fatalf("error spans lines: %q", err)
			}
		})
	}
}

func TestConfigExampleAndEnv(t *testing.T) {
	t.Setenv("DALABA_CONTROLLERS", "ws://10.0.0.1:8440/v1/terminal, wss://10.0.0.2:8440/v1/terminal")
	t.Setenv("DALABA_DATA_DIR", "/var/lib/dalaba-override")
	cfg, err := LoadConfig("testdata/terminal.example.json")
	if err != nil {
		t.Fatal(err)
	}
	if len(cfg.Controllers) != 2 || cfg.Controllers[1] != "wss://10.0.0.2:8440/v1/terminal" {
		t.Fatalf("controllers %q", cfg.Controllers)
	}
	if cfg.DataDir != "/var/lib/dalaba-override" {
		t.Fatalf("data_dir %q", cfg.DataDir)
	}
	if cfg.Relay.Channel != 1 || cfg.Relay.Baud != 9600 || cfg.WarmupMS != 2000 || cfg.TailMS != 1000 || cfg.Audio.Rate != 48000 || cfg.HeartbeatSeconds != 30 {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if code, fp, _ := ParseEnrollToken(cfg.EnrollToken); code != "482913" || fp != cfg.fingerprint() {
		t.Fatalf("token %q %q", code, fp)
	}
}
