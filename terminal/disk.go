package terminal

import (
	"fmt"
	"syscall"

	"dalaba/protocol"
)

// The data folder's free space is checked at start and with every
// heartbeat: below minFreeBytes the disk fault is raised (a failed write
// raises it at once), and only a check that finds the space again clears
// it, so a write that happens to fit in a full disk's last block does not.
const minFreeBytes = 1 << 20

// checkDisk raises or clears the disk fault by the data folder's free space.
// At start (atStart) a clear is reported even if this process never raised
// it, for the controller may still hold it from before a restart.
func (t *Terminal) checkDisk(atStart bool) {
	var st syscall.Statfs_t
	if err := syscall.Statfs(t.cfg.DataDir, &st); err != nil {
		t.faults.raise(protocol.FaultDisk, fmt.Sprintf("cannot check the data folder %s: %v", t.cfg.DataDir, err))
		return
	}
	free := st.Bavail * uint64(st.Bsize)
	if free < minFreeBytes {
		t.faults.raise(protocol.FaultDisk, fmt.Sprintf("the data folder %s has %d KiB free, less than %d KiB: reports and alerts may not be recorded; free some space", t.cfg.DataDir, free>>10, minFreeBytes>>10))
		return
	}
	msg := fmt.Sprintf("the data folder has %d MiB free", free>>20)
	if atStart {
		t.faults.clearReported(protocol.FaultDisk, msg)
		return
	}
	t.faults.clear(protocol.FaultDisk, msg)
}
