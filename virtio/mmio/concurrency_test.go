package mmio_test

import (
	"sync"
	"testing"

	"github.com/ternvm/tern/virtio/internal/virtqtest"
)

// TestConcurrentAccess has vCPU-like goroutines kick the queue, read and
// acknowledge interrupt registers and reset and re-initialise the device
// at the same time. Run with -race it checks the transport's locking; in
// any run it checks that nothing deadlocks.
//
// Guest RAM is a Go byte slice here, so every access to it (the test
// driver's and the device's) is serialised by ram; in a VM the race
// detector does not see guest memory, which the rings' protocol orders.
func TestConcurrentAccess(t *testing.T) {
	g, mem, _ := newRNG(t)
	var ram sync.Mutex
	g.negotiate(1<<32 | 1<<29)
	drv := g.setupQueue(mem, 0, 64, 0x10000)
	g.driverOK()
	var wg sync.WaitGroup
	wg.Go(func() { // the driver of the queue
		for i := range 400 {
			ram.Lock()
			drv.Publish(drv.Chain(uint16(i%64), virtqtest.Seg{Addr: 0x20000, Len: 16, Write: true}))
			if i%2 == 0 {
				g.write(regQueueNotify, 0) // MMIO exit
			} else {
				g.tr.Notify(0) // ioeventfd
			}
			ram.Unlock()
		}
	})
	wg.Go(func() { // an interrupt handler on another vCPU
		for range 400 {
			g.write(regIntACK, g.read(regIntStatus))
			g.read(regStatus)
			g.read(regConfigGen)
			g.tr.Read(regConfig, make([]byte, 4))
		}
	})
	wg.Go(func() { // a driver that resets the device now and then
		for range 10 {
			ram.Lock()
			g.write(regStatus, 0)
			g.negotiate(1<<32 | 1<<29)
			drv = g.setupQueue(mem, 0, 64, 0x10000)
			clear(mem.Bytes()[0x10000:0x20000])
			drv.AvailIdx = 0
			g.driverOK()
			ram.Unlock()
		}
	})
	wg.Wait()
}
