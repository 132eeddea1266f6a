package vmm

import (
	"reflect"
	"testing"

	"github.com/ternvm/tern/migrate"
)

func TestChunkExtents(t *testing.T) {
	const c = 64 << 10
	ext := func(off, n uint64) migrate.Extent { return migrate.Extent{Off: off, Len: n} }
	log := []uint64{1<<0 | 1<<1 | 1<<3 | 1<<63, 1<<0 | 1<<5}
	// Chunk 69 ends past a disk of 69 and a half chunks: it is cut.
	got := chunkExtents(log, 69*c+c/2)
	want := []migrate.Extent{ext(0, 2*c), ext(3*c, c), ext(63*c, 2*c), ext(69*c, c/2)}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("chunkExtents: %v, want %v", got, want)
	}
	// Bits past the disk's end are dropped.
	got = chunkExtents(log, 64*c)
	if want := []migrate.Extent{ext(0, 2*c), ext(3*c, c), ext(63*c, c)}; !reflect.DeepEqual(got, want) {
		t.Errorf("chunkExtents of a 64-chunk disk: %v, want %v", got, want)
	}
	if got := chunkExtents(nil, 1<<20); got != nil {
		t.Errorf("chunkExtents(nil): %v", got)
	}
}
