package virtionet

import (
	"io"

	"github.com/ternvm/tern/virtio"
)

// notifyEvery bounds how many chains the device completes before it
// considers an interrupt, so a driver that keeps the queue full still
// hears back.
const notifyEvery = 64

// txWorker sends what the driver queues on the transmit queue until stop.
func (d *Device) txWorker(mem virtio.Memory, q *virtio.Queue, irq virtio.Interrupt, acked uint64, stop <-chan struct{}) {
	buf := make([]byte, maxPacketLen)
	for {
		if err := d.txDrain(mem, q, irq, acked, buf, d.tap, stop); err != nil {
			irq.NeedsReset(err)
			<-stop
			return
		}
		select {
		case <-stop:
			return
		case <-d.kicks[TxQueue]:
		}
	}
}

// txDrain sends every chain available on q to w, one write per frame, and
// returns once the queue is empty with notifications enabled again, or
// when stop closes. An error means the ring is broken and the device
// needs a reset.
func (d *Device) txDrain(mem virtio.Memory, q *virtio.Queue, irq virtio.Interrupt, acked uint64, buf []byte, w io.Writer, stop <-chan struct{}) error {
	for {
		if err := q.DisableNotification(mem); err != nil {
			return err
		}
		done := 0
		for {
			select {
			case <-stop:
				return notify(mem, q, irq, done)
			default:
			}
			c, err := q.Pop(mem)
			if err != nil {
				return err
			}
			if c == nil {
				break
			}
			if n := uint64(c.ReadableLen()); d.txLimit.Consume(n-min(n, headerLen), 1) != 0 {
				// Tell the driver of what went before waiting, so
				// that it is not held up too. A stop ends the wait
				// and the frame goes anyway: it left the ring, and a
				// pause must not lose it.
				if err := notify(mem, q, irq, done); err != nil {
					return err
				}
				done = 0
				d.txLimit.Wait(stop, n-min(n, headerLen), 1)
			}
			d.transmit(mem, c, acked, buf, w)
			if err := q.AddUsed(mem, c.Head, 0); err != nil {
				return err
			}
			done++
			if done%notifyEvery == 0 {
				if err := notify(mem, q, irq, done); err != nil {
					return err
				}
			}
		}
		if err := notify(mem, q, irq, done); err != nil {
			return err
		}
		more, err := q.EnableNotification(mem)
		if err != nil {
			return err
		}
		if !more {
			return nil
		}
	}
}

// transmit writes the chain's readable bytes, vnet header and frame, to w
// in one write. A request that cannot be sent is counted and dropped: the
// chain is still returned, as the driver expects (5.1.6.2).
func (d *Device) transmit(mem virtio.Memory, c *virtio.Chain, acked uint64, buf []byte, w io.Writer) {
	n := int(c.ReadableLen())
	// An Ethernet header is 14 bytes; anything shorter is no frame.
	if n < headerLen+14 || n > len(buf) {
		d.counters.txDropped.Add(1)
		return
	}
	if _, err := c.ReadAt(mem, buf[:n], 0); err != nil {
		d.counters.txDropped.Add(1)
		return
	}
	if !txHeaderAllowed(buf[:headerLen], acked) {
		d.counters.txDropped.Add(1)
		return
	}
	if d.intercept != nil && d.intercept.Intercept(buf[headerLen:n]) {
		d.counters.txIntercepted.Add(1)
		return
	}
	if _, err := w.Write(buf[:n]); err != nil {
		d.counters.txDropped.Add(1)
		return
	}
	d.counters.txFrames.Add(1)
	d.counters.txBytes.Add(uint64(n - headerLen))
}

// notify raises the used-buffer interrupt if the driver wants one after
// done more chains were completed.
func notify(mem virtio.Memory, q *virtio.Queue, irq virtio.Interrupt, done int) error {
	if done == 0 {
		return nil
	}
	need, err := q.NeedsNotification(mem)
	if err != nil {
		return err
	}
	if need {
		// A failed signal cannot be retried usefully: the transport
		// reports its own interrupt errors.
		_ = irq.Signal(virtio.InterruptUsedBuffer)
	}
	return nil
}
