package mmio_test

import (
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
	"github.com/ternvm/tern/virtio/mmio"
	"github.com/ternvm/tern/virtio/rng"
)

func newRNG(t testing.TB) (guest, *virtqtest.Memory, *countingTrigger) {
	return newRNGOn(t, virtqtest.NewMemory(0, 1<<20))
}

func newRNGOn(t testing.TB, mem *virtqtest.Memory) (guest, *virtqtest.Memory, *countingTrigger) {
	t.Helper()
	irq := &countingTrigger{}
	tr, err := mmio.New(rng.New(), mem, irq)
	if err != nil {
		t.Fatalf("mmio.New: %v", err)
	}
	return guest{t: t, tr: tr}, mem, irq
}
