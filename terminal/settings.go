package terminal

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"dalaba/protocol"
)

// settingsFile keeps what signed config commands changed, over the config file.
const settingsFile = "settings.json"

// settings are the values a controller may change by signed command.
type settings struct {
	Volume           int `json:"volume"`
	HeartbeatSeconds int `json:"heartbeat_seconds"`
}

// loadSettings returns the config file's settings with the persisted ones
// over them.
func loadSettings(dir string, cfg Config) (settings, error) {
	cur := settings{Volume: cfg.Volume, HeartbeatSeconds: cfg.HeartbeatSeconds}
	var s settings
	err := readJSON(filepath.Join(dir, settingsFile), &s)
	if errors.Is(err, os.ErrNotExist) {
		return cur, nil
	}
	if err != nil {
		return cur, fmt.Errorf("settings: %w", err)
	}
	if s.Volume >= 0 && s.Volume <= 100 {
		cur.Volume = s.Volume
	}
	if s.HeartbeatSeconds >= 5 && s.HeartbeatSeconds <= 3600 {
		cur.HeartbeatSeconds = s.HeartbeatSeconds
	}
	return cur, nil
}

// applyConfig applies and persists a verified config command.
func (t *Terminal) applyConfig(c *protocol.Config) error {
	t.mu.Lock()
	s := t.settings
	if c.Volume != nil {
		s.Volume = *c.Volume
	}
	if c.HeartbeatSeconds != nil {
		s.HeartbeatSeconds = *c.HeartbeatSeconds
	}
	t.settings = s
	close(t.settingsCh)
	t.settingsCh = make(chan struct{})
	t.mu.Unlock()
	t.log.Info("settings changed", "volume", s.Volume, "heartbeat_seconds", s.HeartbeatSeconds)
	return writeJSONAtomic(filepath.Join(t.cfg.DataDir, settingsFile), s, 0o600)
}

// currentSettings returns the settings and a channel closed when they change.
func (t *Terminal) currentSettings() (settings, <-chan struct{}) {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.settings, t.settingsCh
}

func (s settings) heartbeat() time.Duration { return time.Duration(s.HeartbeatSeconds) * time.Second }
