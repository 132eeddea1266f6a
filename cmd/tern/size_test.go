package main

import "testing"

func TestParseSize(t *testing.T) {
	good := map[string]uint64{
		"256M": 256 << 20, "2G": 2 << 30, "2GiB": 2 << 30, "512mb": 512 << 20,
		"1024K": 1 << 20, "4096": 4096, " 1T ": 1 << 40,
	}
	for in, want := range good {
		got, err := parseSize(in)
		if err != nil || got != want {
			t.Errorf("parseSize(%q) = %d, %v; want %d", in, got, err, want)
		}
	}
	for _, in := range []string{"", "M", "-1G", "1.5G", "12X", "0", "0M", "99999999999999999999", "17179869184G"} {
		if got, err := parseSize(in); err == nil {
			t.Errorf("parseSize(%q) = %d, want an error", in, got)
		}
	}
}
