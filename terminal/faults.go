package terminal

import (
	"log/slog"
	"maps"
	"sync"

	"dalaba/protocol"
)

// faults tracks which faults are active and reports each change (raised or
// cleared) once, in order.
type faults struct {
	log    *slog.Logger
	report func(protocol.Fault)

	mu     sync.Mutex
	active map[string]string // code → message
}

func newFaults(log *slog.Logger, report func(protocol.Fault)) *faults {
	return &faults{log: log, report: report, active: map[string]string{}}
}

// raise marks code active; only the transition is reported.
func (f *faults) raise(code, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.active[code]; ok {
		f.active[code] = msg
		return
	}
	f.active[code] = msg
	f.log.Warn("fault raised", "code", code, "msg", msg)
	f.report(protocol.Fault{Code: code, Active: true, Message: msg})
}

// clear marks code inactive; only the transition is reported.
func (f *faults) clear(code, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.active[code]; !ok {
		return
	}
	delete(f.active, code)
	f.log.Info("fault cleared", "code", code, "msg", msg)
	f.report(protocol.Fault{Code: code, Active: false, Message: msg})
}

// clearReported marks code inactive and reports it so even when this
// process never raised it: a process that stopped with it raised (killed on
// a full disk) may have left it active at the controller.
func (f *faults) clearReported(code, msg string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	delete(f.active, code)
	f.log.Info("fault clear at start", "code", code, "msg", msg)
	f.report(protocol.Fault{Code: code, Active: false, Message: msg})
}

func (f *faults) isActive(code string) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	_, ok := f.active[code]
	return ok
}

func (f *faults) snapshot() map[string]string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return maps.Clone(f.active)
}
