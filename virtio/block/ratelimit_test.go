package block

import (
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/ratelimit"
)

// measureRate serves read requests of reqBytes one after the other, each
// as soon as the previous one completed, through the real queue and
// worker, for about d after a warm-up of warm requests that spends the
// bucket's initial fill. It returns the requests per second achieved.
func measureRate(t *testing.T, rl ratelimit.Config, reqBytes uint32, warm int, d time.Duration) float64 {
	path, _ := image(t, 4096)
	h := newHarness(t, Config{Path: path, RateLimit: &rl}, allFeatures)
	for range warm {
		h.desc = 0 // one request at a time: the table is free again
		h.wantStatus("warm-up read", h.do(specTIn, 0, nil, reqBytes), specSOK)
	}
	start := time.Now()
	n := 0
	for time.Since(start) < d {
		h.desc = 0
		h.wantStatus("read", h.do(specTIn, uint64(n%8)*(uint64(reqBytes)/specSector), nil, reqBytes), specSOK)
		n++
	}
	return float64(n) / time.Since(start).Seconds()
}

func within(t *testing.T, what string, got, want, tolerance float64) {
	t.Helper()
	t.Logf("%s: %.1f per second, configured %.1f", what, got, want)
	if got < want*(1-tolerance) || got > want*(1+tolerance) {
		t.Errorf("%s: achieved %.1f per second, want %.1f ± %.0f%%", what, got, want, tolerance*100)
	}
}

// TestBandwidthLimitRate checks the achieved rate of a disk limited to
// 4 MiB/s, served flat out for 1.5 s, against the configured rate.
func TestBandwidthLimitRate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 1.5 s")
	}
	const rate = 4 << 20 // bytes per second
	const req = 64 << 10
	// A bucket of a sixteenth of a second's bytes, spent by the warm-up.
	rl := ratelimit.Config{Bandwidth: &ratelimit.Bucket{Size: rate / 16, RefillTime: time.Second / 16}}
	got := measureRate(t, rl, req, rate/16/req, 1500*time.Millisecond) * req
	within(t, "bandwidth (bytes)", got, rate, 0.10)
}

// TestOpsLimitRate does the same for operations: 200 requests a second.
func TestOpsLimitRate(t *testing.T) {
	if testing.Short() {
		t.Skip("measures for 1.5 s")
	}
	const rate = 200
	rl := ratelimit.Config{Ops: &ratelimit.Bucket{Size: rate / 10, RefillTime: time.Second / 10}}
	got := measureRate(t, rl, 4096, rate/10, 1500*time.Millisecond)
	within(t, "operations", got, rate, 0.10)
}

// TestLimitedWaitEndsOnReset: a worker waiting for budget lets Reset
// return promptly, and completes the request it held.
func TestLimitedWaitEndsOnReset(t *testing.T) {
	path, _ := image(t, 64)
	rl := ratelimit.Config{Ops: &ratelimit.Bucket{Size: 1, RefillTime: time.Hour}}
	h := newHarness(t, Config{Path: path, RateLimit: &rl}, allFeatures)
	h.wantStatus("first read", h.do(specTIn, 0, nil, 512), specSOK)
	st := h.out(1)
	h.publish(h.in(header(specTIn, 0)), h.out(512), st)
	time.Sleep(20 * time.Millisecond)
	if h.drv.UsedIdx() != 1 {
		t.Fatal("the second request went past an hour-long limit")
	}
	done := make(chan struct{})
	go func() { h.dev.Reset(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Reset waited for the rate limiter")
	}
	if h.drv.UsedIdx() != 2 || h.segBytes(st)[0] != specSOK {
		t.Fatalf("the held request was not completed: used index %d", h.drv.UsedIdx())
	}
}

// TestRateLimitUpdateWakesWorker lifts a limit at run time and checks the
// waiting request goes at once.
func TestRateLimitUpdateWakesWorker(t *testing.T) {
	path, _ := image(t, 64)
	rl := ratelimit.Config{Bandwidth: &ratelimit.Bucket{Size: 512, RefillTime: time.Hour}}
	h := newHarness(t, Config{Path: path, RateLimit: &rl}, allFeatures)
	h.wantStatus("first read", h.do(specTIn, 0, nil, 512), specSOK)
	go func() {
		time.Sleep(20 * time.Millisecond)
		h.dev.RateLimiter().Update(ratelimit.Config{Bandwidth: &ratelimit.Bucket{}})
	}()
	// submit fails the test if no interrupt comes within 5 s.
	h.wantStatus("read after the update", h.do(specTIn, 0, nil, 512), specSOK)
}
