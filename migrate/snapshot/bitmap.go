package snapshot

import (
	"fmt"
	"math/bits"
)

// Bitmap marks pages: one bit per PageSize page over the concatenation of
// all RAM regions, page p being bit p%64 (least significant first) of word
// p/64. It is the layout of KVM's dirty log, so a slot's log can be OR'ed
// in at the slot's first page.
type Bitmap []uint64

// NewBitmap returns a clear bitmap covering totalBytes of RAM (rounded up
// to whole pages).
func NewBitmap(totalBytes uint64) Bitmap {
	pages := totalBytes/PageSize + min(totalBytes%PageSize, 1)
	return make(Bitmap, (pages+63)/64)
}

// Set marks page p. Pages past the bitmap's end are ignored, as no file
// offset corresponds to them.
func (b Bitmap) Set(p uint64) {
	if p/64 < uint64(len(b)) {
		b[p/64] |= 1 << (p % 64)
	}
}

// Test reports whether page p is marked; pages past the end are not.
func (b Bitmap) Test(p uint64) bool {
	return p/64 < uint64(len(b)) && b[p/64]&(1<<(p%64)) != 0
}

// Count returns the number of marked pages.
func (b Bitmap) Count() uint64 {
	var n uint64
	for _, w := range b {
		n += uint64(bits.OnesCount64(w))
	}
	return n
}

// Or marks in b every page other marks. Both must cover the same RAM.
func (b Bitmap) Or(other Bitmap) error {
	if len(b) != len(other) {
		return fmt.Errorf("dirty bitmaps of %d and %d words cover different amounts of RAM", len(b), len(other))
	}
	for i := range b {
		b[i] |= other[i]
	}
	return nil
}

// NextRun finds the first run of marked pages at or after page from and
// before page limit, returning its first page and length (0 if none). It
// skips clear words whole, so a sparse bitmap over a large guest is cheap
// to walk.
func (b Bitmap) NextRun(from, limit uint64) (start, n uint64) {
	p := from
	for p < limit {
		w := p / 64
		if w >= uint64(len(b)) {
			return limit, 0
		}
		word := b[w] >> (p % 64)
		if word == 0 {
			p = (w + 1) * 64
			continue
		}
		p += uint64(bits.TrailingZeros64(word))
		break
	}
	if p >= limit {
		return limit, 0
	}
	start = p
	for p < limit {
		w := p / 64
		if w >= uint64(len(b)) {
			break
		}
		word := ^b[w] >> (p % 64) // clear bits become ones
		if word == 0 {
			p = (w + 1) * 64
			continue
		}
		p += uint64(bits.TrailingZeros64(word))
		break
	}
	return start, min(p, limit) - start
}
