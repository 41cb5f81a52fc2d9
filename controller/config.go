// Package controller is the county platform: it keeps the area tree and the
// terminals, stores media, signs and dispatches alerts, tracks every
// delivery, and serves the HTTP API and the terminals' WebSocket endpoint.
package controller

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"unicode"

	"dalaba/protocol"
)

// Config is the controller's configuration file (JSON).
type Config struct {
	Listen           string `json:"listen"`            // host:port for the API and terminals
	DataDir          string `json:"data_dir"`          // database, keys, media
	TLSCert          string `json:"tls_cert"`          // PEM; with tls_key, serve HTTPS and wss://
	TLSKey           string `json:"tls_key"`           //
	PlatformEBRID    string `json:"platform_ebrid"`    // this platform's 23-digit resource code
	HeartbeatSeconds int    `json:"heartbeat_seconds"` // told to terminals
	MaxUploadMB      int    `json:"max_upload_mb"`     // largest media upload
	DefaultValidMin  int    `json:"default_valid_minutes"`
	TimeZone         string `json:"time_zone"`     // the county's calendar and wall clock, for schedules
	QuietHours       string `json:"quiet_hours"`   // e.g. "22:00-06:00": no routine programs then; "" none
	ScheduleDays     int    `json:"schedule_days"` // days of schedule each terminal holds ahead, 1..7

	// Sources are the external alert senders and their policy (docs/sources.md).
	Sources []SourceConfig `json:"sources"`
	// TTS is the text-to-speech command (docs/sources.md).
	TTS TTSConfig `json:"tts"`
	// CAP is CAP 1.2 ingest and export: trust list, feeds, mappings (docs/sources.md).
	CAP CAPConfig `json:"cap"`
	// EBD is the packet exchange with the superior platform (docs/ebd.md).
	EBD EBDConfig `json:"ebd"`
}

// DefaultConfig returns the defaults every file and variable overrides.
func DefaultConfig() Config {
	return Config{
		Listen:           ":8440",
		DataDir:          "./dalaba-data",
		HeartbeatSeconds: 30,
		MaxUploadMB:      32,
		DefaultValidMin:  60,
		TimeZone:         "Asia/Shanghai",
		ScheduleDays:     3,
	}
}

// ConfigFile is the name of the config file inside the data folder.
const ConfigFile = "controller.json"

// LoadConfig reads defaults, then the file at path (if it exists), then
// DALABA_* environment variables, then validates.
func LoadConfig(path string) (Config, error) {
	c := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return c, fmt.Errorf("read config: %w", err)
		}
		if err := decodeConfig(data, &c); err != nil {
			return c, fmt.Errorf("config %s: %w", path, err)
		}
		if c.DataDir != "" && !filepath.IsAbs(c.DataDir) {
			c.DataDir = filepath.Join(filepath.Dir(path), c.DataDir)
		}
	}
	if err := c.applyEnv(os.LookupEnv); err != nil {
		return c, err
	}
	return c, c.Validate()
}

func (c *Config) applyEnv(lookup func(string) (string, bool)) error {
	str := map[string]*string{
		"DALABA_LISTEN": &c.Listen, "DALABA_DATA_DIR": &c.DataDir, "DALABA_TLS_CERT": &c.TLSCert,
		"DALABA_TLS_KEY": &c.TLSKey, "DALABA_PLATFORM_EBRID": &c.PlatformEBRID,
		"DALABA_TIME_ZONE": &c.TimeZone, "DALABA_QUIET_HOURS": &c.QuietHours,
	}
	for k, p := range str {
		if v, ok := lookup(k); ok {
			*p = v
		}
	}
	ints := map[string]*int{"DALABA_HEARTBEAT_SECONDS": &c.HeartbeatSeconds, "DALABA_MAX_UPLOAD_MB": &c.MaxUploadMB,
		"DALABA_SCHEDULE_DAYS": &c.ScheduleDays}
	for k, p := range ints {
		if v, ok := lookup(k); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				return fmt.Errorf("%s: %q is not a number", k, v)
			}
			*p = n
		}
	}
	return nil
}

// Validate checks every field; errors name the key.
func (c Config) Validate() error {
	var errs []error
	if _, _, err := net.SplitHostPort(c.Listen); err != nil {
		errs = append(errs, fmt.Errorf("listen: %q is not host:port", c.Listen))
	}
	if strings.TrimSpace(c.DataDir) == "" {
		errs = append(errs, errors.New("data_dir: must be set"))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("tls_cert and tls_key: give both or neither"))
	}
	if c.PlatformEBRID != "" {
		if err := protocol.ValidEBRID(c.PlatformEBRID); err != nil {
			errs = append(errs, fmt.Errorf("platform_ebrid: %w", err))
		}
	}
	if c.HeartbeatSeconds < 5 || c.HeartbeatSeconds > 3600 {
		errs = append(errs, fmt.Errorf("heartbeat_seconds: %d is outside 5..3600", c.HeartbeatSeconds))
	}
	if c.MaxUploadMB < 1 || c.MaxUploadMB > protocol.MaxMediaSize>>20 {
		errs = append(errs, fmt.Errorf("max_upload_mb: %d is outside 1..%d", c.MaxUploadMB, protocol.MaxMediaSize>>20))
	}
	if c.DefaultValidMin < 1 || c.DefaultValidMin > int(protocol.MaxCommandLifetime.Minutes()) {
		errs = append(errs, fmt.Errorf("default_valid_minutes: %d is outside 1..%d", c.DefaultValidMin, int(protocol.MaxCommandLifetime.Minutes())))
	}
	errs = append(errs, c.validateSchedules()...)
	errs = append(errs, c.validateSources()...)
	if err := c.TTS.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.CAP.validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.EBD.validate(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// decodeConfig decodes the one JSON object of a config file over c. It
// refuses unknown keys and anything after the object, and its errors name
// the key or the line (never a bare "EOF").
func decodeConfig(data []byte, c *Config) error {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	err := dec.Decode(c)
	line := func(offset int64) int {
		return 1 + bytes.Count(data[:min(max(int(offset), 0), len(data))], []byte("\n"))
	}
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case err == nil:
		after := data[dec.InputOffset():]
		if rest := bytes.TrimSpace(after); len(rest) > 0 {
			at := len(data) - len(bytes.TrimLeft(after, " \t\r\n"))
			return fmt.Errorf("line %d: unexpected %q after the config object", line(int64(at)), rest[:min(len(rest), 20)])
		}
		return nil
	case errors.Is(err, io.EOF):
		return fmt.Errorf("line %d: no config object: the file is empty", line(int64(len(data))))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return fmt.Errorf("line %d: the file ends inside the config object", line(int64(len(data))))
	case errors.As(err, &se):
		return fmt.Errorf("line %d: %v", line(se.Offset), se)
	case errors.As(err, &te) && te.Field == "":
		return fmt.Errorf("line %d: got a JSON %s, want an object of config keys", line(te.Offset), te.Value)
	case errors.As(err, &te):
		want := te.Type.String()
		switch te.Type.Kind() {
		case reflect.Int:
			want = "a whole number"
		case reflect.String:
			want = "a string"
		}
		return fmt.Errorf("%s: got a JSON %s, want %s", te.Field, te.Value, want)
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		if key, uerr := strconv.Unquote(name); uerr == nil {
			if strings.ContainsFunc(key, func(r rune) bool { return !unicode.IsGraphic(r) }) {
				key = name // quoted, so the message stays on one line
			}
			return fmt.Errorf("%s: unknown key", key)
		}
	}
	return err
}
