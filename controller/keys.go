package controller

import (
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"

	"dalaba/internal/atomicfile"
	"dalaba/protocol"
)

// keyFile is where an issuing key's private seed lives: readable only by
// the controller's user, never in the database or a backup of it.
func keyFile(dataDir, kid string) string {
	return filepath.Join(dataDir, "keys", "issuing-"+kid+".key")
}

// newIssuingKey makes a key and writes its seed to the data folder.
func newIssuingKey(dataDir string) (ed25519.PrivateKey, error) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	kid := protocol.KeyID(priv.Public().(ed25519.PublicKey))
	if err := os.MkdirAll(filepath.Join(dataDir, "keys"), 0o700); err != nil {
		return nil, fmt.Errorf("create key folder: %w", err)
	}
	if err := atomicfile.Write(keyFile(dataDir, kid), priv.Seed(), 0o600); err != nil {
		return nil, fmt.Errorf("write issuing key %s: %w", kid, err)
	}
	return priv, nil
}

// loadIssuingKey reads the private key named kid.
func loadIssuingKey(dataDir, kid string) (ed25519.PrivateKey, error) {
	seed, err := os.ReadFile(keyFile(dataDir, kid))
	if err != nil {
		return nil, fmt.Errorf("read issuing key %s: %w", kid, err)
	}
	if len(seed) != ed25519.SeedSize {
		return nil, fmt.Errorf("issuing key %s: file %s holds %d bytes, want %d", kid, keyFile(dataDir, kid), len(seed), ed25519.SeedSize)
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if got := protocol.KeyID(priv.Public().(ed25519.PublicKey)); got != kid {
		return nil, fmt.Errorf("issuing key file for %s holds key %s", kid, got)
	}
	return priv, nil
}
