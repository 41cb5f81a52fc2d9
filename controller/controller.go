package controller

import (
	"context"
	"crypto/ed25519"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"dalaba/controller/auth"
	"dalaba/controller/events"
	"dalaba/controller/store"
	"dalaba/protocol"
)

// Controller is a running county platform.
type Controller struct {
	cfg    Config
	log    *slog.Logger
	store  *store.Store
	events *events.Broker
	hub    *hub
	media  *mediaStore
	now    func() time.Time

	keyMu   sync.RWMutex
	signer  ed25519.PrivateKey            // the active issuing key
	keys    []store.IssuingKey            // trusted (not retired), active first
	private map[string]ed25519.PrivateKey // every trusted key, by kid

	auditKey     []byte
	throttle     *auth.Throttle // failed sign-ins per account
	addrThrottle *auth.Throttle // failed sign-ins per source address, never cleared by a success
	termAreas    sync.Map       // terminal id → area code; a terminal never moves
	keysSent     sync.Map       // keys command id → the key ids it carries
	sched        *scheduler
	ebd          *ebdState // the superior platform exchange; nil when not configured

	capMu sync.Mutex // one CAP message at a time (cap.go)

	addrMu sync.Mutex
	addr   net.Addr // where it listens, once Run has started
	ready  chan struct{}
}

// New opens the data folder of an installation made by Init.
func New(cfg Config, log *slog.Logger) (*Controller, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	dbPath := filepath.Join(cfg.DataDir, DatabaseFile)
	if _, err := os.Stat(dbPath); err != nil {
		return nil, fmt.Errorf("no installation in %s (run `dalaba init` first): %w", cfg.DataDir, err)
	}
	st, err := store.Open(dbPath)
	if err != nil {
		return nil, err
	}
	c := &Controller{cfg: cfg, log: log, store: st, events: events.New(), now: time.Now, ready: make(chan struct{}),
		throttle: auth.NewThrottle(5, 15*time.Minute, 15*time.Minute),
		// An office behind one address has several people mistyping, so the
		// address allows more; a success does not clear it, or one valid
		// account would let a guesser go on for ever.
		addrThrottle: auth.NewThrottle(20, 15*time.Minute, 15*time.Minute)}
	if c.auditKey, err = loadAuditKey(cfg.DataDir); err != nil {
		st.Close()
		return nil, err
	}
	if c.cfg.PlatformEBRID == "" {
		st.Close()
		return nil, errors.New("platform_ebrid: must be set (dalaba init writes it)")
	}
	if err := c.loadKeys(context.Background()); err != nil {
		st.Close()
		return nil, err
	}
	if c.media, err = openMediaStore(filepath.Join(cfg.DataDir, "media")); err != nil {
		st.Close()
		return nil, err
	}
	if c.sched, err = newScheduler(cfg); err != nil {
		st.Close()
		return nil, err
	}
	if c.ebd, err = newEBD(cfg); err != nil {
		st.Close()
		return nil, err
	}
	c.hub = newHub(c)
	return c, nil
}

func (c *Controller) loadKeys(ctx context.Context) error {
	all, err := c.store.IssuingKeys(ctx)
	if err != nil {
		return err
	}
	if len(all) == 0 || !all[0].Active {
		return errors.New("no active issuing key in the database (run `dalaba init`)")
	}
	var keys []store.IssuingKey
	private := map[string]ed25519.PrivateKey{}
	for _, k := range all {
		if !k.Retired.IsZero() {
			continue
		}
		priv, err := loadIssuingKey(c.cfg.DataDir, k.KeyID)
		if err != nil {
			return err
		}
		keys, private[k.KeyID] = append(keys, k), priv
	}
	c.keyMu.Lock()
	c.signer, c.keys, c.private = private[keys[0].KeyID], keys, private
	c.keyMu.Unlock()
	return nil
}

// Store exposes the database to in-process tools such as the demo.
func (c *Controller) Store() *store.Store { return c.store }

// Addr waits until the controller listens and returns its address.
func (c *Controller) Addr(ctx context.Context) (net.Addr, error) {
	select {
	case <-c.ready:
		c.addrMu.Lock()
		defer c.addrMu.Unlock()
		return c.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Run serves until ctx ends, then shuts down within a few seconds.
func (c *Controller) Run(ctx context.Context) error {
	defer c.store.Close()
	if err := c.store.MarkAllOffline(ctx); err != nil {
		return err
	}
	if err := c.store.EndHeartbeatHistory(ctx); err != nil {
		return err
	}
	ln, err := net.Listen("tcp", c.cfg.Listen)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", c.cfg.Listen, err)
	}
	c.addrMu.Lock()
	c.addr = ln.Addr()
	c.addrMu.Unlock()
	close(c.ready)
	srv := &http.Server{
		Handler:           bodyDeadline(c.routes()),
		ReadHeaderTimeout: 10 * time.Second,
		IdleTimeout:       120 * time.Second,
		ErrorLog:          slog.NewLogLogger(c.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() {
		if c.cfg.TLSCert != "" {
			errc <- srv.ServeTLS(ln, c.cfg.TLSCert, c.cfg.TLSKey)
		} else {
			errc <- srv.Serve(ln)
		}
	}()
	c.log.Info("controller listening", "addr", ln.Addr().String(), "tls", c.cfg.TLSCert != "")
	go c.expireLoop(ctx)
	go c.hub.closeSilent(ctx, time.Duration(3*c.cfg.HeartbeatSeconds)*time.Second)
	go c.hub.pace(ctx)
	go c.expiryWarnings(ctx)
	go c.scheduleLoop(ctx)
	go c.ebdReportLoop(ctx)
	go c.capPollLoop(ctx)
	select {
	case err := <-errc:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	shut, cancel := context.WithTimeout(context.Background(), 3*time.Second)
	defer cancel()
	// The listener closes first: a terminal whose connection closes comes
	// straight back, and 15,000 of them answered 503 one by one while the
	// connections closed made a stop outlast its bound. Then no session
	// attaches any more (closeAll), and those in their handshake end.
	served := make(chan struct{})
	go func() { srv.Shutdown(shut); close(served) }()
	c.hub.closeAll()
	<-served
	done := make(chan struct{})
	go func() { c.hub.running.Wait(); close(done) }()
	select { // the sessions store their last reports before the store closes
	case <-done:
	case <-shut.Done():
	}
	// Every terminal offline in one statement: one by one, through the
	// heartbeat batch, 15,000 took longer than a stop may (the next start
	// does the same, for a controller that could not).
	final, cancelFinal := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancelFinal()
	if err := c.store.MarkAllOffline(final); err != nil {
		c.log.Error("record every terminal offline", "err", err)
	}
	if err := c.store.EndHeartbeatHistory(final); err != nil {
		c.log.Error("end heartbeat histories", "err", err)
	}
	return nil
}

// A request body must arrive within bodyGrace plus its declared length at
// bodyMinRate: a client that sends half a body and stalls is cut, while an
// upload at the size limit over a slow county link still fits. (No server
// ReadTimeout: it would also end the event stream and terminal sessions.)
const (
	bodyGrace   = 10 * time.Second
	bodyMinRate = 32 << 10 // bytes per second
)

// bodyDeadline sets a read deadline on requests that carry a body.
func bodyDeadline(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			size := r.ContentLength
			if size < 0 { // chunked: allow the largest upload
				size = protocol.MaxMediaSize
			}
			d := bodyGrace + time.Duration(size/bodyMinRate)*time.Second
			rc := http.NewResponseController(w)
			rc.SetReadDeadline(time.Now().Add(d))
			r.Body = &deadlineBody{ReadCloser: r.Body, rc: rc}
		}
		next.ServeHTTP(w, r)
	})
}

// deadlineBody lifts the read deadline once the body is read: the server
// then watches the connection for a hang-up, and a deadline passing there
// would cancel a handler still working on the request.
type deadlineBody struct {
	io.ReadCloser
	rc *http.ResponseController
}

func (b *deadlineBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if err == io.EOF {
		b.rc.SetReadDeadline(time.Time{})
	}
	return n, err
}

// expireLoop marks alerts whose validity passed, once a second.
func (c *Controller) expireLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			changed, err := c.store.ExpireAlerts(ctx, c.now())
			if err != nil && ctx.Err() == nil {
				c.log.Error("expire alerts", "err", err)
			}
			for _, d := range changed {
				c.publishDelivery(d)
			}
		}
	}
}

func (c *Controller) publishDelivery(d store.Delivery) {
	c.events.Publish(events.Event{Kind: events.KindDelivery, At: d.UpdatedAt, AlertID: d.AlertID, Data: d})
}

// publicKeys are the issuing keys as terminals see them.
func (c *Controller) publicKeys() []protocol.PublicKey {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	out := make([]protocol.PublicKey, 0, len(c.keys))
	for _, k := range c.keys {
		out = append(out, protocol.PublicKey{KeyID: k.KeyID, PublicKey: k.PublicKey, NotAfter: k.NotAfter})
	}
	return out
}

func (c *Controller) sign(cmd *protocol.Command) (protocol.SignedCommand, error) {
	c.keyMu.RLock()
	defer c.keyMu.RUnlock()
	return protocol.Sign(cmd, c.signer)
}

// terminalArea returns a terminal's area code, cached.
func (c *Controller) terminalArea(ctx context.Context, id string) (string, bool) {
	if v, ok := c.termAreas.Load(id); ok {
		return v.(string), true
	}
	t, err := c.store.Terminal(ctx, id)
	if err != nil {
		return "", false
	}
	c.termAreas.Store(id, t.AreaCode)
	return t.AreaCode, true
}
