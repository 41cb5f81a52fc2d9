// Package terminal is the Dalaba terminal daemon: it keeps a WebSocket link
// to the county controller, verifies signed commands, plays alerts through a
// relay-switched amplifier and reports every step back through a crash-safe
// spool.
package terminal

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/gorilla/websocket"

	"dalaba/protocol"
	"dalaba/terminal/mediacache"
	"dalaba/terminal/seen"
	"dalaba/terminal/spool"
)

// Firmware is the version string sent in the hello and heartbeats.
var Firmware = "dalaba-terminal/0.1"

// Files in the data folder besides the identity (identity.go).
const (
	spoolFile = "reports.spool"
	seenFile  = "seen.log"
	mediaDir  = "media"
)

// Terminal is one terminal daemon. Create it with New and start it with Run.
type Terminal struct {
	cfg   Config
	log   *slog.Logger
	clock Clock

	key     ed25519.PrivateKey
	spool   *spool.Spool
	seen    *seen.Guard
	cache   *mediacache.Cache
	flight  *inflight // alerts accepted and not yet finished, across restarts
	amp     *amplifier
	speaker *speaker
	player  *player
	table   *timetable
	faults  *faults
	fetch   fetchSlots
	ws      *websocket.Dialer
	offset  clockOffset
	started time.Time
	// Reconnect backoff bounds; tests shorten them.
	backoffMin, backoffMax time.Duration
	// chunkIdle is how long a fetch waits for its next chunk before asking
	// again; tests shorten it.
	chunkIdle time.Duration
	// pingEvery is the ping interval for the first minute of a connection,
	// while the clock estimate settles (0: only with heartbeats).
	pingEvery time.Duration
	bg        sync.WaitGroup // fetches and prefetches, ended by Run's context

	mu         sync.Mutex
	trust      *trust // nil until enrolled
	keyring    protocol.Keyring
	sess       *session      // the welcomed connection, nil when offline
	sessCh     chan struct{} // closed and replaced when sess changes
	settings   settings
	settingsCh chan struct{} // closed and replaced when settings change
	beatSoon   chan struct{} // the loudspeaker's state changed: heartbeat now
	hooks      Hooks
}

// Hooks let a program that embeds terminals (the fleet simulator, sim/)
// watch them. They are called synchronously and must not block.
type Hooks struct {
	Link     func(up bool)                       // a connection was welcomed (true) or ended
	Playing  func(ebmID string)                  // an alert made its first sound
	Fetching func(ebmID string)                  // an alert's media is not in the cache: fetching it
	Paused   func(ebmID string, d time.Duration) // an alert's audio waited d for its media, in one item's playback
}

// SetHooks installs h; call it before Run.
func (t *Terminal) SetHooks(h Hooks) { t.hooks = h }

// New returns a terminal for cfg, which should have passed Validate. It
// opens nothing: Run does.
func New(cfg Config, log *slog.Logger) *Terminal {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	t := &Terminal{
		cfg:        cfg,
		log:        log,
		clock:      realClock{},
		backoffMin: time.Second,
		backoffMax: 60 * time.Second,
		chunkIdle:  30 * time.Second,
		pingEvery:  2 * time.Second,
		sessCh:     make(chan struct{}),
		settingsCh: make(chan struct{}),
		beatSoon:   make(chan struct{}, 1),
		settings:   settings{Volume: cfg.Volume, HeartbeatSeconds: cfg.HeartbeatSeconds},
	}
	start := time.Now()
	t.offset.mono = func() time.Duration { return time.Since(start) } // follows steps of the local clock
	t.faults = newFaults(t.log.With("subsystem", "faults"), t.reportFault)
	t.amp = newAmplifier(t, cfg.Relay)
	t.speaker = newSpeaker(t, cfg.Audio)
	t.player = newPlayer(t)
	t.table = newTimetable(t)
	return t
}

// Run opens the data folder and devices, then keeps the controller link,
// plays alerts and reports until ctx ends. It returns an error only when the
// terminal cannot start; on cancel it stops everything, the relay switched
// OFF, and returns nil.
func (t *Terminal) Run(ctx context.Context) error {
	if err := t.open(); err != nil {
		return err
	}
	defer t.close()
	t.started = t.clock.Now()
	t.log.Info("terminal starting", "data_dir", t.cfg.DataDir, "public_key_fp", protocol.Fingerprint(t.key.Public().(ed25519.PublicKey)),
		"enrolled", t.Status().Enrolled, "relay", t.cfg.Relay.Protocol, "audio", t.cfg.Audio.Output)

	t.amp.start(ctx) // switches OFF whatever a crash left ON
	t.reportInterrupted()
	t.checkDisk(true)
	t.speaker.start()  // a missing device is a fault, not a reason to stop
	t.table.start(ctx) // plays the stored schedule, connected or not
	var wg sync.WaitGroup
	for _, loop := range []func(context.Context){t.player.run, t.connectLoop, t.pruneLoop} {
		wg.Add(1)
		go func() { defer wg.Done(); loop(ctx) }()
	}
	wg.Wait()
	t.bg.Wait()
	t.amp.stop()
	t.speaker.stop()
	t.log.Info("terminal stopped")
	return nil
}

// open prepares the data folder and everything stored in it. Fields are
// published under t.mu, since Status may be called while Run opens.
func (t *Terminal) open() error {
	dialer, err := t.dialer()
	if err != nil {
		return err
	}
	t.ws = dialer
	dir := t.cfg.DataDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("data_dir: %w", err)
	}
	key, err := loadOrCreateKey(dir)
	if err != nil {
		return err
	}
	tr, err := loadTrust(dir)
	if err != nil {
		return err
	}
	if tr == nil && t.cfg.fingerprint() == "" {
		return errors.New("this terminal is not enrolled: set enroll_token (from `dalaba terminal enroll`) or controller_fingerprint")
	}
	st, err := loadSettings(dir, t.cfg)
	if err != nil {
		return err
	}
	t.table.load(dir)
	t.loadClock(dir)
	flight, err := loadInflight(dir)
	if err != nil {
		return err
	}
	sp, err := spool.Open(filepath.Join(dir, spoolFile))
	if err != nil {
		return err
	}
	guard, err := seen.Open(filepath.Join(dir, seenFile))
	if err != nil {
		sp.Close()
		return err
	}
	cache, err := mediacache.Open(filepath.Join(dir, mediaDir), int64(t.cfg.CacheMaxMB)<<20)
	if err != nil {
		sp.Close()
		guard.Close()
		return err
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	t.key, t.trust, t.settings = key, tr, st
	if tr != nil {
		t.keyring = tr.keyring()
	}
	t.spool, t.seen, t.cache, t.flight = sp, guard, cache, flight
	return nil
}

func (t *Terminal) close() {
	t.flight.close()
	if err := t.seen.Close(); err != nil {
		t.log.Error("close replay guard", "err", err)
	}
	if err := t.spool.Close(); err != nil {
		t.log.Error("close spool", "err", err)
	}
}

// pruneLoop drops expired command ids from the replay guard every hour.
func (t *Terminal) pruneLoop(ctx context.Context) {
	for {
		if err := t.seen.Prune(t.pruneTime(), time.Hour); err != nil {
			t.log.Error("prune replay guard", "err", err)
		}
		t.player.pruneCancelled(t.now())
		if !t.sleep(ctx.Done(), time.Hour) {
			return
		}
	}
}

// pruneTime is the earlier of the local clock and the controller estimate:
// a controller (or an impostor on its address) that claims a time far ahead
// cannot make the terminal forget ids early, so it cannot replay them.
func (t *Terminal) pruneTime() time.Time {
	local, est := t.localNow(), t.now()
	if est.Before(local) {
		return est
	}
	return local
}

// Status is a snapshot of the terminal for tests and diagnostics.
type Status struct {
	Enrolled         bool
	TerminalID       string
	AreaCode         string
	Connected        bool
	Controller       string // URL of the welcomed connection
	State            string // protocol.State*
	Playing          string // EBM id or schedule item id while the amplifier is on for it
	Queued           int    // alerts and schedule items waiting, including later ones
	RelayOn          bool
	Faults           map[string]string // active faults: code → message
	ClockOffset      time.Duration     // controller minus local clock estimate
	PendingReports   int
	Volume           int
	HeartbeatSeconds int
}

// Status returns the terminal's current state.
func (t *Terminal) Status() Status {
	t.mu.Lock()
	st := Status{Enrolled: t.trust != nil, Volume: t.settings.Volume, HeartbeatSeconds: t.settings.HeartbeatSeconds}
	if t.trust != nil {
		st.TerminalID, st.AreaCode = t.trust.TerminalID, t.trust.AreaCode
	}
	if t.sess != nil {
		st.Connected, st.Controller = true, t.sess.url
	}
	sp := t.spool
	t.mu.Unlock()
	st.Playing, st.Queued = t.player.snapshot()
	st.RelayOn = t.amp.isOn()
	st.Faults = t.faults.snapshot()
	st.ClockOffset = t.offset.get()
	if sp != nil {
		st.PendingReports = sp.Len()
	}
	st.State = protocol.StateIdle
	switch {
	case st.Playing != "":
		st.State = protocol.StatePlaying
	case len(st.Faults) > 0:
		st.State = protocol.StateFault
	}
	return st
}
