// Package ratelimit is a token-bucket rate limiter for virtio devices, in
// the shape of Firecracker's: a device has up to two buckets, one counting
// bytes (bandwidth) and one counting requests (operations); a request goes
// when every bucket holds its cost, and otherwise the device waits (it
// sleeps or sets a timer, never spins) for as long as the refill needs.
//
// A bucket holds at most Size tokens and refills linearly, Size tokens per
// RefillTime, starting full. OneTimeBurst tokens come on top, once: they
// are spent first and never refilled. A request that costs more than Size
// can never find that many tokens in the bucket; as in Firecracker it goes
// once the bucket is full and leaves it in debt, so that the requests
// after it wait for the overdraft to refill and the average rate holds.
package ratelimit

import (
	"errors"
	"fmt"
	"math/bits"
	"sync"
	"time"
)

// MaxTokens bounds a bucket's size and burst, so that the arithmetic
// below (signed budgets, debts of one request at most) cannot overflow.
const MaxTokens = 1 << 53

// maxWait caps one wait: the caller asks again when it ends, so a cap
// only costs a wake-up, and it keeps absurd configurations from producing
// durations that overflow.
const maxWait = time.Hour

// Bucket configures one token bucket. A Bucket with a zero Size or
// RefillTime limits nothing (Firecracker treats it the same way).
type Bucket struct {
	Size         uint64        // tokens the bucket holds when full
	OneTimeBurst uint64        // extra tokens, spent first, never refilled
	RefillTime   time.Duration // time to refill from empty to Size
}

// Enabled reports whether b limits anything.
func (b Bucket) Enabled() bool { return b.Size > 0 && b.RefillTime > 0 }

// ErrBadConfig is wrapped by every error Validate returns.
var ErrBadConfig = errors.New("invalid rate limiter")

// Validate checks that the numbers are usable.
func (b Bucket) Validate() error {
	switch {
	case b.Size > MaxTokens:
		return fmt.Errorf("%w: size %d is more than %d", ErrBadConfig, b.Size, uint64(MaxTokens))
	case b.OneTimeBurst > MaxTokens:
		return fmt.Errorf("%w: one-time burst %d is more than %d", ErrBadConfig, b.OneTimeBurst, uint64(MaxTokens))
	case b.RefillTime < 0:
		return fmt.Errorf("%w: negative refill time %v", ErrBadConfig, b.RefillTime)
	}
	return nil
}

// Config is a device's limits: Bandwidth counts bytes, Ops requests
// (packets for a network device). A nil bucket limits nothing.
type Config struct {
	Bandwidth *Bucket `json:",omitempty"`
	Ops       *Bucket `json:",omitempty"`
}

// Validate checks both buckets.
func (c Config) Validate() error {
	if c.Bandwidth != nil {
		if err := c.Bandwidth.Validate(); err != nil {
			return fmt.Errorf("bandwidth: %w", err)
		}
	}
	if c.Ops != nil {
		if err := c.Ops.Validate(); err != nil {
			return fmt.Errorf("ops: %w", err)
		}
	}
	return nil
}

// Enabled reports whether c limits anything.
func (c Config) Enabled() bool {
	return (c.Bandwidth != nil && c.Bandwidth.Enabled()) || (c.Ops != nil && c.Ops.Enabled())
}

// bucket is a Bucket's running state.
type bucket struct {
	cfg    Bucket
	burst  uint64 // one-time burst left
	budget int64  // tokens; negative while in debt after an oversized request
	// frac is the part of a token refilled but not yet whole, in units of
	// 1/RefillTime(ns) tokens, so that refills add up exactly however
	// often they are computed.
	frac uint64
	last time.Time // when budget was last brought up to date
}

func newBucket(b *Bucket, now time.Time) *bucket {
	if b == nil || !b.Enabled() {
		return nil
	}
	return &bucket{cfg: *b, burst: b.OneTimeBurst, budget: int64(b.Size), last: now}
}

// refill brings the budget up to now.
func (b *bucket) refill(now time.Time) {
	elapsed := now.Sub(b.last)
	if elapsed <= 0 {
		return // a clock that did not move (or a fake one set back)
	}
	b.last = now
	size, period := b.cfg.Size, uint64(b.cfg.RefillTime)
	need := int64(size) - b.budget
	if need <= 0 {
		b.frac = 0
		return
	}
	// Once enough time passed to fill the bucket, it is full; below that
	// the product elapsed*size stays under need*period+period, and the
	// 128-bit division below cannot overflow.
	if uint64(elapsed) >= fillTime(uint64(need), size, period) {
		b.budget, b.frac = int64(size), 0
		return
	}
	hi, lo := bits.Mul64(uint64(elapsed), size)
	lo, carry := bits.Add64(lo, b.frac, 0)
	hi += carry
	q, r := bits.Div64(hi, lo, period)
	b.budget += int64(q)
	b.frac = r
	if b.budget >= int64(size) {
		b.budget, b.frac = int64(size), 0
	}
}

// fillTime is ceil(tokens*period/size) nanoseconds, capped at maxWait.
func fillTime(tokens, size, period uint64) uint64 {
	hi, lo := bits.Mul64(tokens, period)
	lo, carry := bits.Add64(lo, size-1, 0)
	hi += carry
	if hi >= size {
		return uint64(maxWait)
	}
	q, _ := bits.Div64(hi, lo, size)
	return min(q, uint64(maxWait))
}

// wait is how long until the bucket can pay for n tokens: the burst
// first, then the budget; a request larger than Size needs a full bucket.
func (b *bucket) wait(n uint64) time.Duration {
	if n <= b.burst {
		return 0
	}
	n -= b.burst
	want := int64(min(n, b.cfg.Size))
	if b.budget >= want {
		return 0
	}
	deficit := uint64(want - b.budget)
	// frac tokens-in-progress shorten the wait: the deficit in
	// 1/period units is deficit*period-frac.
	period := uint64(b.cfg.RefillTime)
	hi, lo := bits.Mul64(deficit, period)
	lo, borrow := bits.Sub64(lo, b.frac, 0)
	hi -= borrow
	lo, carry := bits.Add64(lo, b.cfg.Size-1, 0)
	hi += carry
	if hi >= b.cfg.Size {
		return maxWait
	}
	q, _ := bits.Div64(hi, lo, b.cfg.Size)
	return time.Duration(min(q, uint64(maxWait)))
}

// take spends n tokens; wait(n) was zero.
func (b *bucket) take(n uint64) {
	from := min(n, b.burst)
	b.burst -= from
	b.budget -= int64(n - from)
}

// Limiter is a device's running rate limiter. Its methods are safe for
// concurrent use; a nil *Limiter limits nothing.
type Limiter struct {
	now func() time.Time

	mu      sync.Mutex
	cfg     Config
	bw, ops *bucket
	changed chan struct{} // closed and replaced by Update
}

// New returns a limiter with full buckets. cfg must be valid.
func New(cfg Config) *Limiter { return newWithClock(cfg, time.Now) }

func newWithClock(cfg Config, now func() time.Time) *Limiter {
	l := &Limiter{now: now, changed: make(chan struct{})}
	l.set(cfg)
	return l
}

func (l *Limiter) set(cfg Config) {
	t := l.now()
	l.cfg = clone(cfg)
	l.bw, l.ops = newBucket(cfg.Bandwidth, t), newBucket(cfg.Ops, t)
}

func clone(c Config) Config {
	out := Config{}
	if c.Bandwidth != nil && c.Bandwidth.Enabled() {
		b := *c.Bandwidth
		out.Bandwidth = &b
	}
	if c.Ops != nil && c.Ops.Enabled() {
		b := *c.Ops
		out.Ops = &b
	}
	return out
}

// Consume takes bytes tokens from the bandwidth bucket and ops from the
// operations bucket and returns 0 if both could pay; otherwise it takes
// nothing and returns how long to wait before asking again.
func (l *Limiter) Consume(bytes, ops uint64) time.Duration {
	if l == nil {
		return 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.bw == nil && l.ops == nil {
		return 0
	}
	t := l.now()
	var wait time.Duration
	if l.bw != nil && bytes > 0 {
		l.bw.refill(t)
		wait = l.bw.wait(bytes)
	}
	if l.ops != nil && ops > 0 {
		l.ops.refill(t)
		wait = max(wait, l.ops.wait(ops))
	}
	if wait > 0 {
		// Waits round up, so a short one is still at least 1ns and
		// never reads as a pass.
		return wait
	}
	if l.bw != nil {
		l.bw.take(bytes)
	}
	if l.ops != nil {
		l.ops.take(ops)
	}
	return 0
}

// Update changes the limits at run time. A nil bucket in cfg leaves that
// bucket as it is; a bucket that is not Enabled (zero Size or RefillTime)
// removes the limit; any other replaces it with a new, full one (as
// Firecracker's PATCH does). A device waiting on the old limits is woken
// to look again.
func (l *Limiter) Update(cfg Config) error {
	if err := cfg.Validate(); err != nil {
		return err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	t := l.now()
	if b := cfg.Bandwidth; b != nil {
		l.bw = newBucket(b, t)
		l.cfg.Bandwidth = clone(Config{Bandwidth: b}).Bandwidth
	}
	if b := cfg.Ops; b != nil {
		l.ops = newBucket(b, t)
		l.cfg.Ops = clone(Config{Ops: b}).Ops
	}
	close(l.changed)
	l.changed = make(chan struct{})
	return nil
}

// Config returns the limits in force, to be saved with the device's
// configuration; the burst's progress is not part of it.
func (l *Limiter) Config() Config {
	if l == nil {
		return Config{}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return clone(l.cfg)
}

// Changed returns a channel that is closed at the next Update (never, for
// a nil Limiter).
func (l *Limiter) Changed() <-chan struct{} {
	if l == nil {
		return nil
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.changed
}

// Wait blocks until the request may go and takes its tokens, returning
// true, or returns false as soon as stop is closed. It sleeps on a timer
// between tries, and an Update wakes it early.
func (l *Limiter) Wait(stop <-chan struct{}, bytes, ops uint64) bool {
	if l == nil {
		return true
	}
	var t *time.Timer
	defer func() {
		if t != nil {
			t.Stop()
		}
	}()
	for {
		changed := l.Changed()
		d := l.Consume(bytes, ops)
		if d == 0 {
			return true
		}
		if t == nil {
			t = time.NewTimer(d)
		} else {
			t.Reset(d)
		}
		select {
		case <-stop:
			return false
		case <-changed:
		case <-t.C:
		}
	}
}
