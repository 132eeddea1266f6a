package balloon

import (
	"fmt"
	"time"

	"github.com/ternvm/tern/virtio"
)

// worker serves the queues of one activation. It alone touches the queues
// and guest memory; what it learns goes to the Device under its lock.
type worker struct {
	d        *Device
	mem      virtio.Memory
	irq      virtio.Interrupt
	queues   [3]*virtio.Queue // nil: not in use (statistics not negotiated)
	broken   [3]bool          // the queue's ring is malformed; reset pending
	interval time.Duration

	pfns []uint32 // reused per chain, capacity MaxPFNsPerChain
	raw  []byte   // reused per chain, MaxPFNsPerChain PFNs
	runs []pageRange

	statsHeld  bool
	statsHead  uint16
	statsTimer *time.Timer

	idleHook func(idle bool) // see Device.idleHook
}

func (w *worker) idle(idle bool) {
	if w.idleHook != nil {
		w.idleHook(idle)
	}
}

var queueNames = [3]string{"inflate", "deflate", "statistics"}

func (w *worker) run(kicks []chan struct{}, stop, done chan struct{}) {
	defer close(done)
	var statsKick chan struct{}
	if len(kicks) > QueueStats {
		statsKick = kicks[QueueStats]
	}
	if w.statsHeld {
		w.armStats()
	}
	defer func() {
		if w.statsTimer != nil {
			w.statsTimer.Stop()
		}
	}()
	for {
		var statsDue <-chan time.Time
		if w.statsHeld && w.statsTimer != nil {
			statsDue = w.statsTimer.C
		}
		// Which queue to serve; -1 for the statistics timer.
		var serve int
		w.idle(true)
		select {
		case <-stop:
			w.idle(false)
			return
		case <-kicks[QueueInflate]:
			serve = QueueInflate
		case <-kicks[QueueDeflate]:
			serve = QueueDeflate
		case <-statsKick:
			serve = QueueStats
		case <-statsDue:
			serve = -1
		}
		w.idle(false)
		var more bool
		switch serve {
		case QueueInflate:
			more = w.drain(QueueInflate, stop, w.inflate)
		case QueueDeflate:
			more = w.drain(QueueDeflate, stop, w.deflate)
		case QueueStats:
			more = w.drain(QueueStats, stop, w.takeStats)
		default:
			w.returnStats()
		}
		if more {
			// Come back to this queue after the others had a turn.
			select {
			case kicks[serve] <- struct{}{}:
			default:
			}
		}
	}
}

// maxRounds bounds how often one drain goes back to a ring that filled up
// again while it worked, so a driver that keeps adding buffers cannot
// starve the other queues or Reset.
const maxRounds = 16

// drain processes what the driver made available on queue qi, then
// interrupts the driver if it wants it. handle consumes one chain and
// says whether the chain is to be returned now. It reports whether
// buffers were left when it gave up after maxRounds.
func (w *worker) drain(qi int, stop <-chan struct{}, handle func(*virtio.Chain) bool) (more bool) {
	q := w.queues[qi]
	if q == nil || w.broken[qi] || !q.Ready() {
		return false
	}
	used := false
	defer func() {
		if used && !w.broken[qi] {
			w.notify(qi)
		}
	}()
	for range maxRounds {
		if err := q.DisableNotification(w.mem); err != nil {
			w.fail(qi, err)
			return false
		}
		for range q.Size() {
			c, err := q.Pop(w.mem)
			if err != nil {
				w.fail(qi, err)
				return false
			}
			if c == nil {
				break
			}
			if !handle(c) {
				if w.broken[qi] {
					return false
				}
				continue
			}
			if err := q.AddUsed(w.mem, c.Head, 0); err != nil {
				w.fail(qi, err)
				return false
			}
			used = true
		}
		var err error
		more, err = q.EnableNotification(w.mem)
		if err != nil {
			w.fail(qi, err)
			return false
		}
		if !more || stopping(stop) {
			return false
		}
	}
	return more
}

func stopping(stop <-chan struct{}) bool {
	select {
	case <-stop:
		return true
	default:
		return false
	}
}

// notify interrupts the driver for used buffers on queue qi if it asked
// for that.
func (w *worker) notify(qi int) {
	need, err := w.queues[qi].NeedsNotification(w.mem)
	if err != nil {
		w.fail(qi, err)
		return
	}
	if need {
		// A failed signal has nowhere to go: the transport returns
		// one only when this activation is over or the VMM's
		// interrupt line is broken, which it sees itself.
		_ = w.irq.Signal(virtio.InterruptUsedBuffer)
	}
}

// fail stops serving queue qi and asks the transport for a reset.
func (w *worker) fail(qi int, err error) {
	w.broken[qi] = true
	w.irq.NeedsReset(fmt.Errorf("virtio-balloon %s queue: %w", queueNames[qi], err))
}

// readPFNs reads the PFNs of c, at most MaxPFNsPerChain of them, into
// w.pfns before any page is released: the PFN array may itself lie in a
// page the chain inflates. It returns the number of PFNs left unread.
func (w *worker) readPFNs(c *virtio.Chain) uint64 {
	total := uint64(c.ReadableLen()) / pfnSize
	n := min(total, MaxPFNsPerChain)
	buf := w.raw[:n*pfnSize]
	w.pfns = w.pfns[:0]
	if _, err := c.ReadAt(w.mem, buf, 0); err != nil {
		// Pop checked every buffer against RAM, so this does not
		// happen with a sane Memory; act on nothing rather than on
		// part of the chain.
		return total
	}
	w.pfns = decodePFNs(w.pfns, buf)
	return total - n
}

// inRAM reports whether [gpa, gpa+length) is guest RAM in one piece.
func (w *worker) inRAM(gpa, length uint64) bool {
	b, err := w.mem.Slice(gpa, length)
	return err == nil && uint64(len(b)) == length
}

// inflate releases the pages of one inflate chain to the host. The chain
// is returned only afterwards, so the driver cannot hand a page back to
// the guest before its old contents are gone.
func (w *worker) inflate(c *virtio.Chain) bool {
	skipped := w.readPFNs(c)
	var outside uint64
	w.runs, outside = coalesce(w.pfns, w.inRAM, w.runs[:0])
	skipped += outside
	var released, failures uint64
	var lastErr error
	for _, r := range w.runs {
		if err := w.d.release(r.gpa, r.length); err != nil {
			failures++
			lastErr = fmt.Errorf("release guest range [%#x, +%#x): %w", r.gpa, r.length, err)
			continue
		}
		released += r.length / PageSize
	}
	w.d.mu.Lock()
	w.d.counters.InflatedPages += released
	w.d.counters.SkippedPFNs += skipped
	w.d.counters.ReleaseFailures += failures
	if lastErr != nil {
		w.d.lastErr = lastErr
	}
	w.d.mu.Unlock()
	return true
}

// deflate accounts for pages the driver takes back. The host has nothing
// to do: a released page faults back in on the guest's next access.
func (w *worker) deflate(c *virtio.Chain) bool {
	skipped := w.readPFNs(c)
	var deflated uint64
	for _, pfn := range w.pfns {
		if w.inRAM(uint64(pfn)<<PFNShift, PageSize) {
			deflated++
		} else {
			skipped++
		}
	}
	w.d.mu.Lock()
	w.d.counters.DeflatedPages += deflated
	w.d.counters.SkippedPFNs += skipped
	w.d.mu.Unlock()
	return true
}
