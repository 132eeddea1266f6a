package main

import (
	"fmt"
	"strconv"
	"strings"
)

// parseSize reads a memory size such as 128M, 2G, 2GiB or 1048576 (bytes).
// Suffixes are binary (K = 1024).
func parseSize(s string) (uint64, error) {
	t := strings.TrimSpace(s)
	if t == "" {
		return 0, fmt.Errorf("empty size")
	}
	upper := strings.ToUpper(t)
	upper = strings.TrimSuffix(upper, "IB")
	upper = strings.TrimSuffix(upper, "B")
	shift := uint(0)
	if n := len(upper); n > 0 {
		switch upper[n-1] {
		case 'K':
			shift = 10
		case 'M':
			shift = 20
		case 'G':
			shift = 30
		case 'T':
			shift = 40
		}
		if shift != 0 {
			upper = upper[:n-1]
		}
	}
	n, err := strconv.ParseUint(upper, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%q is not a size like 256M or 2G", s)
	}
	if n == 0 {
		return 0, fmt.Errorf("%q is zero", s)
	}
	if n > (^uint64(0))>>shift {
		return 0, fmt.Errorf("%q is too large", s)
	}
	return n << shift, nil
}
