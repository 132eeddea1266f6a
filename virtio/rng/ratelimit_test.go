package rng

import (
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/virtio/ratelimit"
)

// usedIdx reads the used index under the device's lock: the limiter's
// timer serves the queue from another goroutine.
func usedIdx(d *Device, drv *virtqtest.Driver) uint16 {
	d.mu.Lock()
	defer d.mu.Unlock()
	return drv.UsedIdx()
}

// TestRateLimitDefersRequests limits the device to 100 bytes per 100 ms
// and checks three 100-byte requests take two refills, served by the
// timer without another notification, the notifying goroutine never
// waiting.
func TestRateLimitDefersRequests(t *testing.T) {
	d, _, drv, _ := active(t, 0)
	d.limiter = ratelimit.New(ratelimit.Config{Bandwidth: &ratelimit.Bucket{Size: 100, RefillTime: 100 * time.Millisecond}})
	for i := range uint16(3) {
		drv.Publish(drv.Chain(i, virtqtest.Seg{Addr: 0x20000 + 0x1000*uint64(i), Len: 100, Write: true}))
	}
	start := time.Now()
	d.QueueNotify(0)
	if took := time.Since(start); took > 50*time.Millisecond {
		t.Fatalf("QueueNotify waited %v for the limiter", took)
	}
	if n := usedIdx(d, drv); n != 1 {
		t.Fatalf("used %d at once, want 1", n)
	}
	deadline := time.Now().Add(5 * time.Second)
	for usedIdx(d, drv) != 3 {
		if time.Now().After(deadline) {
			t.Fatalf("used %d after 5s, want 3", usedIdx(d, drv))
		}
		time.Sleep(5 * time.Millisecond)
	}
	if took := time.Since(start); took < 190*time.Millisecond {
		t.Fatalf("three requests at one per 100ms took %v", took)
	}
}

// TestResetServesHeldRequest: a pause resets the device with its queue
// kept, so a request the limiter holds is completed, not lost.
func TestResetServesHeldRequest(t *testing.T) {
	d, _, drv, irq := active(t, 0)
	d.limiter = ratelimit.New(ratelimit.Config{Ops: &ratelimit.Bucket{Size: 1, RefillTime: time.Hour}})
	drv.Publish(drv.Chain(0, virtqtest.Seg{Addr: 0x20000, Len: 8, Write: true}))
	drv.Publish(drv.Chain(1, virtqtest.Seg{Addr: 0x21000, Len: 8, Write: true}))
	d.QueueNotify(0)
	if n := usedIdx(d, drv); n != 1 {
		t.Fatalf("used %d, want 1", n)
	}
	d.Reset()
	if n := drv.UsedIdx(); n != 2 {
		t.Fatalf("after Reset used %d, want 2", n)
	}
	if len(irq.signals) != 2 || len(irq.needsReset) != 0 {
		t.Fatalf("signals %v, resets %v", irq.signals, irq.needsReset)
	}
}
