package virtionet

import (
	"bytes"
	"sync"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/ratelimit"
)

// countingWriter stands in for the TAP and counts the frames written.
type countingWriter struct {
	mu     sync.Mutex
	frames int
	bytes  bytes.Buffer
}

func (w *countingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.frames++
	return w.bytes.Write(p)
}

// TestTransmitRateLimit sends six frames through a transmit queue limited
// to 20 frames a second with a bucket of two: the last four wait 50 ms
// each, and all six are sent.
func TestTransmitRateLimit(t *testing.T) {
	r := newRig(t, specVersion1)
	for range 6 {
		r.sendTx(make([]byte, headerLen+60))
	}
	d := &Device{txLimit: ratelimit.New(ratelimit.Config{Ops: &ratelimit.Bucket{Size: 2, RefillTime: 100 * time.Millisecond}})}
	w := &countingWriter{}
	start := time.Now()
	if err := d.txDrain(r.mem, r.queues[TxQueue], &countingIRQ{}, specVersion1, make([]byte, maxPacketLen), w, make(chan struct{})); err != nil {
		t.Fatal(err)
	}
	took := time.Since(start)
	if w.frames != 6 || r.tx.UsedIdx() != 6 {
		t.Fatalf("%d frames sent, %d chains used; want 6", w.frames, r.tx.UsedIdx())
	}
	if took < 190*time.Millisecond || took > time.Second {
		t.Fatalf("6 frames at 20/s with a bucket of 2 took %v, want about 200ms", took)
	}
}

// TestTransmitRateLimitStops: a stop ends the wait at once and the frame
// in hand still goes, so that a pause loses nothing.
func TestTransmitRateLimitStops(t *testing.T) {
	r := newRig(t, specVersion1)
	r.sendTx(make([]byte, headerLen+60))
	r.sendTx(make([]byte, headerLen+60))
	// The bandwidth bucket holds one frame's 60 bytes an hour.
	d := &Device{txLimit: ratelimit.New(ratelimit.Config{Bandwidth: &ratelimit.Bucket{Size: 60, RefillTime: time.Hour}})}
	w := &countingWriter{}
	stop := make(chan struct{})
	time.AfterFunc(20*time.Millisecond, func() { close(stop) })
	done := make(chan error)
	go func() {
		done <- d.txDrain(r.mem, r.queues[TxQueue], &countingIRQ{}, specVersion1, make([]byte, maxPacketLen), w, stop)
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stop did not end the rate limiter's wait")
	}
	if w.frames != 2 || r.tx.UsedIdx() != 2 {
		t.Fatalf("%d frames sent, %d chains used; want 2", w.frames, r.tx.UsedIdx())
	}
}
