package terminal

import (
	"encoding/json"
	"fmt"
	"os"

	"dalaba/internal/atomicfile"
)

// writeJSONAtomic writes v as indented JSON, crash-safely (atomicfile.Write).
func writeJSONAtomic(path string, v any, perm os.FileMode) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return atomicfile.Write(path, append(b, '\n'), perm)
}

// readJSON reads path into v. A missing file is reported with os.ErrNotExist.
func readJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}
