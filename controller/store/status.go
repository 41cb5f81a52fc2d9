package store

// A terminal's live status: its row in terminals, written when it says
// something new, and what is newer kept in memory (statuses).

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Status is what a heartbeat or a connection change says about a terminal.
// A field left out (nil, "") keeps the row's value; LastSeen is always
// written.
type Status struct {
	State     string
	LastSeen  time.Time
	Volume    *int
	Firmware  string
	RelayOK   *bool
	AudioOK   *bool
	Heartbeat []byte // raw JSON
}

// SetStatus records a terminal's live status, at once (at a connection's
// start; ApplyHeartbeats writes only what is new).
func (s *Store) SetStatus(ctx context.Context, id string, st Status) error {
	s.statuses.write.Lock()
	defer s.statuses.write.Unlock()
	row, _ := s.statuses.get(id)
	row = row.written(st)
	n, err := setStatus(ctx, s.w, id, row)
	if err != nil {
		return fmt.Errorf("status of terminal %s: %w", id, err)
	}
	if n > 0 {
		s.statuses.set(map[string]statusRow{id: row})
	}
	return nil
}

const setStatusSQL = `UPDATE terminals SET state = ?, last_seen = ?, volume = COALESCE(?, volume),
	firmware = CASE WHEN ? = '' THEN firmware ELSE ? END, relay_ok = COALESCE(?, relay_ok), audio_ok = COALESCE(?, audio_ok),
	heartbeat = COALESCE(?, heartbeat) WHERE id = ?`

// setStatus makes a terminal's status row say r (what r does not know,
// the row keeps) and returns the rows it changed: none for an unknown
// terminal.
func setStatus(ctx context.Context, tx sqlRunner, id string, r statusRow) (int64, error) {
	res, err := tx.ExecContext(ctx, setStatusSQL, r.state, r.seen, orNull(r.volume, r.volumeKnown), r.firmware, r.firmware,
		orNull(r.relayOK, r.relayKnown), orNull(r.audioOK, r.audioKnown), orNull(r.hb, r.hbKnown), id)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// MarkAllOffline is called at start: no terminal is connected yet.
func (s *Store) MarkAllOffline(ctx context.Context) error {
	s.statuses.write.Lock()
	defer s.statuses.write.Unlock()
	if _, err := s.w.ExecContext(ctx, `UPDATE terminals SET state = 'offline' WHERE state != 'offline'`); err != nil {
		return err
	}
	s.statuses.offline()
	return nil
}

// statuses remembers each terminal's status row as this process last
// wrote it, so that a heartbeat that says nothing new is not written (most
// of them, see ApplyHeartbeats), and the terminal's newest last_seen and
// raw heartbeat, written or not, which reads lay over the row's.
//
// Only this process writes the rows, and an entry changes only once its
// write has committed. A writer of status rows holds write from reading
// the entries it decides by until it has updated them, so that two
// writers' decisions and updates never interleave; readers take only mu.
//
// What is not written is lost if the process ends without writing it (a
// crash; at a clean shutdown each session records its terminal offline,
// which writes it): the row's last_seen and heartbeat may then be up to
// HeartbeatSample old, and so may EndHeartbeatHistory's offline point.
type statuses struct {
	write sync.Mutex // held by a writer of status rows, see above
	mu    sync.Mutex // guards m
	m     map[string]statusRow
}

// statusRow is what the store knows of a terminal's status row, small
// and with few pointers: the store keeps one for every terminal, and the
// garbage collector reads them all. A field not known is the row's.
type statusRow struct {
	state, firmware string // as last written; firmware "": not known
	hb              string // the newest raw heartbeat, if hbKnown
	at, seen        int64  // milliseconds: the last_seen last written (when), the newest
	volume          int64
	volumeKnown     bool
	relayOK         bool
	relayKnown      bool
	audioOK         bool
	audioKnown      bool
	hbKnown         bool
	known           bool // nothing is, until this process writes the row
	dirty           bool // seen or hb is newer than the row's
}

// skips reports whether st need not be written over r: it says what r
// does, and r's last write is younger than HeartbeatSample.
func (r statusRow) skips(st Status) bool {
	sameBool := func(v *bool, was, known bool) bool { return v == nil || (known && *v == was) }
	if !r.known || st.State != r.state || (st.Volume != nil && (!r.volumeKnown || int64(*st.Volume) != r.volume)) ||
		(st.Firmware != "" && st.Firmware != r.firmware) ||
		!sameBool(st.RelayOK, r.relayOK, r.relayKnown) || !sameBool(st.AudioOK, r.audioOK, r.audioKnown) {
		return false
	}
	age := ms(st.LastSeen) - r.at
	return age >= 0 && age < HeartbeatSample.Milliseconds() // before: the clock stepped back
}

// skipped is r once st is skipped: with st's last_seen and heartbeat, not
// written.
func (r statusRow) skipped(st Status) statusRow {
	r.seen, r.dirty = ms(st.LastSeen), true
	if st.Heartbeat != nil {
		r.hb, r.hbKnown = string(st.Heartbeat), true
	}
	return r
}

// written is r once st is written: what st leaves out stays as r knows
// it, and the newest heartbeat is written if st has none.
func (r statusRow) written(st Status) statusRow {
	r.known, r.state, r.dirty = true, st.State, false
	r.at = ms(st.LastSeen)
	r.seen = r.at
	if st.Volume != nil {
		r.volume, r.volumeKnown = int64(*st.Volume), true
	}
	if st.Firmware != "" {
		r.firmware = st.Firmware
	}
	if st.RelayOK != nil {
		r.relayOK, r.relayKnown = *st.RelayOK, true
	}
	if st.AudioOK != nil {
		r.audioOK, r.audioKnown = *st.AudioOK, true
	}
	if st.Heartbeat != nil {
		r.hb, r.hbKnown = string(st.Heartbeat), true
	}
	return r
}

// flushed is r once its last_seen and heartbeat are written.
func (r statusRow) flushed() statusRow {
	r.at, r.dirty = r.seen, false
	return r
}

// orNull is v, or SQL's null when not ok.
func orNull[T any](v T, ok bool) any {
	if !ok {
		return nil
	}
	return v
}

func (c *statuses) get(id string) (statusRow, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[id]
	return r, ok
}

// set records rows once they are written (or skipped).
func (c *statuses) set(rows map[string]statusRow) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.m == nil {
		c.m = make(map[string]statusRow, len(rows))
	}
	for id, r := range rows {
		c.m[id] = r
	}
}

// unwritten returns the rows whose last_seen or heartbeat is newer than
// the table's.
func (c *statuses) unwritten() map[string]statusRow {
	c.mu.Lock()
	defer c.mu.Unlock()
	rows := map[string]statusRow{}
	for id, r := range c.m {
		if r.dirty {
			rows[id] = r
		}
	}
	return rows
}

// offline records that ids' rows (all rows when ids is empty) were made to
// say offline, and nothing else.
func (c *statuses) offline(ids ...string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	mark := func(id string) {
		if r, ok := c.m[id]; ok {
			r.state = "offline"
			c.m[id] = r
		}
	}
	if len(ids) == 0 {
		for id := range c.m {
			mark(id)
		}
	}
	for _, id := range ids {
		mark(id)
	}
}

// overlay lays what a terminal's row does not hold yet over t.
func (c *statuses) overlay(t *Terminal) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if r, ok := c.m[t.ID]; ok {
		t.LastSeen = fromMS(r.seen) // as the row would hold it
	}
}

// heartbeat returns a terminal's newest raw heartbeat, if remembered.
func (c *statuses) heartbeat(id string) (string, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.m[id]
	return r.hb, r.hbKnown
}
