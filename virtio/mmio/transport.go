package mmio

import (
	"encoding/binary"
	"fmt"
	"sync"
	"sync/atomic"

	"github.com/ternvm/tern/virtio"
)

// Transport is one virtio-mmio device window. It implements the bus's
// devices.Device (Read and Write at an offset into the window) and is safe
// for concurrent use by several vCPUs and the VMM's event loop.
//
// Locking: mu guards the registers and is held while the transport calls
// the device's Activate and Reset. Interrupt status, configuration
// generation and DEVICE_NEEDS_RESET are atomics, so a device may signal
// while holding its own lock without ever waiting for mu. Queue
// notifications and configuration accesses reach the device without mu.
type Transport struct {
	dev     virtio.Device
	mem     virtio.Memory
	irq     Trigger
	queues  []*virtio.Queue
	offered uint64

	mu                sync.Mutex
	status            uint32 // without DEVICE_NEEDS_RESET, which lives in needsReset
	deviceFeaturesSel uint32
	driverFeaturesSel uint32
	driverFeatures    uint64
	// unofferedHigh records a non-zero write to a DriverFeatures word
	// above 1, features that cannot have been offered.
	unofferedHigh bool
	queueSel      uint32
	shmSel        uint32
	active        bool
	paused        bool // Pause stopped an active device; Resume restarts it

	interruptStatus  atomic.Uint32
	configGeneration atomic.Uint32
	needsReset       atomic.Bool
	driverOK         atomic.Bool   // mirrors status&DRIVER_OK for fail
	epoch            atomic.Uint64 // counts activations; see deviceInterrupt

	errMu sync.Mutex
	err   error

	// onNeedsReset, if set, hears of each move to DEVICE_NEEDS_RESET;
	// set before the device runs, so read without a lock.
	onNeedsReset func(error)
}

// New returns the transport of dev, with guest RAM mem and interrupt line
// irq. It checks the queue sizes the device asks for.
func New(dev virtio.Device, mem virtio.Memory, irq Trigger) (*Transport, error) {
	if dev == nil || mem == nil || irq == nil {
		return nil, fmt.Errorf("virtio-mmio: New needs a device, guest memory and an interrupt trigger")
	}
	t := &Transport{
		dev:     dev,
		mem:     mem,
		irq:     irq,
		offered: dev.Features()&^virtio.ReservedFeatures | virtio.TransportFeatures,
	}
	for i, max := range dev.QueueMaxSizes() {
		q, err := virtio.NewQueue(max)
		if err != nil {
			return nil, fmt.Errorf("virtio-mmio device %d queue %d: %w", dev.DeviceID(), i, err)
		}
		t.queues = append(t.queues, q)
	}
	return t, nil
}

// NotifyOffset is the offset of QueueNotify in the window. The VMM may
// register an ioeventfd there (4 bytes, datamatch on the queue index) and
// call Notify from its event loop instead of taking an MMIO exit.
func (t *Transport) NotifyOffset() uint64 { return RegQueueNotify }

// NumQueues is the number of virtqueues of the device.
func (t *Transport) NumQueues() int { return len(t.queues) }

// Device is the device behind the transport.
func (t *Transport) Device() virtio.Device { return t.dev }

// OnNeedsReset has f called, on the device's goroutine, each time the
// device moves to DEVICE_NEEDS_RESET, with the cause Err reports then:
// without it the cause reaches only the guest's driver, which sees a bit
// and not why. Call it before the device runs; f must not block.
func (t *Transport) OnNeedsReset(f func(error)) { t.onNeedsReset = f }

// Err is the error that made the device need a reset, or nil. It stays
// until the driver resets the device.
func (t *Transport) Err() error {
	t.errMu.Lock()
	defer t.errMu.Unlock()
	return t.err
}

// Notify passes a driver's notification of queue index to the device, if
// the device is running. The VMM calls it when the ioeventfd at
// NotifyOffset fires; a write to QueueNotify calls it too.
func (t *Transport) Notify(index uint32) {
	t.mu.Lock()
	ok := t.active && index < uint32(len(t.queues)) && !t.needsReset.Load()
	t.mu.Unlock()
	if ok {
		// Outside mu: the device may process the queue right here and
		// take its own lock, and Reset takes mu before the device's.
		t.dev.QueueNotify(int(index))
	}
}

// Read handles a guest read of len(data) bytes at offset in the window.
func (t *Transport) Read(offset uint64, data []byte) {
	clear(data)
	if offset >= RegConfig {
		t.dev.ReadConfig(offset-RegConfig, data)
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		return
	}
	binary.LittleEndian.PutUint32(data, t.readRegister(offset))
}

// Write handles a guest write of data at offset in the window.
func (t *Transport) Write(offset uint64, data []byte) {
	if offset >= RegConfig {
		t.dev.WriteConfig(offset-RegConfig, data)
		return
	}
	if len(data) != 4 || offset%4 != 0 {
		return
	}
	v := binary.LittleEndian.Uint32(data)
	if offset == RegQueueNotify {
		t.Notify(v)
		return
	}
	t.writeRegister(offset, v)
}

func (t *Transport) readRegister(offset uint64) uint32 {
	switch offset {
	case RegMagicValue:
		return MagicValue
	case RegVersion:
		return Version
	case RegDeviceID:
		return t.dev.DeviceID()
	case RegVendorID:
		return VendorID
	case RegInterruptStatus:
		return t.interruptStatus.Load()
	case RegConfigGeneration:
		return t.configGeneration.Load()
	case RegSHMLenLow, RegSHMLenHigh, RegSHMBaseLow, RegSHMBaseHigh:
		// No shared memory regions: a length of -1 says so (4.2.2).
		return 0xffffffff
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch offset {
	case RegDeviceFeatures:
		switch t.deviceFeaturesSel {
		case 0:
			return uint32(t.offered)
		case 1:
			return uint32(t.offered >> 32)
		}
	case RegQueueNumMax:
		if q := t.selectedQueue(); q != nil {
			return uint32(q.MaxSize())
		}
	case RegQueueReady:
		if q := t.selectedQueue(); q != nil && q.Ready() {
			return 1
		}
	case RegStatus:
		return t.statusLocked()
	}
	return 0
}

func (t *Transport) statusLocked() uint32 {
	if t.needsReset.Load() {
		return t.status | virtio.StatusNeedsReset
	}
	return t.status
}

func (t *Transport) selectedQueue() *virtio.Queue {
	if t.queueSel < uint32(len(t.queues)) {
		return t.queues[t.queueSel]
	}
	return nil
}

func (t *Transport) writeRegister(offset uint64, v uint32) {
	if offset == RegInterruptACK {
		t.interruptStatus.And(^v)
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	switch offset {
	case RegDeviceFeaturesSel:
		t.deviceFeaturesSel = v
	case RegDriverFeaturesSel:
		t.driverFeaturesSel = v
	case RegDriverFeatures:
		t.writeDriverFeatures(v)
	case RegQueueSel:
		t.queueSel = v
	case RegSHMSel:
		t.shmSel = v
	case RegStatus:
		t.writeStatus(v)
	case RegQueueNum, RegQueueReady,
		RegQueueDescLow, RegQueueDescHigh,
		RegQueueDriverLow, RegQueueDriverHigh,
		RegQueueDeviceLow, RegQueueDeviceHigh:
		t.writeQueue(offset, v)
	}
	// Read-only registers, QueueReset (VIRTIO_F_RING_RESET is not
	// offered) and unknown offsets ignore writes.
}

// writeDriverFeatures accepts feature words only between DRIVER and
// FEATURES_OK, the negotiation window of 3.1.1.
func (t *Transport) writeDriverFeatures(v uint32) {
	if t.status&virtio.StatusDriver == 0 || t.status&virtio.StatusFeaturesOK != 0 {
		return
	}
	switch t.driverFeaturesSel {
	case 0:
		t.driverFeatures = t.driverFeatures&^0xffffffff | uint64(v)
	case 1:
		t.driverFeatures = t.driverFeatures&0xffffffff | uint64(v)<<32
	default:
		if v != 0 {
			t.unofferedHigh = true
		}
	}
}

// writeQueue changes the selected queue's configuration, which the driver
// may do only after FEATURES_OK and before DRIVER_OK (3.1.1), and, except
// for QueueReady itself, only while the queue is not ready.
func (t *Transport) writeQueue(offset uint64, v uint32) {
	q := t.selectedQueue()
	if q == nil || t.status&(virtio.StatusFeaturesOK|virtio.StatusDriverOK|virtio.StatusFailed) != virtio.StatusFeaturesOK {
		return
	}
	if offset == RegQueueReady {
		q.SetReady(v == 1)
		return
	}
	if q.Ready() {
		return
	}
	lo := func(old uint64) uint64 { return old&^0xffffffff | uint64(v) }
	hi := func(old uint64) uint64 { return old&0xffffffff | uint64(v)<<32 }
	switch offset {
	case RegQueueNum:
		if v > 0xffff {
			t.fail(fmt.Errorf("virtio-mmio: queue %d size %d is larger than 65535", t.queueSel, v))
			return
		}
		if err := q.SetSize(uint16(v)); err != nil {
			// The driver would lay out rings we cannot read; refuse
			// the device rather than guess.
			t.fail(fmt.Errorf("virtio-mmio: queue %d: %w", t.queueSel, err))
		}
	case RegQueueDescLow:
		q.SetDescTable(lo(q.DescTable()))
	case RegQueueDescHigh:
		q.SetDescTable(hi(q.DescTable()))
	case RegQueueDriverLow:
		q.SetAvailRing(lo(q.AvailRing()))
	case RegQueueDriverHigh:
		q.SetAvailRing(hi(q.AvailRing()))
	case RegQueueDeviceLow:
		q.SetUsedRing(lo(q.UsedRing()))
	case RegQueueDeviceHigh:
		q.SetUsedRing(hi(q.UsedRing()))
	}
}
