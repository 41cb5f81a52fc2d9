package terminal

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// EnvPrefix starts every environment variable that overrides a config key:
// relay.channel is DALABA_RELAY_CHANNEL, controllers is DALABA_CONTROLLERS (a
// comma-separated list).
const EnvPrefix = "DALABA_"

// Config is a terminal daemon's configuration file (JSON). Keys are strict:
// an unknown key is an error naming it.
type Config struct {
	// Controllers are the ws:// or wss:// URLs of the controllers' terminal
	// endpoint, tried in order.
	Controllers []string `json:"controllers"`
	// DataDir holds the key, trust, spool, replay guard, settings and media cache.
	DataDir string `json:"data_dir"`
	// EnrollToken is "<one-time code>.<controller key fingerprint>".
	EnrollToken string `json:"enroll_token,omitempty"`
	// ControllerFingerprint pins the controller key without a one-time code
	// (the terminal then waits on the pending list for a technician).
	ControllerFingerprint string `json:"controller_fingerprint,omitempty"`
	// CAFile is a PEM bundle that wss:// servers are verified against.
	CAFile string `json:"ca_file,omitempty"`
	// Name is a human name sent as the hostname in the hello.
	Name string `json:"name,omitempty"`
	// SourceAddr is the local IP address to dial the controllers from
	// (empty: the system's choice); the fleet simulator spreads its
	// connections over 127.0.0.x with it.
	SourceAddr string `json:"source_addr,omitempty"`

	Relay RelayConfig `json:"relay"`
	Audio AudioConfig `json:"audio"`

	WarmupMS   int `json:"warmup_ms"`    // amplifier warm-up after relay ON
	TailMS     int `json:"tail_ms"`      // pause after the audio before relay OFF
	CacheMaxMB int `json:"cache_max_mb"` // media cache bound
	Volume     int `json:"volume"`       // 0..100, used when an alert says 0
	// EmergencyVolume is the volume of emergency alerts that leave the
	// volume to the terminal (alert volume 0): 0 means full volume (100).
	// An alert's own non-zero volume always wins.
	EmergencyVolume  int `json:"emergency_volume"`
	HeartbeatSeconds int `json:"heartbeat_seconds"` // 5..3600

	// ClockOffsetMS is added to the local clock wherever the terminal reads
	// it. A test hook for clock skew; 0 in production.
	ClockOffsetMS int `json:"clock_offset_ms"`
}

// RelayConfig chooses the relay board that switches the amplifier.
type RelayConfig struct {
	// Protocol is "lcus", "modbus", "sim" (a built-in simulated LCUS board,
	// driven by the real driver, for demos) or "none".
	Protocol  string `json:"protocol"`
	Port      string `json:"port,omitempty"` // serial device, e.g. /dev/ttyUSB0
	Baud      int    `json:"baud"`
	Channel   int    `json:"channel"`    // 1..8
	Slave     int    `json:"slave"`      // Modbus address 1..247
	TimeoutMS int    `json:"timeout_ms"` // bound of one switch-and-verify
}

// AudioConfig chooses where audio goes.
type AudioConfig struct {
	// Output is "oto" (the sound card, through PulseAudio or ALSA), "wav"
	// (one WAV file per playback in Dir), "silent", or "hold" (silent, and
	// each item held for its duration without decoding it: the fleet
	// simulator's output).
	Output string `json:"output"`
	Dir    string `json:"dir,omitempty"`
	Rate   int    `json:"rate"` // output sample rate, Hz
	// LatencyMS is how long after the output starts its first sample is
	// heard; playback starts that much before the start instant, so that
	// loudspeakers start together. -1: 40 for oto, 0 for wav and silent.
	LatencyMS int `json:"latency_ms"`
}

// DefaultConfig returns the defaults a config file overrides.
func DefaultConfig() Config {
	return Config{
		Relay:            RelayConfig{Baud: 9600, Channel: 1, Slave: 1, TimeoutMS: 500},
		Audio:            AudioConfig{Output: "oto", Rate: 48000, LatencyMS: -1},
		WarmupMS:         2000,
		TailMS:           1000,
		CacheMaxMB:       256,
		Volume:           80,
		HeartbeatSeconds: 30,
	}
}

// LoadConfig reads defaults, then the JSON file at path (skipped when path
// is empty), then DALABA_* environment overrides, then validates.
func LoadConfig(path string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		b, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		if err := parseConfig(b, &cfg); err != nil {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, os.LookupEnv); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, fmt.Errorf("config: %w", err)
	}
	return cfg, nil
}

// parseConfig decodes b over cfg, refusing unknown keys by their full name.
func parseConfig(b []byte, cfg *Config) error {
	var raw any
	if err := json.Unmarshal(b, &raw); err != nil {
		return jsonError(b, err)
	}
	if err := checkKeys(raw, reflect.TypeOf(*cfg), ""); err != nil {
		return err
	}
	if err := json.Unmarshal(b, cfg); err != nil {
		return jsonError(b, err)
	}
	return nil
}

// jsonError turns a decoding error into one naming the key or the line.
func jsonError(b []byte, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field == "" { // the file itself is not an object
		line := 1 + bytes.Count(b[:min(int(te.Offset), len(b))], []byte("\n"))
		return fmt.Errorf("line %d: got a JSON %s, want an object of config keys", line, te.Value)
	}
	if errors.As(err, &te) {
		return fmt.Errorf("%s: got a JSON %s, want %s", te.Field, te.Value, typeName(te.Type))
	}
	var se *json.SyntaxError
	if errors.As(err, &se) {
		line := 1 + bytes.Count(b[:min(int(se.Offset), len(b))], []byte("\n"))
		return fmt.Errorf("line %d: %v", line, se)
	}
	return err
}

func typeName(t reflect.Type) string {
	switch t.Kind() {
	case reflect.Int:
		return "a whole number"
	case reflect.String:
		return "a string"
	case reflect.Slice:
		return "a list"
	case reflect.Struct:
		return "an object"
	}
	return t.String()
}

// checkKeys walks decoded JSON against the struct type t and names the first
// key that no field carries.
func checkKeys(v any, t reflect.Type, prefix string) error {
	obj, ok := v.(map[string]any)
	if !ok || t.Kind() != reflect.Struct {
		return nil // type mismatches are reported by the decoder
	}
	fields := map[string]reflect.Type{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fields[name] = t.Field(i).Type
	}
	for k, sub := range obj {
		ft, ok := fields[k]
		if !ok {
			return fmt.Errorf("%s: unknown key", printableKey(prefix+k))
		}
		if err := checkKeys(sub, ft, prefix+k+"."); err != nil {
			return err
		}
	}
	return nil
}

// printableKey gives a key as it is, or quoted when it holds characters that
// would not print on one line (a newline, a control character).
func printableKey(k string) string {
	if strings.ContainsFunc(k, func(r rune) bool { return !unicode.IsGraphic(r) }) {
		return strconv.Quote(k)
	}
	return k
}

// applyEnv overrides every key that has a DALABA_<KEY> variable, nested keys
// joined by '_': relay.channel is DALABA_RELAY_CHANNEL.
func applyEnv(cfg *Config, lookup func(string) (string, bool)) error {
	return envStruct(reflect.ValueOf(cfg).Elem(), EnvPrefix, "", lookup)
}

func envStruct(v reflect.Value, env, key string, lookup func(string) (string, bool)) error {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		fenv, fkey := env+strings.ToUpper(name), key+name
		f := v.Field(i)
		if f.Kind() == reflect.Struct {
			if err := envStruct(f, fenv+"_", fkey+".", lookup); err != nil {
				return err
			}
			continue
		}
		s, ok := lookup(fenv)
		if !ok {
			continue
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(s)
		case reflect.Int:
			n, err := strconv.Atoi(strings.TrimSpace(s))
			if err != nil {
				return fmt.Errorf("%s (from %s): %q is not a whole number", fkey, fenv, s)
			}
			f.SetInt(int64(n))
		case reflect.Slice:
			var list []string
			for _, p := range strings.Split(s, ",") {
				if p = strings.TrimSpace(p); p != "" {
					list = append(list, p)
				}
			}
			f.Set(reflect.ValueOf(list))
		}
	}
	return nil
}

// Validate checks every key; errors name the key and the bad value.
func (c *Config) Validate() error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	if len(c.Controllers) == 0 {
		bad("controllers: at least one ws:// or wss:// URL is required")
	}
	for i, s := range c.Controllers {
		if err := checkControllerURL(s); err != nil {
			bad("controllers[%d]: %q %v", i, s, err)
		}
	}
	if strings.TrimSpace(c.DataDir) == "" {
		bad("data_dir: is required (a folder for the key, spool and media cache)")
	}
	if c.EnrollToken != "" {
		if _, fp, err := ParseEnrollToken(c.EnrollToken); err != nil {
			bad("enroll_token: %v", err)
		} else if c.ControllerFingerprint != "" && fp != c.ControllerFingerprint {
			bad("controller_fingerprint: %q differs from the fingerprint %q in enroll_token", c.ControllerFingerprint, fp)
		}
	}
	if c.ControllerFingerprint != "" && !validFingerprint(c.ControllerFingerprint) {
		bad("controller_fingerprint: %q must be 32 lowercase hex digits", c.ControllerFingerprint)
	}
	if c.SourceAddr != "" && net.ParseIP(c.SourceAddr) == nil {
		bad("source_addr: %q is not an IP address (e.g. 127.0.0.2), or leave it empty", c.SourceAddr)
	}
	if c.CAFile != "" {
		if _, err := os.Stat(c.CAFile); err != nil {
			if pe := (*fs.PathError)(nil); errors.As(err, &pe) {
				err = pe.Err // the path is quoted below, so it stays on one line
			}
			bad("ca_file: %q: %v", c.CAFile, err)
		}
	}
	errs = append(errs, c.Relay.validate()...)
	errs = append(errs, c.Audio.validate()...)
	intRange := func(key string, v, lo, hi int) {
		if v < lo || v > hi {
			bad("%s: %d is outside %d..%d", key, v, lo, hi)
		}
	}
	intRange("warmup_ms", c.WarmupMS, 0, 30000)
	intRange("tail_ms", c.TailMS, 0, 30000)
	intRange("cache_max_mb", c.CacheMaxMB, 1, 1<<20)
	intRange("volume", c.Volume, 0, 100)
	intRange("emergency_volume", c.EmergencyVolume, 0, 100)
	intRange("heartbeat_seconds", c.HeartbeatSeconds, 5, 3600)
	intRange("clock_offset_ms", c.ClockOffsetMS, -(1 << 30), 1<<30)
	if len(errs) == 0 {
		return nil
	}
	return ConfigErrors(errs)
}

// ConfigErrors lists every problem Validate found, on one line.
type ConfigErrors []error

func (e ConfigErrors) Error() string {
	msgs := make([]string, len(e))
	for i, err := range e {
		msgs[i] = err.Error()
	}
	return strings.Join(msgs, "; ")
}

func (e ConfigErrors) Unwrap() []error { return e }

func checkControllerURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("is not a URL: %v", err)
	}
	if u.Scheme != "ws" && u.Scheme != "wss" {
		return errors.New("must be a ws:// or wss:// URL")
	}
	if u.Host == "" {
		return errors.New("has no host")
	}
	return nil
}

func (r RelayConfig) validate() []error {
	var errs []error
	bad := func(format string, args ...any) { errs = append(errs, fmt.Errorf(format, args...)) }
	switch r.Protocol {
	case "lcus", "modbus":
		if r.Port == "" {
			bad("relay.port: is required for relay.protocol %q (e.g. /dev/ttyUSB0)", r.Protocol)
		}
		if r.Baud <= 0 || r.Baud > 4000000 {
			bad("relay.baud: %d is not a serial speed", r.Baud)
		}
	case "sim", "none":
	case "":
		bad("relay.protocol: is required: lcus, modbus, sim or none")
	default:
		bad("relay.protocol: %q must be lcus, modbus, sim or none", r.Protocol)
	}
	if r.Protocol != "none" {
		if r.Channel < 1 || r.Channel > 8 {
			bad("relay.channel: %d is outside 1..8", r.Channel)
		}
		if r.TimeoutMS < 50 || r.TimeoutMS > 10000 {
			bad("relay.timeout_ms: %d is outside 50..10000", r.TimeoutMS)
		}
	}
	if r.Protocol == "modbus" && (r.Slave < 1 || r.Slave > 247) {
		bad("relay.slave: %d is outside 1..247", r.Slave)
	}
	return errs
}

func (a AudioConfig) validate() []error {
	var errs []error
	switch a.Output {
	case "oto", "silent":
	case "hold":
	case "wav":
		if a.Dir == "" {
			errs = append(errs, errors.New(`audio.dir: is required when audio.output is "wav"`))
		}
	default:
		errs = append(errs, fmt.Errorf("audio.output: %q must be oto, wav, silent or hold", a.Output))
	}
	if a.Rate < 8000 || a.Rate > 192000 {
		errs = append(errs, fmt.Errorf("audio.rate: %d is outside 8000..192000", a.Rate))
	}
	if a.LatencyMS < -1 || a.LatencyMS > 2000 {
		errs = append(errs, fmt.Errorf("audio.latency_ms: %d is outside -1..2000", a.LatencyMS))
	}
	return errs
}

// ParseEnrollToken splits "<code>.<fingerprint>" where fingerprint is
// protocol.Fingerprint of the controller's issuing key.
func ParseEnrollToken(tok string) (code, fingerprint string, err error) {
	code, fingerprint, ok := strings.Cut(tok, ".")
	if !ok || code == "" {
		return "", "", errors.New("must look like <code>.<fingerprint>")
	}
	if !validFingerprint(fingerprint) {
		return "", "", fmt.Errorf("fingerprint %q must be 32 lowercase hex digits", fingerprint)
	}
	return code, fingerprint, nil
}

func validFingerprint(s string) bool {
	if len(s) != 32 {
		return false
	}
	for i := 0; i < len(s); i++ {
		if !(s[i] >= '0' && s[i] <= '9' || s[i] >= 'a' && s[i] <= 'f') {
			return false
		}
	}
	return true
}

// fingerprint returns the controller fingerprint to pin at enrollment.
func (c *Config) fingerprint() string {
	if c.ControllerFingerprint != "" {
		return c.ControllerFingerprint
	}
	_, fp, _ := ParseEnrollToken(c.EnrollToken)
	return fp
}

// enrollCode returns the one-time code of the token, if any.
func (c *Config) enrollCode() string {
	code, _, _ := ParseEnrollToken(c.EnrollToken)
	return code
}

func ms(n int) time.Duration { return time.Duration(n) * time.Millisecond }
