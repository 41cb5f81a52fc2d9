package controller

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"dalaba/controller/audit"
	"dalaba/internal/atomicfile"
)

// auditKeyFile holds the key that seals the audit log. It lives with the
// issuing keys, outside the database: someone who can edit the database
// but not read this file cannot reseal what they changed.
func auditKeyFile(dataDir string) string { return filepath.Join(dataDir, "keys", "audit.key") }

// loadAuditKey reads the audit key, making one if the installation has none.
func loadAuditKey(dataDir string) ([]byte, error) {
	key, err := os.ReadFile(auditKeyFile(dataDir))
	if errors.Is(err, fs.ErrNotExist) {
		key = make([]byte, 32)
		rand.Read(key)
		if err := os.MkdirAll(filepath.Dir(auditKeyFile(dataDir)), 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(auditKeyFile(dataDir), key, 0o600); err != nil {
			return nil, fmt.Errorf("write audit key: %w", err)
		}
		return key, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read audit key: %w", err)
	}
	if len(key) != 32 {
		return nil, fmt.Errorf("audit key %s holds %d bytes, want 32", auditKeyFile(dataDir), len(key))
	}
	return key, nil
}

// audit appends one sealed entry. A failure is logged loudly: the action
// it records has happened.
func (c *Controller) audit(ctx context.Context, actor, source, action, target, before, after, detail string) {
	e := audit.Entry{At: c.now(), Actor: actor, Source: source, Action: action, Target: target, Before: before, After: after, Detail: detail}
	if _, err := c.store.AppendAudit(context.WithoutCancel(ctx), c.auditKey, e); err != nil {
		c.log.Error("AUDIT LOG WRITE FAILED", "action", action, "actor", actor, "target", target, "err", err)
	}
}

// jsonText renders v for an audit entry's before/after.
func jsonText(v any) string {
	if v == nil {
		return ""
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// VerifyAudit checks the whole audit log; see store.VerifyAudit.
func (c *Controller) VerifyAudit(ctx context.Context) (int, error) {
	return c.store.VerifyAudit(ctx, c.auditKey)
}
