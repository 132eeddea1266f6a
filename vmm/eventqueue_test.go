package vmm

import (
	"io"
	"testing"
	"time"

	"github.com/sirupsen/logrus"
)

// A consumer that blocks holds up no one: pushes return at once, events
// past the bound are dropped, EventStopped is not, and order is kept.
func TestEventQueueSlowConsumer(t *testing.T) {
	release := make(chan struct{})
	got := make(chan Event, 2*maxQueuedEvents)
	l := logrus.New()
	l.SetOutput(io.Discard)
	v := &VM{log: l}
	q := newEventQueue(v, func(e Event) {
		<-release
		got <- e
	})
	done := make(chan struct{})
	go func() {
		defer close(done)
		for i := 0; i < 3*maxQueuedEvents; i++ {
			q.push(Event{Kind: EventPaused, BootTime: time.Duration(i)})
		}
		q.push(Event{Kind: EventStopped})
		q.close()
		q.push(Event{Kind: EventResumed}) // after close: dropped
	}()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("push blocked on a slow consumer")
	}
	close(release)
	var evs []Event
	for e := range got {
		evs = append(evs, e)
		if e.Kind == EventStopped {
			break
		}
	}
	// The batch the consumer holds is out of the queue: at most that
	// and a full queue behind it, and the stop.
	if n := len(evs); n > 2*maxQueuedEvents+1 || n < 2 {
		t.Errorf("%d events delivered, want at most twice the bound (%d) and the stop", n, maxQueuedEvents)
	}
	for i := 1; i < len(evs)-1; i++ {
		if evs[i].BootTime <= evs[i-1].BootTime {
			t.Fatalf("events out of order at %d", i)
		}
	}
	select {
	case e := <-got:
		t.Errorf("an event after close was delivered: %v", e)
	case <-time.After(50 * time.Millisecond):
	}
}
