package api

import (
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/ratelimit"
)

// limitsSeen is what the fake VM was asked to set, by device.
type limitsSeen struct {
	drives map[string]ratelimit.Config
	rx, tx map[string]ratelimit.Config
	rng    *ratelimit.Config
}

func (f *fakeVM) seen() *limitsSeen {
	if f.limits == nil {
		f.limits = &limitsSeen{drives: map[string]ratelimit.Config{}, rx: map[string]ratelimit.Config{}, tx: map[string]ratelimit.Config{}}
	}
	return f.limits
}

func (f *fakeVM) SetDriveRateLimit(id string, rl ratelimit.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "rootfs" && id != "disk0" {
		return fmt.Errorf("drive %q: %w", id, ErrNotFound)
	}
	f.seen().drives[id] = rl
	return nil
}

func (f *fakeVM) SetNetRateLimits(id string, rx, tx ratelimit.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if id != "tap0" {
		return fmt.Errorf("network interface %q: %w", id, ErrNotFound)
	}
	f.seen().rx[id], f.seen().tx[id] = rx, tx
	return nil
}

func (f *fakeVM) SetRNGRateLimit(rl ratelimit.Config) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.seen().rng = &rl
	return nil
}

func TestPatchRateLimiters(t *testing.T) {
	vm := &fakeVM{}
	hc := client(t, vm)
	// Firecracker's body, drive_id included.
	if code, body := do(t, hc, "PATCH", "/drives/rootfs", `{"drive_id": "rootfs", "rate_limiter": {"bandwidth": {"size": 10485760, "one_time_burst": 1048576, "refill_time": 1000}, "ops": {"size": 0, "refill_time": 0}}}`); code != http.StatusNoContent {
		t.Fatalf("PATCH /drives/rootfs: %d %s", code, body)
	}
	got := vm.limits.drives["rootfs"]
	want := ratelimit.Bucket{Size: 10 << 20, OneTimeBurst: 1 << 20, RefillTime: time.Second}
	if got.Bandwidth == nil || *got.Bandwidth != want || got.Ops == nil || got.Ops.Enabled() {
		t.Errorf("drive limits %+v %+v, want bandwidth %+v and ops removed", got.Bandwidth, got.Ops, want)
	}
	if code, body := do(t, hc, "PATCH", "/network-interfaces/tap0", `{"iface_id": "tap0", "rx_rate_limiter": {"ops": {"size": 1000, "refill_time": 100}}}`); code != http.StatusNoContent {
		t.Fatalf("PATCH /network-interfaces/tap0: %d %s", code, body)
	}
	rx, tx := vm.limits.rx["tap0"], vm.limits.tx["tap0"]
	if rx.Ops == nil || *rx.Ops != (ratelimit.Bucket{Size: 1000, RefillTime: 100 * time.Millisecond}) || rx.Bandwidth != nil || tx.Ops != nil || tx.Bandwidth != nil {
		t.Errorf("net limits rx %+v tx %+v: want rx ops only, the rest kept", rx, tx)
	}
	if code, body := do(t, hc, "PATCH", "/entropy", `{"rate_limiter": {"bandwidth": {"size": 1024, "refill_time": 10}}}`); code != http.StatusNoContent || vm.limits.rng == nil || vm.limits.rng.Bandwidth.Size != 1024 {
		t.Fatalf("PATCH /entropy: %d %s %+v", code, body, vm.limits.rng)
	}

	for _, c := range []struct {
		path, body string
		code       int
		want       string
	}{
		{"/drives/nope", `{"rate_limiter": {}}`, 404, "nope\\\": not found"},
		{"/drives/rootfs", `{"drive_id": "other"}`, 400, "in the body differs"},
		{"/drives/rootfs", `{"path_on_host": "/x"}`, 400, "unknown field"},
		{"/drives/rootfs", `{"rate_limiter": {"bandwidth": {"size": 5}}}`, 400, "bandwidth: a token bucket needs"},
		{"/drives/rootfs", `{"rate_limiter": {"bandwidth": {"size": 5, "refill_time": -1}}}`, 400, "malformed"},
		{"/drives/rootfs", `{"rate_limiter": {"ops": {"size": 18014398509481984, "refill_time": 1}}}`, 400, "ops: invalid rate limiter"},
		{"/drives/rootfs", `{"rate_limiter": {"ops": {"size": 1, "refill_time": 18446744073709551615}}}`, 400, "too long"},
		{"/network-interfaces/tap9", `{}`, 404, "tap9\\\": not found"},
		{"/network-interfaces/tap0", `{"tx_rate_limiter": {"ops": {"size": 1}}}`, 400, "tx_rate_limiter: ops"},
	} {
		code, body := do(t, hc, "PATCH", c.path, c.body)
		if code != c.code || !strings.Contains(body, c.want) || !strings.Contains(body, "fault_message") {
			t.Errorf("PATCH %s %s = %d %s, want %d containing %q", c.path, c.body, code, body, c.code, c.want)
		}
	}
}
