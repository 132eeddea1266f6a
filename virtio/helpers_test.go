package virtio_test

import (
	"testing"

	"github.com/ternvm/tern/virtio"
	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// readyQueue returns an enabled queue of size entries at drv's addresses
// with the given negotiated features.
func readyQueue(t testing.TB, size uint16, drv *virtqtest.Driver, features uint64) *virtio.Queue {
	t.Helper()
	q, err := virtio.NewQueue(size)
	if err != nil {
		t.Fatalf("NewQueue(%d): %v", size, err)
	}
	q.SetDescTable(drv.Desc)
	q.SetAvailRing(drv.Avail)
	q.SetUsedRing(drv.Used)
	q.SetFeatures(features)
	q.SetReady(true)
	return q
}

// setup returns 1 MiB of fake RAM at 0 with a queue of size entries at
// 0x1000.
func setup(t testing.TB, size uint16, features uint64) (*virtqtest.Memory, *virtqtest.Driver, *virtio.Queue) {
	t.Helper()
	mem := virtqtest.NewMemory(0, 1<<20)
	drv := virtqtest.Layout(mem, size, 0x1000)
	q := readyQueue(t, size, drv, features)
	if err := q.Validate(mem); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	return mem, drv, q
}
