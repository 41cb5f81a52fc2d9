package terminal

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sync"

	"dalaba/internal/atomicfile"
	"dalaba/protocol"
)

// inflightFile lists the alerts accepted and not yet finished.
const inflightFile = "inflight.journal"

// The journal is two fixed-size slots written in turn, each a header (magic,
// generation, length, CRC-32C) and the JSON list. It is allocated in full
// when created, so that rewriting it never needs a new block: it keeps
// working on a full disk, where a write-temp-and-rename cannot.
const (
	inflightSlot   = 16 << 10
	inflightHeader = 4 + 8 + 4 + 4
)

var (
	inflightMagic = []byte("DIF1")
	castagnoli    = crc32.MakeTable(crc32.Castagnoli)
)

// inflight is the durable list of alerts this terminal accepted and has not
// yet reported finished. A terminal that was killed (power cut, SIGKILL,
// watchdog) finds them on the next start and reports each failed with
// reason "interrupted": the controller then knows the loudspeaker did not
// finish, and the command itself is never played again (the replay guard
// holds its id), so a finished alert cannot sound twice.
type inflight struct {
	path string

	mu      sync.Mutex
	f       *os.File // nil until the journal could be created
	gen     uint64
	entries []inflightEntry
}

type inflightEntry struct {
	CommandID string `json:"command_id"`
	EBMID     string `json:"ebm_id"`
}

// loadInflight reads the list left by the previous run, creating the
// journal if there is none. One that cannot be created yet (a full disk) is
// created on the next change; one damaged beyond reading is replaced.
func loadInflight(dir string) (*inflight, error) {
	j := &inflight{path: filepath.Join(dir, inflightFile)}
	f, err := os.OpenFile(j.path, os.O_RDWR, 0)
	if errors.Is(err, os.ErrNotExist) {
		j.create() // failing, it is tried again on the first change
		return j, nil
	}
	if err != nil {
		return nil, fmt.Errorf("alerts in flight: %w", err)
	}
	buf := make([]byte, 2*inflightSlot)
	if _, err := io.ReadFull(f, buf); err != nil {
		f.Close()
		if err := j.create(); err != nil {
			return nil, fmt.Errorf("alerts in flight: %s is damaged and cannot be replaced: %w", j.path, err)
		}
		return j, nil
	}
	j.f = f
	found := false
	for slot := range 2 {
		gen, entries, ok := decodeInflightSlot(buf[slot*inflightSlot : (slot+1)*inflightSlot])
		if ok && (!found || gen > j.gen) {
			j.gen, j.entries, found = gen, entries, true
		}
	}
	return j, nil
}

// decodeInflightSlot returns a slot's generation and list, if it is intact.
func decodeInflightSlot(b []byte) (gen uint64, entries []inflightEntry, ok bool) {
	if !bytes.Equal(b[:4], inflightMagic) {
		return 0, nil, false
	}
	gen = binary.LittleEndian.Uint64(b[4:])
	n := int(binary.LittleEndian.Uint32(b[12:]))
	sum := binary.LittleEndian.Uint32(b[16:])
	if n > len(b)-inflightHeader {
		return 0, nil, false
	}
	body := b[inflightHeader : inflightHeader+n]
	if crc32.Checksum(body, castagnoli) != sum || json.Unmarshal(body, &entries) != nil {
		return 0, nil, false
	}
	return gen, entries, true
}

// create allocates the journal: a zeroed file of two slots, written to a
// temporary name, synced and renamed. Callers hold j.mu.
func (j *inflight) create() error {
	if err := atomicfile.Write(j.path, make([]byte, 2*inflightSlot), 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(j.path, os.O_RDWR, 0)
	if err != nil {
		return err
	}
	j.f = f
	return nil
}

// save writes the list into the older slot and syncs it. Callers hold j.mu.
func (j *inflight) save() error {
	if j.f == nil {
		if err := j.create(); err != nil {
			return fmt.Errorf("create %s: %w", j.path, err)
		}
	}
	body, err := json.Marshal(j.entries)
	if err != nil {
		return err
	}
	if len(body) > inflightSlot-inflightHeader {
		return fmt.Errorf("%d alerts in flight do not fit in %s", len(j.entries), j.path)
	}
	b := make([]byte, inflightHeader+len(body))
	copy(b, inflightMagic)
	binary.LittleEndian.PutUint64(b[4:], j.gen+1)
	binary.LittleEndian.PutUint32(b[12:], uint32(len(body)))
	binary.LittleEndian.PutUint32(b[16:], crc32.Checksum(body, castagnoli))
	copy(b[inflightHeader:], body)
	if _, err := j.f.WriteAt(b, int64((j.gen+1)%2)*inflightSlot); err != nil {
		return fmt.Errorf("write %s: %w", j.path, err)
	}
	if err := j.f.Sync(); err != nil {
		return fmt.Errorf("sync %s: %w", j.path, err)
	}
	j.gen++
	return nil
}

// left returns the alerts the previous run did not finish.
func (j *inflight) left() []inflightEntry {
	j.mu.Lock()
	defer j.mu.Unlock()
	return slices.Clone(j.entries)
}

// note follows an alert's receipts: accepted adds it, a final state removes
// it. Other commands (config, keys) carry no EBM id and are not followed.
func (j *inflight) note(cmdID, ebmID, state string) error {
	if j == nil || ebmID == "" {
		return nil
	}
	j.mu.Lock()
	defer j.mu.Unlock()
	i := slices.IndexFunc(j.entries, func(e inflightEntry) bool { return e.CommandID == cmdID })
	switch {
	case state == protocol.DeliveryAccepted && i < 0:
		j.entries = append(j.entries, inflightEntry{CommandID: cmdID, EBMID: ebmID})
	case protocol.DeliveryFinal(state) && i >= 0:
		j.entries = slices.Delete(j.entries, i, i+1)
	default:
		return nil
	}
	return j.save()
}

func (j *inflight) close() {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.f != nil {
		j.f.Close()
		j.f = nil
	}
}

// reportInterrupted reports every alert the previous run accepted and did
// not finish as failed, reason "interrupted". Each is reported before it
// leaves the list, so a crash here reports it again (the controller keeps
// the first final state).
func (t *Terminal) reportInterrupted() {
	for _, e := range t.flight.left() {
		t.log.Warn("alert interrupted by a restart", "command", e.CommandID, "ebm_id", e.EBMID)
		t.receipt(e.CommandID, e.EBMID, protocol.DeliveryFailed, "interrupted", "the terminal restarted before the alert finished (power loss or crash); it is not played again")
	}
}
