package terminal

import (
	"os"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// configKeys lists every key of the config file, nested keys joined by
// dots (relay.channel), with the DALABA_ variable that overrides it.
func configKeys() (keys, envs []string) {
	var walk func(t reflect.Type, key, env string)
	walk = func(t reflect.Type, key, env string) {
		for i := 0; i < t.NumField(); i++ {
			name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
			if t.Field(i).Type.Kind() == reflect.Struct {
				walk(t.Field(i).Type, key+name+".", env+strings.ToUpper(name)+"_")
				continue
			}
			keys, envs = append(keys, key+name), append(envs, env+strings.ToUpper(name))
		}
	}
	walk(reflect.TypeOf(Config{}), "", EnvPrefix)
	return keys, envs
}

var lineRef = regexp.MustCompile(`^line [0-9]+: `)

// namesKeyOrLine reports whether a config error message starts by naming
// the key (relay.channel:, controllers[1]:, an unknown key) or the line.
func namesKeyOrLine(msg string, keys []string) bool {
	if lineRef.MatchString(msg) || strings.HasSuffix(msg, ": unknown key") {
		return true
	}
	for _, k := range keys {
		if strings.HasPrefix(msg, k+":") || strings.HasPrefix(msg, k+"[") || strings.HasPrefix(msg, k+" (from ") {
			return true
		}
	}
	return false
}

// FuzzTerminalConfig parses arbitrary config files and environment values:
// parsing and validation never panic, and every error names the key or the
// line it is about, on one line.
func FuzzTerminalConfig(f *testing.F) {
	example, err := os.ReadFile("testdata/terminal.example.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(example, uint8(0), "")
	f.Add(example, uint8(3), "12")
	f.Add([]byte(`{"controllers": ["ws://a/v1/terminal"], "data_dir": "/d", "relay": {"protocol": "sim", "chanel": 2}}`), uint8(0), "")
	f.Add([]byte(`{"controllers": ["http://a/v1/terminal"], "data_dir": "/d", "relay": {"protocol": "modbus", "slave": 300}}`), uint8(1), "ws://a/x, tcp://b")
	f.Add([]byte("{\n  \"volume\": \"loud\"\n}"), uint8(2), "loud")
	f.Add([]byte("{\n  \"relay\": {\"channel\": 1,}\n}"), uint8(0), "")
	f.Add([]byte(`[]`), uint8(0), "")
	f.Add([]byte(``), uint8(0), "")
	keys, envs := configKeys()
	f.Fuzz(func(t *testing.T, data []byte, envIndex uint8, envValue string) {
		check := func(stage string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			msgs := []string{err.Error()}
			if list, ok := err.(ConfigErrors); ok {
				msgs = msgs[:0]
				for _, e := range list {
					msgs = append(msgs, e.Error())
				}
			}
			for _, msg := range msgs {
				if !namesKeyOrLine(msg, keys) {
					t.Fatalf("%s error %q names no key and no line", stage, msg)
				}
				if strings.Contains(msg, "\n") {
					t.Fatalf("%s error %q spans lines", stage, msg)
				}
			}
		}
		cfg := DefaultConfig()
		if err := parseConfig(data, &cfg); err != nil {
			check("parse", err)
			return
		}
		env := envs[int(envIndex)%len(envs)]
		lookup := func(k string) (string, bool) { return envValue, k == env && envValue != "" }
		if err := applyEnv(&cfg, lookup); err != nil {
			check("environment", err)
			return
		}
		check("validate", cfg.Validate())
	})
}
