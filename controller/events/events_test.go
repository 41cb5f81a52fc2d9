package events

import "testing"

func TestPublishNeverBlocksAndCountsDrops(t *testing.T) {
	b := New()
	slow := b.Subscribe(2, nil)
	only := b.Subscribe(10, func(e Event) bool { return e.AlertID == "a" })
	for i := 0; i < 5; i++ {
		b.Publish(Event{Kind: KindDelivery, AlertID: "a"})
		b.Publish(Event{Kind: KindDelivery, AlertID: "b"})
	}
	if got := len(slow.C); got != 2 {
		t.Fatalf("slow subscriber holds %d, want 2", got)
	}
	if got := slow.Dropped(); got != 8 {
		t.Fatalf("slow subscriber dropped %d, want 8", got)
	}
	if got := len(only.C); got != 5 || only.Dropped() != 0 {
		t.Fatalf("filtered subscriber holds %d dropped %d, want 5 and 0", got, only.Dropped())
	}
	b.Unsubscribe(slow)
	b.Publish(Event{Kind: KindDelivery, AlertID: "a"})
	if b.Dropped() != 8 {
		t.Fatalf("broker dropped %d after unsubscribe, want 8", b.Dropped())
	}
}
