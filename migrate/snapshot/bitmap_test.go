package snapshot

import (
	"math/rand/v2"
	"testing"
)

func TestBitmapLayoutIsKVMs(t *testing.T) {
	// KVM_GET_DIRTY_LOG: page i of the slot is bit i%64 of the i/64-th
	// 64-bit word, least significant bit first.
	b := NewBitmap(200 * PageSize)
	if len(b) != 4 { // ceil(200/64)
		t.Fatalf("200 pages: %d words, want 4", len(b))
	}
	for _, p := range []uint64{0, 63, 64, 65, 199} {
		b.Set(p)
	}
	want := Bitmap{1 | 1<<63, 1 | 1<<1, 0, 1 << (199 - 192)}
	for i := range want {
		if b[i] != want[i] {
			t.Errorf("word %d = %#x, want %#x", i, b[i], want[i])
		}
	}
	if b.Count() != 5 || !b.Test(65) || b.Test(66) || b.Test(1000) {
		t.Errorf("Count %d, Test(65) %v, Test(66) %v, Test(1000) %v", b.Count(), b.Test(65), b.Test(66), b.Test(1000))
	}
	b.Set(1 << 40) // past the end: ignored, no panic
	if b.Count() != 5 {
		t.Errorf("a mark past the end counted")
	}
}

func TestNewBitmapSizes(t *testing.T) {
	for _, c := range []struct{ bytes, words uint64 }{
		{0, 0}, {1, 1}, {PageSize, 1}, {64 * PageSize, 1}, {65 * PageSize, 2}, {1 << 30, 4096}, {2 << 30, 8192},
	} {
		if got := uint64(len(NewBitmap(c.bytes))); got != c.words {
			t.Errorf("NewBitmap(%d) has %d words, want %d", c.bytes, got, c.words)
		}
	}
}

func TestBitmapOr(t *testing.T) {
	a, b := Bitmap{1, 0}, Bitmap{2, 1 << 63}
	if err := a.Or(b); err != nil || a[0] != 3 || a[1] != 1<<63 {
		t.Errorf("Or = %#x, %v", a, err)
	}
	if err := a.Or(Bitmap{1}); err == nil {
		t.Error("Or of different lengths succeeded")
	}
}

// nextRun is what the diff writer and the merge walk; compare it with a
// plain page-by-page scan on random bitmaps of all densities.
func TestBitmapRunsMatchAPlainScan(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for round := 0; round < 300; round++ {
		pages := uint64(1 + rng.IntN(700))
		b := NewBitmap(pages * PageSize)
		density := rng.Float64()
		for p := uint64(0); p < pages; p++ {
			if rng.Float64() < density {
				b.Set(p)
			}
		}
		from, limit := uint64(rng.IntN(int(pages))), pages-uint64(rng.IntN(int(pages)/4+1))
		var got, want [][2]uint64
		for p := from; ; {
			s, n := b.NextRun(p, limit)
			if n == 0 {
				break
			}
			got = append(got, [2]uint64{s, n})
			p = s + n
		}
		for p := from; p < limit; p++ {
			if !b.Test(p) {
				continue
			}
			s := p
			for p < limit && b.Test(p) {
				p++
			}
			want = append(want, [2]uint64{s, p - s})
		}
		if len(got) != len(want) {
			t.Fatalf("round %d: runs %v, want %v", round, got, want)
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("round %d: runs %v, want %v", round, got, want)
			}
		}
	}
}
