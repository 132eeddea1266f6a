package block

import (
	"github.com/ternvm/tern/virtio"
)

// worker serves the request queue of one activation on its own goroutine.
type worker struct {
	dev   *Device
	mem   virtio.Memory
	q     *virtio.Queue
	irq   virtio.Interrupt
	acked uint64

	wake chan struct{} // capacity 1: a pending notification
	stop chan struct{} // closed by stopAndWait
	done chan struct{} // closed when the goroutine returns
}

func startWorker(dev *Device, mem virtio.Memory, q *virtio.Queue, irq virtio.Interrupt, acked uint64) *worker {
	w := &worker{
		dev: dev, mem: mem, q: q, irq: irq, acked: acked,
		wake: make(chan struct{}, 1),
		stop: make(chan struct{}),
		done: make(chan struct{}),
	}
	// Look at the queue once at the start: after a restore the driver
	// may have made requests available that nobody was notified of.
	w.kick()
	go w.run()
	return w
}

// kick records a notification without blocking; one pending is enough.
func (w *worker) kick() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

func (w *worker) stopAndWait() {
	close(w.stop)
	<-w.done
}

func (w *worker) stopping() bool {
	select {
	case <-w.stop:
		return true
	default:
		return false
	}
}

func (w *worker) run() {
	defer close(w.done)
	for {
		select {
		case <-w.stop:
			return
		case <-w.wake:
		}
		if err := w.drain(); err != nil {
			// The queue cannot be trusted any more: ask for a reset and
			// serve nothing until it comes.
			w.irq.NeedsReset(err)
			<-w.stop
			return
		}
	}
}

// drain serves every available request, then re-enables notifications and
// interrupts the driver if it asked for it. Touching guest memory ends
// before the interrupt, so a driver that waits for it sees a quiet queue.
func (w *worker) drain() error {
	used := 0
	for {
		if err := w.q.DisableNotification(w.mem); err != nil {
			return err
		}
		// Each pass ends when the available ring is empty, after at
		// most the queue size of chains, or when Reset begins.
		for !w.stopping() {
			c, err := w.q.Pop(w.mem)
			if err != nil {
				return w.fail(used, err)
			}
			if c == nil {
				break
			}
			used = w.limit(c, used)
			written, fatal := w.dev.serve(w.mem, c, w.acked)
			if err := w.q.AddUsed(w.mem, c.Head, written); err != nil {
				return w.fail(used, err)
			}
			used++
			if fatal != nil {
				return w.fail(used, fatal)
			}
		}
		if w.stopping() {
			return nil
		}
		more, err := w.q.EnableNotification(w.mem)
		if err != nil {
			return w.fail(used, err)
		}
		if !more {
			return w.interrupt(used)
		}
	}
}

// limit holds the request in c until the rate limiter lets it go. The
// requests completed so far are signalled before a wait, so that the
// driver does not wait for them too. A stop ends the wait, and the
// request is served anyway: it left the ring, and a pause must not lose
// it (one request past the limit is the lesser harm). It returns the
// completed requests not yet signalled.
func (w *worker) limit(c *virtio.Chain, used int) int {
	bytes, ops := requestCost(c), uint64(1)
	if w.dev.limiter.Consume(bytes, ops) == 0 {
		return used
	}
	// An error here means a broken used ring, which the next AddUsed
	// meets and reports.
	_ = w.interrupt(used)
	w.dev.limiter.Wait(w.stop, bytes, ops)
	return 0
}

// requestCost is the data the request in c carries, in bytes: what the
// chain holds besides the header and the status byte. It is known
// without reading guest memory, before the request is parsed.
func requestCost(c *virtio.Chain) uint64 {
	r, wr := uint64(c.ReadableLen()), uint64(c.WritableLen())
	return r - min(r, headerLen) + wr - min(wr, statusLen)
}

// fail returns err after telling the driver about the requests already
// completed, so that they are not lost with the reset.
func (w *worker) fail(used int, err error) error {
	_ = w.interrupt(used) // err is the one worth reporting
	return err
}

// interrupt signals used buffers when there are any and the driver wants
// to hear of them.
func (w *worker) interrupt(used int) error {
	if used == 0 {
		return nil
	}
	need, err := w.q.NeedsNotification(w.mem)
	if err != nil {
		return err
	}
	if need {
		// A failed Signal means the transport is gone; nothing here can
		// repair that, and the transport reports its own failures.
		_ = w.irq.Signal(virtio.InterruptUsedBuffer)
	}
	return nil
}
