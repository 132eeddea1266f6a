package ratelimit

import (
	"testing"
	"time"
)

// clock is a fake clock the tests move by hand.
type clock struct{ t time.Time }

func (c *clock) now() time.Time          { return c.t }
func (c *clock) advance(d time.Duration) { c.t = c.t.Add(d) }

func newFake(cfg Config) (*Limiter, *clock) {
	c := &clock{t: time.Unix(1000, 0)}
	return newWithClock(cfg, c.now), c
}

func bw(size uint64, burst uint64, refill time.Duration) Config {
	return Config{Bandwidth: &Bucket{Size: size, OneTimeBurst: burst, RefillTime: refill}}
}

func TestStartsFullAndRefillsLinearly(t *testing.T) {
	// 1000 tokens per second: one token per millisecond.
	l, c := newFake(bw(1000, 0, time.Second))
	if d := l.Consume(1000, 0); d != 0 {
		t.Fatalf("a full bucket made 1000 wait %v", d)
	}
	if d := l.Consume(1, 0); d != time.Millisecond {
		t.Fatalf("empty bucket: 1 token waits %v, want 1ms", d)
	}
	if d := l.Consume(250, 0); d != 250*time.Millisecond {
		t.Fatalf("250 tokens wait %v, want 250ms", d)
	}
	c.advance(100 * time.Millisecond)
	if d := l.Consume(250, 0); d != 150*time.Millisecond {
		t.Fatalf("after 100ms, 250 tokens wait %v, want 150ms", d)
	}
	if d := l.Consume(100, 0); d != 0 {
		t.Fatalf("100 refilled tokens wait %v", d)
	}
	if d := l.Consume(1, 0); d != time.Millisecond {
		t.Fatalf("after spending the refill, 1 token waits %v", d)
	}
	// Refill stops at Size.
	c.advance(time.Hour)
	if d := l.Consume(1000, 0); d != 0 {
		t.Fatalf("refilled bucket: %v", d)
	}
	if d := l.Consume(1, 0); d == 0 {
		t.Fatal("the bucket held more than its size")
	}
}

// TestFractionsAddUp refills in steps too small for a whole token and
// checks that none is lost to rounding.
func TestFractionsAddUp(t *testing.T) {
	// 3 tokens per 10ns-ish period: 3 tokens per 10 s, one per 3.33 s.
	l, c := newFake(bw(3, 0, 10*time.Second))
	l.Consume(3, 0)
	for range 1000 {
		c.advance(10 * time.Millisecond) // 0.003 tokens each
	}
	// 10 s in 1000 steps refilled exactly 3 tokens.
	if d := l.Consume(3, 0); d != 0 {
		t.Fatalf("3 tokens after a full refill in small steps wait %v", d)
	}
	// 1 token needs ceil(10s/3).
	if d, want := l.Consume(1, 0), time.Duration(3333333334); d != want {
		t.Fatalf("1 token waits %v, want %v", d, want)
	}
	c.advance(3333333333)
	if d := l.Consume(1, 0); d != 1 {
		t.Fatalf("1ns short of a token waits %v, want 1ns", d)
	}
	c.advance(1)
	if d := l.Consume(1, 0); d != 0 {
		t.Fatalf("a whole token waits %v", d)
	}
}

func TestOneTimeBurst(t *testing.T) {
	l, c := newFake(bw(100, 500, time.Second))
	if d := l.Consume(450, 0); d != 0 {
		t.Fatalf("burst: %v", d)
	}
	// 50 burst and 100 budget left: 150 go, 1 more does not.
	if d := l.Consume(150, 0); d != 0 {
		t.Fatalf("burst then budget: %v", d)
	}
	if d := l.Consume(1, 0); d != 10*time.Millisecond {
		t.Fatalf("empty: %v, want 10ms", d)
	}
	// The burst never comes back.
	c.advance(time.Hour)
	if d := l.Consume(100, 0); d != 0 {
		t.Fatalf("refilled budget: %v", d)
	}
	if d := l.Consume(1, 0); d == 0 {
		t.Fatal("the one-time burst refilled")
	}
}

// TestLargerThanBucket: a request over Size goes once the bucket is full
// and leaves it in debt, so the average rate holds.
func TestLargerThanBucket(t *testing.T) {
	l, c := newFake(bw(100, 0, time.Second))
	l.Consume(50, 0)
	if d := l.Consume(300, 0); d != 500*time.Millisecond {
		t.Fatalf("oversized request on a half-full bucket waits %v, want 500ms", d)
	}
	c.advance(500 * time.Millisecond)
	if d := l.Consume(300, 0); d != 0 {
		t.Fatalf("oversized request on a full bucket waits %v", d)
	}
	// 200 tokens of debt and 10 wanted: 2.1 s.
	if d := l.Consume(10, 0); d != 2100*time.Millisecond {
		t.Fatalf("after the overdraft 10 tokens wait %v, want 2.1s", d)
	}
	c.advance(2100 * time.Millisecond)
	if d := l.Consume(10, 0); d != 0 {
		t.Fatalf("%v", d)
	}
}

func TestOpsAndBandwidthBothPay(t *testing.T) {
	l, c := newFake(Config{
		Bandwidth: &Bucket{Size: 1000, RefillTime: time.Second},
		Ops:       &Bucket{Size: 2, RefillTime: time.Second},
	})
	if l.Consume(10, 1) != 0 || l.Consume(10, 1) != 0 {
		t.Fatal("two small requests should go")
	}
	if d := l.Consume(10, 1); d != 500*time.Millisecond {
		t.Fatalf("third op waits %v, want 500ms", d)
	}
	// A refused request takes nothing from either bucket.
	if d := l.Consume(980, 0); d != 0 {
		t.Fatalf("bandwidth was charged for a refused op: %v", d)
	}
	c.advance(500 * time.Millisecond)
	if d := l.Consume(500, 1); d != 0 {
		t.Fatalf("%v", d)
	}
	if d := l.Consume(0, 0); d != 0 {
		t.Fatalf("a free request waits %v", d)
	}
}

func TestUnlimited(t *testing.T) {
	var nilL *Limiter
	if nilL.Consume(1<<40, 1<<40) != 0 || !nilL.Wait(nil, 1, 1) {
		t.Fatal("a nil limiter limits")
	}
	l, _ := newFake(Config{Bandwidth: &Bucket{Size: 0, RefillTime: time.Second}, Ops: &Bucket{Size: 5}})
	for range 100 {
		if l.Consume(1<<40, 1000) != 0 {
			t.Fatal("disabled buckets limit")
		}
	}
	if l.Config().Enabled() {
		t.Fatalf("config of disabled buckets: %+v", l.Config())
	}
}

func TestUpdateMidFlight(t *testing.T) {
	l, c := newFake(Config{
		Bandwidth: &Bucket{Size: 100, RefillTime: time.Second},
		Ops:       &Bucket{Size: 1, RefillTime: time.Second},
	})
	l.Consume(100, 1)
	if d := l.Consume(100, 1); d != time.Second {
		t.Fatalf("%v", d)
	}
	changed := l.Changed()
	// Only the bandwidth changes: a new bucket, full.
	if err := l.Update(Config{Bandwidth: &Bucket{Size: 1000, RefillTime: time.Second}}); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Update did not wake waiters")
	}
	if d := l.Consume(1000, 0); d != 0 {
		t.Fatalf("new bandwidth bucket not full: %v", d)
	}
	if d := l.Consume(0, 1); d != time.Second {
		t.Fatalf("ops bucket changed by a bandwidth update: %v", d)
	}
	// A disabled bucket removes the limit.
	if err := l.Update(Config{Ops: &Bucket{}}); err != nil {
		t.Fatal(err)
	}
	if d := l.Consume(0, 50); d != 0 {
		t.Fatalf("removed ops limit still limits: %v", d)
	}
	got := l.Config()
	if got.Ops != nil || got.Bandwidth == nil || got.Bandwidth.Size != 1000 {
		t.Fatalf("Config after updates: %+v", got)
	}
	c.advance(time.Second)
	if err := l.Update(Config{Bandwidth: &Bucket{Size: MaxTokens + 1, RefillTime: 1}}); err == nil {
		t.Fatal("an oversized bucket was accepted")
	}
}

func TestHugeNumbersDoNotOverflow(t *testing.T) {
	l, c := newFake(bw(1, 0, time.Duration(1<<62)))
	l.Consume(1, 0)
	if d := l.Consume(MaxTokens, 0); d != maxWait {
		t.Fatalf("wait %v, want the cap %v", d, maxWait)
	}
	c.advance(time.Duration(1 << 62))
	if d := l.Consume(MaxTokens, 0); d != 0 {
		t.Fatalf("%v", d)
	}
	if d := l.Consume(1, 0); d != maxWait {
		t.Fatalf("deep debt: %v", d)
	}
	l2, c2 := newFake(bw(MaxTokens, 0, 1))
	l2.Consume(MaxTokens, 0)
	c2.advance(time.Duration(1<<62) + 7)
	if d := l2.Consume(MaxTokens, 0); d != 0 {
		t.Fatalf("%v", d)
	}
}

// TestWaitEndsOnStop checks that a waiting device is released promptly
// by stop, and by an Update that lifts the limit.
func TestWaitEndsOnStop(t *testing.T) {
	l := New(bw(1, 0, time.Hour))
	l.Consume(1, 0)
	stop := make(chan struct{})
	done := make(chan bool)
	go func() { done <- l.Wait(stop, 1, 0) }()
	time.Sleep(10 * time.Millisecond)
	close(stop)
	select {
	case ok := <-done:
		if ok {
			t.Fatal("Wait reported a pass after stop")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait ignored stop")
	}
	go func() { done <- l.Wait(nil, 1, 0) }()
	time.Sleep(10 * time.Millisecond)
	if err := l.Update(Config{Bandwidth: &Bucket{}}); err != nil {
		t.Fatal(err)
	}
	select {
	case ok := <-done:
		if !ok {
			t.Fatal("Wait failed")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Wait ignored the Update")
	}
}
