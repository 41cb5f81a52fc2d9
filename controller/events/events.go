// Package events fans out controller events (delivery changes, terminal
// status, faults) to live subscribers. Publishing never blocks: each
// subscriber has a bounded queue, and what does not fit is dropped and
// counted.
package events

import (
	"sync"
	"sync/atomic"
	"time"
)

// Event kinds.
const (
	KindDelivery = "delivery"
	KindTerminal = "terminal"
	KindFault    = "fault"
	KindAlert    = "alert"
	KindReport   = "report"
)

// Event is one thing that happened.
type Event struct {
	Kind    string    `json:"kind"`
	At      time.Time `json:"at"`
	AlertID string    `json:"alert_id,omitempty"`
	Data    any       `json:"data"`
}

// Broker delivers events to subscribers.
type Broker struct {
	mu      sync.Mutex
	subs    map[*Sub]struct{}
	dropped atomic.Uint64
}

// New returns an empty broker.
func New() *Broker { return &Broker{subs: map[*Sub]struct{}{}} }

// Sub is one subscription. Read C until Close.
type Sub struct {
	C       chan Event
	filter  func(Event) bool
	dropped atomic.Uint64
}

// Dropped reports how many events this subscriber missed.
func (s *Sub) Dropped() uint64 { return s.dropped.Load() }

// Subscribe returns a subscription with a queue of size n that receives the
// events filter accepts (all when nil).
func (b *Broker) Subscribe(n int, filter func(Event) bool) *Sub {
	s := &Sub{C: make(chan Event, n), filter: filter}
	b.mu.Lock()
	b.subs[s] = struct{}{}
	b.mu.Unlock()
	return s
}

// Unsubscribe ends a subscription.
func (b *Broker) Unsubscribe(s *Sub) {
	b.mu.Lock()
	delete(b.subs, s)
	b.mu.Unlock()
}

// Listening reports whether anyone is subscribed: a publisher may skip
// building an event nobody would get.
func (b *Broker) Listening() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs) > 0
}

// Publish hands e to every interested subscriber without waiting.
func (b *Broker) Publish(e Event) {
	if e.At.IsZero() {
		e.At = time.Now()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for s := range b.subs {
		if s.filter != nil && !s.filter(e) {
			continue
		}
		select {
		case s.C <- e:
		default:
			s.dropped.Add(1)
			b.dropped.Add(1)
		}
	}
}

// Dropped reports how many events all subscribers missed in total.
func (b *Broker) Dropped() uint64 { return b.dropped.Load() }
