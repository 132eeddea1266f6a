package cpuidcache

import (
	"bytes"
	"testing"
)

// FuzzDecode: a cache file is refused or read, never panics, and one read
// is exactly what encode writes for what it read (the checksum covers
// every byte, so nothing else passes).
func FuzzDecode(f *testing.F) {
	k := someKey()
	good := encode(k, someIDs())
	f.Add(good)
	f.Add(encode(k, nil))
	f.Add(good[:len(good)-1])
	f.Add([]byte(magic))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		ids, err := decode(b, k)
		if err != nil {
			return
		}
		if again := encode(k, ids); !bytes.Equal(again, b) {
			t.Fatalf("read %d entries from %d bytes that encode to %d others", len(ids), len(b), len(again))
		}
	})
}
