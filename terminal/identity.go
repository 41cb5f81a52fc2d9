package terminal

import (
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"dalaba/internal/atomicfile"
	"dalaba/protocol"
)

// Files of the terminal's identity in its data folder.
const (
	keyFile   = "terminal.key" // the Ed25519 seed, 32 raw bytes, mode 0600
	trustFile = "trust.json"   // what enrollment pinned
)

// loadOrCreateKey returns the terminal's Ed25519 key, generating and storing
// it on first start.
func loadOrCreateKey(dir string) (ed25519.PrivateKey, error) {
	path := filepath.Join(dir, keyFile)
	seed, err := os.ReadFile(path)
	switch {
	case err == nil:
		if len(seed) != ed25519.SeedSize {
			return nil, fmt.Errorf("terminal key %s: %d bytes, want a %d-byte Ed25519 seed", path, len(seed), ed25519.SeedSize)
		}
		return ed25519.NewKeyFromSeed(seed), nil
	case !errors.Is(err, os.ErrNotExist):
		return nil, fmt.Errorf("terminal key: %w", err)
	}
	seed = make([]byte, ed25519.SeedSize)
	if _, err := rand.Read(seed); err != nil {
		return nil, fmt.Errorf("terminal key: generate: %w", err)
	}
	if err := atomicfile.Write(path, seed, 0o600); err != nil {
		return nil, fmt.Errorf("terminal key: %w", err)
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// trust is what a terminal pinned when it was enrolled. Welcomes after
// enrollment change none of it: issuing keys rotate only by signed command.
type trust struct {
	TerminalID string               `json:"terminal_id"`
	AreaCode   string               `json:"area_code"`
	Name       string               `json:"name"`
	Keys       []protocol.PublicKey `json:"keys"`
}

// loadTrust reads the trust file; (nil, nil) means not enrolled yet.
func loadTrust(dir string) (*trust, error) {
	var tr trust
	err := readJSON(filepath.Join(dir, trustFile), &tr)
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("trust file: %w", err)
	}
	if len(tr.Keys) == 0 || protocol.ValidEBRID(tr.TerminalID) != nil || protocol.ValidAreaCode(tr.AreaCode) != nil {
		return nil, fmt.Errorf("trust file %s is damaged (no keys, or a bad terminal id or area code): remove it and enroll again", filepath.Join(dir, trustFile))
	}
	return &tr, nil
}

func saveTrust(dir string, tr *trust) error {
	return writeJSONAtomic(filepath.Join(dir, trustFile), tr, 0o600)
}

// errKeyMismatch means no key of a Welcome matched the enrollment fingerprint.
var errKeyMismatch = errors.New("controller key does not match the enrollment fingerprint")

// enroll builds the trust of a first Welcome: it pins exactly the key whose
// fingerprint is fp.
func enroll(w protocol.Welcome, fp string) (*trust, error) {
	if err := protocol.ValidEBRID(w.TerminalID); err != nil {
		return nil, fmt.Errorf("welcome: terminal id: %w", err)
	}
	if err := protocol.ValidAreaCode(w.AreaCode); err != nil {
		return nil, fmt.Errorf("welcome: %w", err)
	}
	for _, k := range w.Keys {
		if len(k.PublicKey) == ed25519.PublicKeySize && protocol.Fingerprint(k.PublicKey) == fp {
			k.KeyID = protocol.KeyID(k.PublicKey)
			return &trust{TerminalID: w.TerminalID, AreaCode: w.AreaCode, Name: w.Name, Keys: []protocol.PublicKey{k}}, nil
		}
	}
	return nil, fmt.Errorf("%w %s (welcome offered %d keys)", errKeyMismatch, fp, len(w.Keys))
}

// keyring returns the pinned keys as a protocol.Keyring.
func (tr *trust) keyring() protocol.Keyring {
	ring := protocol.Keyring{}
	for _, k := range tr.Keys {
		ring.Add(k.PublicKey)
	}
	return ring
}

// replaceKeys trusts exactly keys from now on (a verified keys command):
// saved first, then used.
func (t *Terminal) replaceKeys(keys []protocol.PublicKey) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	next := *t.trust
	next.Keys = append([]protocol.PublicKey(nil), keys...)
	if err := saveTrust(t.cfg.DataDir, &next); err != nil {
		return err
	}
	t.trust, t.keyring = &next, next.keyring()
	ids := make([]string, 0, len(keys))
	for _, k := range keys {
		ids = append(ids, k.KeyID)
	}
	t.log.Info("issuing keys replaced", "kids", ids)
	return nil
}

// keyIDs lists the trusted key ids.
func (tr *trust) keyIDs() []string {
	ids := make([]string, 0, len(tr.Keys))
	for _, k := range tr.Keys {
		ids = append(ids, protocol.KeyID(k.PublicKey))
	}
	return ids
}
