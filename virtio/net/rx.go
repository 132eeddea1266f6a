package virtionet

import (
	"time"

	"github.com/ternvm/tern/virtio"
)

// readRetry is how long the receive worker waits after a TAP read fails
// for a reason other than Reset, so that a persistent error cannot spin.
const readRetry = 100 * time.Millisecond

// rxWorker moves frames from the TAP to the receive queue until stop.
// ic, if not nil, is the Interceptor whose frames it delivers too.
func (d *Device) rxWorker(mem virtio.Memory, q *virtio.Queue, irq virtio.Interrupt, acked uint64, ic Interceptor, stop <-chan struct{}) {
	r := receiver{d: d, mem: mem, q: q, irq: irq, mergeable: acked&FeatureMrgRxbuf != 0}
	fail := func(err error) {
		irq.NeedsReset(err)
		<-stop
	}
	// The driver need not notify while the device has buffers in hand;
	// it is asked to once they run out.
	if err := q.DisableNotification(mem); err != nil {
		fail(err)
		return
	}
	buf := make([]byte, maxPacketLen)
	// deliver places a frame, waiting for receive buffers; false means
	// the worker must end.
	deliver := func(frame []byte) bool {
		for {
			placed, err := r.place(frame)
			if err != nil {
				fail(err)
				return false
			}
			if placed {
				return true
			}
			more, err := q.EnableNotification(mem)
			if err != nil {
				fail(err)
				return false
			}
			if !more {
				select {
				case <-stop:
					return false
				case <-d.kicks[RxQueue]:
				}
			}
			if err := q.DisableNotification(mem); err != nil {
				fail(err)
				return false
			}
		}
	}
	for {
		// The service's frames first: they answer what the guest sent.
		if ic != nil {
			for f := ic.Next(); f != nil; f = ic.Next() {
				if !deliver(append(make([]byte, headerLen, headerLen+len(f)), f...)) {
					return
				}
			}
		}
		n, err := d.tap.Read(buf)
		if err != nil {
			select {
			case <-stop:
				return
			default:
			}
			if ic != nil && isWake(err) {
				// The service woke this read for its frames. Reset
				// closes stop before it sets its own deadline, so a
				// deadline cleared after that is seen as a stop.
				d.tap.SetReadDeadline(time.Time{})
				select {
				case <-stop:
					return
				default:
				}
				continue
			}
			select {
			case <-stop:
				return
			case <-time.After(readRetry):
				continue
			}
		}
		frame := buf[:n]
		if n < headerLen+14 || !fixRxHeader(frame[:headerLen], acked) {
			d.counters.rxDropped.Add(1)
			continue
		}
		// A limited device holds the frame, and reads no more from the
		// TAP, until the limiter lets it go; meanwhile the kernel's
		// queue fills and drops, as on a slower link. A reset drops
		// the frame held, as it would one waiting for buffers.
		if !d.rxLimit.Wait(stop, uint64(n-headerLen), 1) {
			return
		}
		if !deliver(frame) {
			return
		}
	}
}

// receiver places frames in receive chains. It holds the chains popped
// for a frame that does not fit yet, until more arrive.
type receiver struct {
	d         *Device
	mem       virtio.Memory
	q         *virtio.Queue
	irq       virtio.Interrupt
	mergeable bool

	held    []*virtio.Chain
	heldLen uint64
}

// place puts frame (vnet header first) in receive chains and returns
// true, or returns false when the driver has not made enough buffers
// available yet; the chains taken so far are kept for the next call.
// A frame that can never fit is dropped, and counts as placed.
func (r *receiver) place(frame []byte) (bool, error) {
	// Without mergeable buffers a frame must fit one chain; with them it
	// may use every chain the queue can hold, and no more can exist.
	limit := 1
	if r.mergeable {
		limit = int(r.q.Size())
	}
	for r.heldLen < uint64(len(frame)) {
		if len(r.held) >= limit {
			r.d.counters.rxDropped.Add(1)
			return true, r.giveBack()
		}
		c, err := r.q.Pop(r.mem)
		if err != nil {
			return false, err
		}
		if c == nil {
			return false, nil
		}
		// Every receive buffer must hold at least the header (5.1.6.3.1).
		if c.WritableLen() < headerLen {
			r.d.counters.rxBadBufs.Add(1)
			if err := r.q.AddUsed(r.mem, c.Head, 0); err != nil {
				return false, err
			}
			if err := notify(r.mem, r.q, r.irq, 1); err != nil {
				return false, err
			}
			continue
		}
		r.held = append(r.held, c)
		r.heldLen += uint64(c.WritableLen())
	}
	// Always 1 without MRG_RXBUF (5.1.6.4.1).
	setNumBuffers(frame[:headerLen], uint16(len(r.held)))
	written := make([]uint32, len(r.held))
	off := 0
	for i, c := range r.held {
		n := min(len(frame)-off, int(c.WritableLen()))
		// The buffers were inside RAM when popped; a failure here means
		// the memory map changed under the device.
		if _, err := c.WriteAt(r.mem, frame[off:off+n], 0); err != nil {
			return false, err
		}
		written[i] = uint32(n)
		off += n
	}
	for i, c := range r.held {
		if err := r.q.AddUsed(r.mem, c.Head, written[i]); err != nil {
			return false, err
		}
	}
	r.d.counters.rxFrames.Add(1)
	r.d.counters.rxBytes.Add(uint64(len(frame) - headerLen))
	done := len(r.held)
	r.release()
	return true, notify(r.mem, r.q, r.irq, done)
}

// giveBack returns the held chains unused, as the driver's receive path
// expects of a frame the device had to drop.
func (r *receiver) giveBack() error {
	done := len(r.held)
	for _, c := range r.held {
		if err := r.q.AddUsed(r.mem, c.Head, 0); err != nil {
			return err
		}
	}
	r.release()
	return notify(r.mem, r.q, r.irq, done)
}

func (r *receiver) release() {
	clear(r.held)
	r.held = r.held[:0]
	r.heldLen = 0
}
