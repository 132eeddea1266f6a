package main

import (
	"fmt"
	"math/bits"
	"strconv"
	"time"

	"github.com/ternvm/tern/virtio/ratelimit"
)

// defaultRefill is the refill time of a rate limit given without refill=:
// a bucket holds one second's worth, as Firecracker's examples use.
const defaultRefill = time.Second

// limitKeys are the keys of one rate limiter in a device spec: bw (bytes
// per second, a size like 10M), bw_burst (one-time extra bytes) and ops
// (per second), ops_burst; prefix names the direction (rx_, tx_), ops the
// unit (iops, pps).
func limitKeys(prefix, ops string) []string {
	return []string{prefix + "bw", prefix + "bw_burst", prefix + ops, prefix + ops + "_burst"}
}

// parseRefill reads refill=DURATION, the time a bucket takes to refill
// from empty (how long a burst at the device's full speed can last).
func parseRefill(flag string, kv map[string]string) (time.Duration, error) {
	s, ok := kv["refill"]
	if !ok {
		return defaultRefill, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < time.Millisecond || d > time.Hour {
		return 0, fmt.Errorf("--%s: refill=%q is not a duration from 1ms to 1h like 100ms", flag, s)
	}
	return d, nil
}

// parseLimit reads the rate limiter keyed by prefix and ops from kv; nil
// when none of its keys is given.
func parseLimit(flag string, kv map[string]string, prefix, ops string, refill time.Duration) (*ratelimit.Config, error) {
	bwKey, opsKey := prefix+"bw", prefix+ops
	var c ratelimit.Config
	if s, ok := kv[bwKey]; ok {
		rate, err := parseSize(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %s: %w", flag, bwKey, err)
		}
		if c.Bandwidth, err = perRefill(fmt.Sprintf("--%s: %s=%s", flag, bwKey, s), rate, refill); err != nil {
			return nil, err
		}
	}
	if s, ok := kv[bwKey+"_burst"]; ok {
		if c.Bandwidth == nil {
			return nil, fmt.Errorf("--%s: %s_burst needs %s", flag, bwKey, bwKey)
		}
		n, err := parseSize(s)
		if err != nil {
			return nil, fmt.Errorf("--%s: %s_burst: %w", flag, bwKey, err)
		}
		c.Bandwidth.OneTimeBurst = n
	}
	if s, ok := kv[opsKey]; ok {
		rate, err := strconv.ParseUint(s, 10, 64)
		if err != nil || rate == 0 {
			return nil, fmt.Errorf("--%s: %s=%q is not a positive number (per second)", flag, opsKey, s)
		}
		if c.Ops, err = perRefill(fmt.Sprintf("--%s: %s=%s", flag, opsKey, s), rate, refill); err != nil {
			return nil, err
		}
	}
	if s, ok := kv[opsKey+"_burst"]; ok {
		if c.Ops == nil {
			return nil, fmt.Errorf("--%s: %s_burst needs %s", flag, opsKey, opsKey)
		}
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("--%s: %s_burst=%q is not a positive number", flag, opsKey, s)
		}
		c.Ops.OneTimeBurst = n
	}
	if c.Bandwidth == nil && c.Ops == nil {
		return nil, nil
	}
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("--%s: %w", flag, err)
	}
	return &c, nil
}

// perRefill is the bucket that passes rate tokens a second: it holds
// what one refill time brings. what names the setting in errors.
func perRefill(what string, rate uint64, refill time.Duration) (*ratelimit.Bucket, error) {
	hi, lo := bits.Mul64(rate, uint64(refill))
	if hi >= uint64(time.Second) {
		return nil, fmt.Errorf("%s is too large", what)
	}
	size, _ := bits.Div64(hi, lo, uint64(time.Second))
	if size == 0 {
		return nil, fmt.Errorf("%s is less than one per refill time of %v", what, refill)
	}
	if size > ratelimit.MaxTokens {
		return nil, fmt.Errorf("%s is too large", what)
	}
	return &ratelimit.Bucket{Size: size, RefillTime: refill}, nil
}

// parseRNGLimit reads --rng-bw SIZE (random bytes per second).
func parseRNGLimit(s string) (*ratelimit.Config, error) {
	rate, err := parseSize(s)
	if err != nil {
		return nil, fmt.Errorf("--rng-bw: %w", err)
	}
	b, err := perRefill("--rng-bw "+s, rate, defaultRefill)
	if err != nil {
		return nil, err
	}
	return &ratelimit.Config{Bandwidth: b}, nil
}
