package controller

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"dalaba/controller/access"
	"dalaba/controller/audit"
	"dalaba/controller/auth"
	"dalaba/controller/store"
	"dalaba/internal/atomicfile"
	"dalaba/protocol"
)

// DatabaseFile is the SQLite file inside the data folder.
const DatabaseFile = "dalaba.db"

// TokenFile holds the admin API token for the CLI on the controller's own
// machine, readable only by its user.
const TokenFile = "admin.token"

// InitOptions describe a new installation.
type InitOptions struct {
	DataDir    string
	CountyCode string // 12 digits, e.g. 450224000000
	CountyName string
	Listen     string
	KeyLife    time.Duration // issuing key validity, default two years
	AdminName  string        // the first admin's sign-in name, default "admin"
	// AdminPassword is the first admin's password, as they typed it. Empty:
	// a one-time password is made, printed once, and must be changed at
	// first sign-in.
	AdminPassword string
}

// InitResult is what a new installation's operator must see once.
type InitResult struct {
	ConfigPath  string
	AdminName   string
	OneTimePass string // set when no password was given
	AdminToken  string
	KeyID       string
	Fingerprint string
}

// Init creates a data folder with a database, an issuing key, an admin
// token and a config file. It refuses to touch an existing installation.
func Init(ctx context.Context, o InitOptions, now time.Time) (InitResult, error) {
	var res InitResult
	if err := protocol.ValidAreaCode(o.CountyCode); err != nil {
		return res, fmt.Errorf("county: %w", err)
	}
	if protocol.AreaLevelPrefix(o.CountyCode) != o.CountyCode[:6] {
		return res, fmt.Errorf("county: %s is not a county code (6 digits then 000000, e.g. 450224000000)", o.CountyCode)
	}
	if o.CountyName == "" {
		return res, errors.New("county name is required")
	}
	if o.KeyLife == 0 {
		o.KeyLife = 2 * 365 * 24 * time.Hour
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, DatabaseFile)); err == nil {
		return res, fmt.Errorf("%s already holds an installation; refusing to overwrite it", o.DataDir)
	}
	if err := os.MkdirAll(o.DataDir, 0o700); err != nil {
		return res, fmt.Errorf("create data folder: %w", err)
	}
	st, err := store.Open(filepath.Join(o.DataDir, DatabaseFile))
	if err != nil {
		return res, err
	}
	defer st.Close()
	if err := st.PutArea(ctx, store.Area{Code: o.CountyCode, Name: o.CountyName}); err != nil {
		return res, err
	}
	priv, err := newIssuingKey(o.DataDir)
	if err != nil {
		return res, err
	}
	pub := priv.Public().(ed25519.PublicKey)
	if err := st.AddIssuingKey(ctx, store.IssuingKey{PublicKey: pub, CreatedAt: now, NotAfter: now.Add(o.KeyLife), Active: true}); err != nil {
		return res, err
	}
	if o.AdminName == "" {
		o.AdminName = "admin"
	}
	pw, mustChange := o.AdminPassword, false
	if pw == "" {
		pw, mustChange = auth.OneTimePassword(), true
		res.OneTimePass = pw
	} else if err := auth.CheckPasswordRules(pw, o.AdminName); err != nil {
		return res, fmt.Errorf("admin password: %w", err)
	}
	hash, err := auth.HashPassword(pw)
	if err != nil {
		return res, err
	}
	admin, err := st.CreateUser(ctx, store.User{Name: o.AdminName, Display: o.AdminName, Password: hash, MustChange: mustChange,
		Roles: []string{access.Admin}, Areas: []string{o.CountyCode}}, now)
	if err != nil {
		return res, err
	}
	token, err := NewSecret()
	if err != nil {
		return res, err
	}
	if err := st.AddUserToken(ctx, HashSecret(token), "init", admin.ID, now); err != nil {
		return res, err
	}
	res.AdminName = admin.Name
	auditKey, err := loadAuditKey(o.DataDir)
	if err != nil {
		return res, err
	}
	if _, err := st.AppendAudit(ctx, auditKey, audit.Entry{At: now, Actor: "system", Action: "install.init", Target: o.CountyCode,
		After: o.AdminName, Detail: "issuing key " + protocol.KeyID(pub)}); err != nil {
		return res, err
	}
	if err := atomicfile.Write(filepath.Join(o.DataDir, TokenFile), []byte(token+"\n"), 0o600); err != nil {
		return res, fmt.Errorf("write admin token: %w", err)
	}
	cfg := DefaultConfig()
	cfg.DataDir = "."
	if o.Listen != "" {
		cfg.Listen = o.Listen
	}
	cfg.PlatformEBRID = "4" + o.CountyCode + "0000000001"
	data, _ := json.MarshalIndent(cfg, "", "  ")
	res.ConfigPath = filepath.Join(o.DataDir, ConfigFile)
	if err := atomicfile.Write(res.ConfigPath, append(data, '\n'), 0o600); err != nil {
		return res, fmt.Errorf("write config: %w", err)
	}
	res.AdminToken, res.KeyID, res.Fingerprint = token, protocol.KeyID(pub), protocol.Fingerprint(pub)
	return res, nil
}

// NewSecret returns 32 random bytes as unpadded base64url text.
func NewSecret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// HashSecret is how tokens and enrollment codes are kept: by SHA-256.
func HashSecret(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}
