package main

import (
	"strings"
	"testing"
	"time"

	"github.com/ternvm/tern/virtio/ratelimit"
)

func TestRateLimitSpecs(t *testing.T) {
	d, err := parseDisk("path=/d.img,bw=10M,iops=1000,bw_burst=64M,refill=100ms")
	if err != nil {
		t.Fatal(err)
	}
	want := ratelimit.Config{
		// 10 MiB/s in buckets of a tenth of a second.
		Bandwidth: &ratelimit.Bucket{Size: 1 << 20, OneTimeBurst: 64 << 20, RefillTime: 100 * time.Millisecond},
		Ops:       &ratelimit.Bucket{Size: 100, RefillTime: 100 * time.Millisecond},
	}
	if d.RateLimit == nil || *d.RateLimit.Bandwidth != *want.Bandwidth || *d.RateLimit.Ops != *want.Ops {
		t.Errorf("disk limits %+v %+v, want %+v %+v", d.RateLimit.Bandwidth, d.RateLimit.Ops, want.Bandwidth, want.Ops)
	}
	if d, err := parseDisk("path=/d.img"); err != nil || d.RateLimit != nil {
		t.Errorf("a disk without limits: %+v, %v", d.RateLimit, err)
	}

	n, err := parseNet("tap=tap0,rx_bw=1M,tx_pps=500,tx_pps_burst=100")
	if err != nil {
		t.Fatal(err)
	}
	if n.RxRateLimit == nil || *n.RxRateLimit.Bandwidth != (ratelimit.Bucket{Size: 1 << 20, RefillTime: time.Second}) || n.RxRateLimit.Ops != nil {
		t.Errorf("receive limits %+v", n.RxRateLimit)
	}
	if n.TxRateLimit == nil || *n.TxRateLimit.Ops != (ratelimit.Bucket{Size: 500, OneTimeBurst: 100, RefillTime: time.Second}) || n.TxRateLimit.Bandwidth != nil {
		t.Errorf("transmit limits %+v", n.TxRateLimit)
	}

	r, err := parseRNGLimit("64K")
	if err != nil || *r.Bandwidth != (ratelimit.Bucket{Size: 64 << 10, RefillTime: time.Second}) || r.Ops != nil {
		t.Errorf("--rng-bw 64K: %+v, %v", r, err)
	}

	for spec, want := range map[string]string{
		"path=x,bw=fast":               `--disk: bw: "fast" is not a size like 256M or 2G`,
		"path=x,bw=0":                  `--disk: bw: "0" is zero`,
		"path=x,iops=-3":               `--disk: iops="-3" is not a positive number (per second)`,
		"path=x,iops=1,refill=1ms":     "--disk: iops=1 is less than one per refill time of 1ms",
		"path=x,bw_burst=1M":           "--disk: bw_burst needs bw",
		"path=x,iops=5,iops_burst=0":   `--disk: iops_burst="0" is not a positive number`,
		"path=x,bw=1M,refill=forever":  `--disk: refill="forever" is not a duration from 1ms to 1h like 100ms`,
		"path=x,refill=1s":             "--disk: refill= without bw= or iops=",
		"path=x,bw=16T,refill=1h":      "--disk: bw=16T is too large",
		"path=x,rx_bw=1M":              `--disk: unknown key "rx_bw"`,
		"path=x,bw=8388608T,refill=1s": "--disk: bw=8388608T is too large",
	} {
		if _, err := parseDisk(spec); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("--disk %s: %v, want %q", spec, err, want)
		}
	}
	for spec, want := range map[string]string{
		"tap=t,rx_pps=many":   `--net: rx_pps="many" is not a positive number (per second)`,
		"tap=t,tx_bw_burst=1": "--net: tx_bw_burst needs tx_bw",
		"tap=t,refill=1s":     "--net: refill= without a rate limit",
		"tap=t,bw=1M":         `--net: unknown key "bw"`,
	} {
		if _, err := parseNet(spec); err == nil || !strings.HasPrefix(err.Error(), want) {
			t.Errorf("--net %s: %v, want %q", spec, err, want)
		}
	}
	if _, err := parseRNGLimit("lots"); err == nil || err.Error() != `--rng-bw: "lots" is not a size like 256M or 2G` {
		t.Errorf("--rng-bw lots: %v", err)
	}
}
