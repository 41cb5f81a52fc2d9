package controller

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"
)

// controllerConfigKeys lists the keys of controller.json and the
// variables that override them.
func controllerConfigKeys() (keys, envs []string) {
	t := reflect.TypeOf(Config{})
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		keys, envs = append(keys, name), append(envs, "DALABA_"+strings.ToUpper(name))
	}
	return keys, envs
}

var configLineRef = regexp.MustCompile(`^line [0-9]+: `)

// configErrorNamed reports whether one line of a config error names the
// key, the variable or the line it is about.
func configErrorNamed(msg string, keys, envs []string) bool {
	if configLineRef.MatchString(msg) || strings.HasSuffix(msg, ": unknown key") {
		return true
	}
	for _, k := range append(keys, envs...) {
		if strings.HasPrefix(msg, k+":") || strings.HasPrefix(msg, k+" ") {
			return true
		}
	}
	return false
}

// FuzzControllerConfig loads arbitrary controller.json files and
// environment values: loading never panics, and every error names the key
// or the line it is about.
func FuzzControllerConfig(f *testing.F) {
	res := []byte(`{
  "listen": "127.0.0.1:8440",
  "data_dir": ".",
  "platform_ebrid": "44502240000000000000001",
  "heartbeat_seconds": 30,
  "max_upload_mb": 32,
  "default_valid_minutes": 60
}`)
	f.Add(res, uint8(0), "")
	f.Add(res, uint8(5), "sixty")
	f.Add([]byte(`{"listen": "8440", "tls_cert": "c.pem", "heartbeat_seconds": 1, "max_upload_mb": 0}`), uint8(4), "x")
	f.Add([]byte("{\n  \"listen\": \":8440\",\n  \"heartbeat_seconds\": \"30\"\n}"), uint8(0), "")
	f.Add([]byte("{\n  \"listen\": \":8440\",\n  \"lisen\": \":8441\"\n}"), uint8(0), "")
	f.Add([]byte("{\n  \"listen\": \":8440\",\n}"), uint8(0), "")
	f.Add([]byte(`{"listen": ":8440"} {"listen": ":1"}`), uint8(0), "")
	f.Add([]byte(`[]`), uint8(0), "")
	f.Add([]byte(``), uint8(0), "")
	keys, envs := controllerConfigKeys()
	f.Fuzz(func(t *testing.T, data []byte, envIndex uint8, envValue string) {
		check := func(stage, prefix string, err error) {
			t.Helper()
			if err == nil {
				return
			}
			msg, ok := strings.CutPrefix(err.Error(), prefix)
			if !ok {
				t.Fatalf("%s error %q does not start with %q", stage, err, prefix)
			}
			for _, line := range strings.Split(msg, "\n") {
				if !configErrorNamed(line, keys, envs) {
					t.Fatalf("%s error %q names no key and no line", stage, line)
				}
			}
		}
		path := filepath.Join(t.TempDir(), ConfigFile)
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
		c, err := LoadConfig(path)
		prefix := "config " + path + ": "
		if err == nil || !strings.HasPrefix(err.Error(), prefix) {
			// Decoded (Validate's errors name keys themselves).
			if !json.Valid(data) {
				t.Fatalf("decoded %q, which is not one JSON value", data)
			}
			prefix = ""
		}
		check("load", prefix, err)

		c = DefaultConfig()
		env := envs[int(envIndex)%len(envs)]
		if err := c.applyEnv(func(k string) (string, bool) { return envValue, k == env }); err != nil {
			check("environment", "", err)
			return
		}
		check("validate", "", c.Validate())
	})
}

// TestConfigFileErrorsNameKeyOrLine: what a person sees for a broken
// controller.json, case by case (the fuzz target checks the rule at large).
func TestConfigFileErrorsNameKeyOrLine(t *testing.T) {
	cases := []struct{ name, file, want string }{
		{"empty file", "", "line 1: no config object: the file is empty"},
		{"only blank lines", "\n\n", "line 3: no config object: the file is empty"},
		{"cut short", "{\n  \"listen\":", "line 2: the file ends inside the config object"},
		{"syntax", "{\n  \"listen\": \":8440\",\n}", "line 3: invalid character '}'"},
		{"not an object", "[\"listen\"]", "line 1: got a JSON array, want an object of config keys"},
		{"unknown key", "{\"lisen\": \":8440\"}", "lisen: unknown key"},
		{"unknown key across lines", "{\"lis\\nten\": 1}", `"lis\nten": unknown key`},
		{"wrong type", "{\"heartbeat_seconds\": \"30\"}", "heartbeat_seconds: got a JSON string, want a whole number"},
		{"a second object", "{\"listen\": \":8440\"}\n{\"listen\": \":1\"}", `line 2: unexpected "{\"listen\": \":1\"}" after the config object`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), ConfigFile)
			if err := os.WriteFile(path, []byte(c.file), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadConfig(path)
			if want := "config " + path + ": " + c.want; err == nil || !strings.HasPrefix(err.Error(), want) {
				t.Fatalf("LoadConfig = %v, want %q", err, want)
			}
		})
	}
}
